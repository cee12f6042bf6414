"""Op accounting against hand-computed counts for a tiny network, and exit rules."""

import math

import numpy as np
import torch
from torch import nn

from fogsim.nn.evaluate import ExitOutputs, exit_index, hybrid_metrics
from fogsim.nn.hybrid import HybridNet, exits_early, softmax_entropy
from fogsim.nn.ops import count_ops
from fogsim.nn.zoo import ConvBlock


def tiny_net() -> HybridNet:
    """Stem 1->2 (fp32), block 2->3 binary (edge), block 3->4 fp32 (cloud), 4x4 images."""
    return HybridNet(
        nn.Conv2d(1, 2, 3, 1, 1, bias=False),
        [ConvBlock(2, 3, False, "binary", "binary"), ConvBlock(3, 4, False, "fp32", "fp32")],
        [3, 4],
        split=1,
        exits=[1],
        edge_act_precision="binary",
        num_classes=5,
        input_shape=(1, 4, 4),
        input_mean=(0.0,),
        input_std=(1.0,),
    )


def test_macs_by_part_and_precision_match_hand_counts():
    ops = count_ops(tiny_net())
    stem, edge_conv, cloud_conv = 16 * 2 * 9, 16 * 3 * 2 * 9, 16 * 4 * 3 * 9  # 288, 864, 1728
    exit_fc, final_fc = 3 * 5, 4 * 5
    assert ops.edge.macs == {"fp32": stem + exit_fc, "binary": edge_conv}
    assert ops.cloud.macs == {"fp32": cloud_conv + final_fc}
    assert ops.edge_to_exit == ({"fp32": stem + exit_fc, "binary": edge_conv},)
    assert ops.full_macs == {"fp32": stem + cloud_conv + final_fc, "binary": edge_conv}
    assert ops.feature_shape == (3, 4, 4)
    assert ops.feature_bytes == 48 // 8  # 48 binary values


def test_parameter_bytes_at_their_bitwidth():
    ops = count_ops(tiny_net())
    # fp32 on the edge: stem 18 weights, block BN(2) 2+2 params + 2+2 running stats,
    # exit head BN(3) 12 + linear 15+5, split BN(3) 12: 70 floats.
    assert ops.edge.param_bytes == {"fp32": 70 * 4, "binary": math.ceil(54 / 8)}
    # cloud: block BN(3) 12 + conv 108, final head BN(4) 16 + linear 20+5: 161 floats.
    assert ops.cloud.param_bytes == {"fp32": 161 * 4}


def test_entropy_is_natural_log():
    assert torch.allclose(softmax_entropy(torch.zeros(1, 10)), torch.tensor([math.log(10)]))


def test_exit_rules_are_strict():
    entropy, maxprob = torch.tensor([0.5, 1.0, 1.5]), torch.tensor([0.9, 0.6, 0.3])
    assert exits_early(entropy, maxprob, "entropy", 1.0).tolist() == [True, False, False]
    assert exits_early(entropy, maxprob, "maxprob", 0.6).tolist() == [True, False, False]


def _outputs() -> ExitOutputs:
    # Three images, two exits: image 0 leaves at exit 0, image 1 at exit 1, image 2 offloads.
    return ExitOutputs(
        labels=np.array([1, 2, 3]),
        exit_entropy=np.array([[0.1, 0.1], [2.0, 0.2], [2.0, 2.0]], dtype=np.float32),
        exit_maxprob=np.array([[0.9, 0.9], [0.2, 0.8], [0.2, 0.2]], dtype=np.float32),
        exit_pred=np.array([[1, 0], [0, 2], [0, 0]]),
        cloud_pred=np.array([9, 9, 3]),
    )


def test_first_confident_exit_wins_and_the_rest_go_to_the_cloud():
    out = _outputs()
    assert exit_index(out, "entropy", 0.5).tolist() == [0, 1, -1]
    assert exit_index(out, "maxprob", 0.5).tolist() == [0, 1, -1]
    m = hybrid_metrics(out, "entropy", 0.5)
    assert m["exit_rate"] == 2 / 3 and m["exit_rate_per_exit"] == [1 / 3, 1 / 3]
    assert m["accuracy"]["hybrid"] == 1.0
    assert m["accuracy"]["cloud"] == 1 / 3
    assert m["accuracy"]["edge"] == 1 / 3 and m["accuracy"]["edge_per_exit"] == [1 / 3, 1 / 3]


def test_a_conv_exit_counts_its_quantized_conv_on_the_edge_path_only():
    from fogsim.nn.zoo import create_model

    linear = count_ops(create_model("resnet20", weight_precision="binary", act_precision="binary"))
    conv = count_ops(
        create_model(
            "resnet20", weight_precision="binary", act_precision="binary", exit_head="conv"
        )
    )
    # After stage 2 (32 channels, 16x16): a 3x3 stride-2 conv to 64 channels on 8x8,
    # and the exit's linear layer takes 64 features instead of 32.
    exit_conv, wider_fc = 8 * 8 * 64 * 32 * 9, (64 - 32) * 10
    assert conv.edge_to_exit[0]["binary"] - linear.edge_to_exit[0]["binary"] == exit_conv
    assert conv.edge_to_exit[0]["fp32"] - linear.edge_to_exit[0]["fp32"] == wider_fc
    assert conv.full_macs == linear.full_macs  # exits are not on the cloud path
    assert conv.cloud == linear.cloud

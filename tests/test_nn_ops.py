"""Op accounting against hand-computed counts for tiny two- and three-part networks; exit
rules, thresholds per exit, and where each image is answered."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from fogsim.nn.evaluate import (
    ExitOutputs,
    choose_threshold,
    choose_thresholds,
    exit_index,
    hybrid_metrics,
    tier_metrics,
)
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


def tiny_three_part_net() -> HybridNet:
    """Stem 1->2 (fp32) and block 2->3 binary on the device, block 3->4 int8 on the fog, block
    4->5 fp32 in the cloud; an exit after each of the first two blocks; 4x4 images."""
    return HybridNet(
        nn.Conv2d(1, 2, 3, 1, 1, bias=False),
        [
            ConvBlock(2, 3, False, "binary", "binary"),
            ConvBlock(3, 4, False, "int8", "int8"),
            ConvBlock(4, 5, False, "fp32", "fp32"),
        ],
        [3, 4, 5],
        split=1,
        fog_split=2,
        exits=[1, 2],
        edge_act_precision="binary",
        fog_act_precision="int8",
        num_classes=5,
        input_shape=(1, 4, 4),
        input_mean=(0.0,),
        input_std=(1.0,),
    )


def test_three_part_macs_by_tier_and_exit_match_hand_counts():
    ops = count_ops(tiny_three_part_net())
    stem, device_conv = 16 * 2 * 9, 16 * 3 * 2 * 9  # 288, 864
    fog_conv, cloud_conv = 16 * 4 * 3 * 9, 16 * 5 * 4 * 9  # 1728, 2880
    device_fc, fog_fc, final_fc = 3 * 5, 4 * 5, 5 * 5
    device = {"fp32": stem + device_fc, "binary": device_conv}
    assert ops.edge.macs == device
    assert ops.fog.macs == {"int8": fog_conv, "fp32": fog_fc}
    assert ops.cloud.macs == {"fp32": cloud_conv + final_fc}
    # The fog exit costs the whole device part, its exit included, and the fog up to it.
    assert ops.edge_to_exit == (device, device)
    assert ops.fog_to_exit == ({}, {"int8": fog_conv, "fp32": fog_fc})
    assert ops.exit_tiers == ("device", "fog")
    assert ops.full_macs == {
        "fp32": stem + cloud_conv + final_fc,
        "binary": device_conv,
        "int8": fog_conv,
    }
    device_to_fog, fog_to_cloud = ops.boundaries
    assert (device_to_fog.sender, device_to_fog.receiver) == ("device", "fog")
    assert device_to_fog.shape == (3, 4, 4) and device_to_fog.bytes == 48 // 8
    assert (fog_to_cloud.sender, fog_to_cloud.receiver, fog_to_cloud.precision) == (
        "fog",
        "cloud",
        "int8",
    )
    assert fog_to_cloud.shape == (4, 4, 4) and fog_to_cloud.bytes == 64
    assert ops.feature_bytes == 6 and ops.feature_shape == (3, 4, 4)  # the device's, as before


def test_three_part_parameter_bytes_by_tier():
    ops = count_ops(tiny_three_part_net())
    # device: stem 18, block BN(2) 8, exit head BN(3) 12 + linear 20, split BN(3) 12: 70 floats;
    # the binary conv's 54 weights.
    assert ops.parts["device"].param_bytes == {"fp32": 70 * 4, "binary": math.ceil(54 / 8)}
    # fog: block BN(3) 12, exit head BN(4) 16 + linear 25, fog_quant BN(4) 16: 69 floats;
    # the int8 conv's 108 weights.
    assert ops.parts["fog"].param_bytes == {"fp32": 69 * 4, "int8": 108}
    # cloud: block BN(4) 16 + conv 180, final head BN(5) 20 + linear 30: 246 floats.
    assert ops.parts["cloud"].param_bytes == {"fp32": 246 * 4}


def test_a_two_part_network_has_an_empty_fog_part_and_one_boundary():
    ops = count_ops(tiny_net())
    assert ops.fog == type(ops.fog)({}, {}) and ops.fog_to_exit == ({},)
    assert [(b.sender, b.receiver) for b in ops.boundaries] == [("device", "cloud")]


def test_one_threshold_per_exit():
    out = _outputs()
    # Exit 0 fires below 0.05 (no image), exit 1 below 2.5 (all that reach it).
    assert exit_index(out, "entropy", [0.05, 2.5]).tolist() == [1, 1, 1]
    assert exit_index(out, "entropy", (0.5, 0.15)).tolist() == [0, -1, -1]
    m = hybrid_metrics(out, "entropy", [0.5, 0.15])
    assert m["threshold"] is None and m["thresholds"] == [0.5, 0.15]
    assert hybrid_metrics(out, "entropy", [0.5, 0.5])["threshold"] == 0.5
    with pytest.raises(ValueError, match="3 thresholds for 2 exits"):
        exit_index(out, "entropy", [0.1, 0.2, 0.3])


def test_tiers_count_each_image_once_where_it_is_answered():
    out = _outputs()
    tiers = tier_metrics(out, "entropy", 0.5, ("device", "fog"))
    # Image 0 leaves at the device exit (right), image 1 at the fog exit (right), image 2 in
    # the cloud (right); alone, the fog exit is right on image 1 only.
    assert {t: v["exit_rate"] for t, v in tiers.items()} == {
        "device": 1 / 3,
        "fog": 1 / 3,
        "cloud": 1 / 3,
    }
    assert [tiers[t]["accuracy"] for t in ("device", "fog", "cloud")] == [1.0, 1.0, 1.0]
    assert tiers["fog"]["accuracy_alone"] == 1 / 3 and tiers["cloud"]["accuracy_alone"] == 1 / 3
    assert tiers["device"]["exits"] == [0] and tiers["fog"]["exits"] == [1]
    two = tier_metrics(out, "entropy", 0.5, ("device", "device"))
    assert two["fog"] == {"exits": [], "exit_rate": 0.0, "accuracy": None, "accuracy_alone": None}
    assert two["device"]["exit_rate"] == 2 / 3


def test_per_exit_thresholds_exit_more_where_one_shared_threshold_cannot():
    # Every label is 0 and the cloud is always right, so no answer may be wrong (drop 0).
    # Exit 0 is right on images 0 and 1 (entropy 0.1, 0.2), wrong on 2 and 3 (0.3, 0.4);
    # exit 1 is right on image 2 at entropy 0.6 and wrong on image 3 at 0.9. A shared
    # threshold must stay at or below 0.3, which leaves image 2 to the cloud; per exit,
    # exit 1 can take it: t0 in (0.2, 0.3], t1 in (0.6, 0.9].
    out = ExitOutputs(
        labels=np.zeros(4, dtype=np.int64),
        exit_entropy=np.array([[0.1, 0.5], [0.2, 0.5], [0.3, 0.6], [0.4, 0.9]], np.float32),
        exit_maxprob=np.full((4, 2), 0.5, np.float32),
        exit_pred=np.array([[0, 0], [0, 0], [1, 0], [1, 1]]),
        cloud_pred=np.zeros(4, dtype=np.int64),
    )
    shared = choose_threshold(out, "entropy", 0.0, 10)
    assert 0.2 < shared <= 0.3
    assert exit_index(out, "entropy", shared).tolist() == [0, 0, -1, -1]
    t0, t1 = choose_thresholds(out, "entropy", 0.0, 10)
    assert 0.2 < t0 <= 0.3 and 0.6 < t1 <= 0.9
    assert exit_index(out, "entropy", [t0, t1]).tolist() == [0, 0, 1, -1]
    assert hybrid_metrics(out, "entropy", [t0, t1])["accuracy"]["hybrid"] == 1.0


def test_with_one_exit_the_per_exit_choice_is_the_shared_one():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 300)
    out = ExitOutputs(
        labels=labels,
        exit_entropy=rng.uniform(0, 2.3, (300, 1)).astype(np.float32),
        exit_maxprob=rng.uniform(0.1, 1, (300, 1)).astype(np.float32),
        exit_pred=np.where(rng.random((300, 1)) < 0.8, labels[:, None], 0),
        cloud_pred=np.where(rng.random(300) < 0.9, labels, 0),
    )
    for rule in ("entropy", "maxprob"):
        assert choose_thresholds(out, rule, 0.02, 10) == (choose_threshold(out, rule, 0.02, 10),)


def test_device_memory_traffic_matches_hand_counts():
    ops = count_ops(tiny_net())
    # Weights, input and output activations at the layer's bitwidths, one 4x4 image:
    # stem fp32 (18 + 16 + 32 floats) 264 B; binary block (54 + 32 + 48 bits) 17 B;
    # exit linear fp32 (15 + 3 + 5 floats) 92 B.
    assert ops.edge_bytes == 264 + 17 + 92
    assert ops.edge_layers == 3
    assert ops.edge_bytes_to_exit == (373,)
    assert ops.edge_layers_to_exit == (3,)

"""Every registered network runs forward; the registry refuses unknown names."""

import pytest
import torch

from fogsim.errors import UserInputError
from fogsim.nn.hybrid import HybridNet
from fogsim.nn.zoo import create_model, list_models, register_model


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("bits", [("fp32", "fp32"), ("binary", "binary"), (4, 4)])
def test_forward_every_registered_model(name, bits):
    model = create_model(name, num_classes=7, weight_precision=bits[0], act_precision=bits[1])
    x = torch.rand(2, *model.input_shape)
    exit_logits, final = model(x)
    assert final.shape == (2, 7)
    assert len(exit_logits) == len(model.exit_points) >= 1
    assert all(e.shape == (2, 7) for e in exit_logits)
    # The trunk by hand, past the exit heads: stem, every block, the split quantizer between
    # the edge's blocks and the cloud's, then the final head. The split loses nothing else.
    model.eval()
    with torch.no_grad():
        _, final = model(x)
        h = model.stem((x - model.input_mean) / model.input_std)
        for i, block in enumerate(model.blocks):
            h = block(model.split_quant(h) if i == model.split else h)
        if model.split == len(model.blocks):
            h = model.split_quant(h)
        assert torch.allclose(model.final(h), final, atol=1e-6)


def test_split_and_exits_are_constructor_arguments():
    model = create_model(
        "resnet20", split=3, exits=[1, 3], weight_precision="binary", act_precision=1
    )
    assert model.split == 3 and model.exit_points == (1, 3)
    assert len(model(torch.rand(1, 3, 32, 32))[0]) == 2
    precisions = [b.conv1.weight_precision for b in model.blocks]
    assert precisions == ["binary"] * 3 + ["fp32"] * 6
    features, _ = model.edge(torch.rand(4, 3, 32, 32))
    assert set(features.unique().tolist()) <= {-1.0, 1.0}  # the split tensor is binary


def test_conv_exit_head_runs_at_the_edge_precision():
    model = create_model(
        "resnet20", weight_precision=4, act_precision=4, exit_head="conv", num_classes=7
    )
    assert model.exits[0].conv.weight_precision == "int4"
    exit_logits, final = model(torch.rand(3, 3, 32, 32))
    assert exit_logits[0].shape == final.shape == (3, 7)
    with pytest.raises(ValueError, match="exit_head"):
        create_model("resnet20", exit_head="mlp")


def test_resnet_depths_and_fp32_shortcuts():
    assert len(create_model("resnet20").blocks) == 9
    assert len(create_model("resnet32").blocks) == 15
    model = create_model("resnet20", weight_precision="binary", act_precision="binary")
    shortcut = model.blocks[3].shortcut
    assert type(shortcut) is torch.nn.Conv2d and shortcut.kernel_size == (1, 1)


def test_bad_split_or_exits_are_refused():
    with pytest.raises(ValueError, match="split"):
        create_model("smallcnn", split=9)
    with pytest.raises(ValueError, match="exits"):
        create_model("smallcnn", split=2, exits=[3])


def test_unknown_model_names_the_registered_ones():
    with pytest.raises(UserInputError, match="resnet20"):
        create_model("vgg")


def test_register_twice_is_an_error():
    def smallcnn() -> HybridNet:  # same name as a registered network
        raise AssertionError

    with pytest.raises(ValueError, match="twice"):
        register_model(smallcnn)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("shape", [(16, 16, 1), (32, 32, 3), (20, 24, 3), (64, 48, 4), (8, 8, 1)])
def test_every_network_is_built_for_the_images_it_is_given(name, shape):
    model = create_model(name, num_classes=5, image_shape=shape, exit_head="conv")
    h, w, c = shape
    exit_logits, final = model(torch.rand(2, c, h, w))
    assert final.shape == (2, 5) and all(e.shape == (2, 5) for e in exit_logits)
    assert model.input_shape == (c, h, w)


def test_op_counts_follow_the_image_shape():
    from fogsim.nn.ops import count_ops

    # smallcnn: stem conv at full size then a 2x2 pool, block 1 (16->32) pools again,
    # block 2 (32->64) keeps the size: a 16x16 image leaves 64 x 4 x 4 features at the split.
    ops = count_ops(create_model("smallcnn", image_shape=(16, 16, 1)))
    assert ops.feature_shape == (64, 4, 4)
    stem = 16 * 16 * 16 * 1 * 9
    rgb = count_ops(create_model("smallcnn", image_shape=(16, 16, 3)))
    assert rgb.edge.macs["fp32"] - ops.edge.macs["fp32"] == 2 * stem  # 3 input channels, not 1
    assert count_ops(create_model("smallcnn")).feature_shape == (64, 7, 7)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((2, 2, 1), "2x2"),
        ((28, 3, 1), "28x3"),
        ((3, 32, 32), "3x32"),  # channels first: a 3-pixel-high image
        ((28, 28, 0), "0 channels"),
        ((28, 28, 64), "64 channels"),
        ((28, 28), "not \\(height, width, channels\\)"),
    ],
)
def test_images_a_network_cannot_read_are_refused(shape, message):
    for name in list_models():
        with pytest.raises(UserInputError, match=message):
            create_model(name, image_shape=shape)


def test_default_shapes_are_those_of_the_shipped_datasets():
    assert create_model("smallcnn").input_shape == (1, 28, 28)
    assert create_model("resnet20").input_shape == (3, 32, 32)
    assert create_model("resnet32").input_shape == (3, 32, 32)


@pytest.mark.parametrize("name", ["resnet20", "smallcnn"])
def test_the_relu_grid_reaches_every_quantized_layer_but_not_the_split(name):
    from fogsim.nn.codec import pack_features
    from fogsim.nn.layers import QConv2d, QLinear

    torch.manual_seed(0)
    kwargs = {"weight_precision": "int4", "act_precision": "int4", "exit_head": "conv"}
    net = create_model(name, act_grid="relu", **kwargs).eval()
    layers = [m for m in net.modules() if isinstance(m, QConv2d | QLinear)]
    assert layers and {m.act_grid for m in layers} == {"relu"}
    signed = create_model(name, **kwargs)
    assert {m.act_grid for m in signed.modules() if isinstance(m, QConv2d | QLinear)} == {
        "signed"
    }
    x = torch.rand(3, *net.input_shape)
    with torch.no_grad():
        features, _ = net.edge(x)
    # The features sent stay on the signed int4 grid, which the codec packs exactly.
    codes = torch.round((features + 1) / 2 * 15)
    assert torch.allclose(codes / 15 * 2 - 1, features, atol=1e-6)
    assert features.min() < 0 and pack_features(features, "int4").shape[0] == 3
    with pytest.raises(ValueError, match="act_grid 'unsigned'"):
        create_model(name, act_grid="unsigned", **kwargs)


def test_exit_precision_sets_the_conv_exit_heads_alone():
    from fogsim.nn.layers import QConv2d
    from fogsim.nn.ops import count_ops

    kwargs = {"weight_precision": "binary", "act_precision": "binary", "exit_head": "conv"}
    plain = create_model("resnet20", **kwargs)
    net = create_model("resnet20", exit_precision="int8", **kwargs)
    heads = [m for m in net.exits.modules() if isinstance(m, QConv2d)]
    assert heads and {(m.weight_precision, m.act_precision) for m in heads} == {("int8", "int8")}
    blocks = [m for m in net.blocks[: net.split].modules() if isinstance(m, QConv2d)]
    assert {m.op_precision for m in blocks} == {"binary"}
    # The exit's MACs move from binary to int8; the rest of the device part is unchanged.
    before, after = count_ops(plain).edge.macs, count_ops(net).edge.macs
    head_macs = sum(m.weight.numel() for m in heads) * 8 * 8  # its 8x8 output map
    assert after["int8"] == head_macs and before["binary"] - after["binary"] == head_macs
    with pytest.raises(ValueError, match="exit_precision 'int8' needs exit_head 'conv'"):
        create_model("resnet20", weight_precision="binary", exit_precision="int8")

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
    features, _ = model.edge(x)
    assert torch.allclose(model.cloud(features), final)


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

"""Bi-Real / ReActNet binary blocks: a shortcut around every conv, learnable thresholds."""

import pytest
import torch
from torch import nn

from fogsim.errors import UserInputError
from fogsim.nn.bireal import BiRealBlock, BiRealUnit
from fogsim.nn.ops import count_ops
from fogsim.nn.recipe import recipe_from_dict
from fogsim.nn.zoo import create_model


def test_unit_with_a_silent_conv_passes_its_input_through_its_own_shortcut():
    # BN scaled to zero silences the binary conv; what remains is the shortcut, and the
    # RPReLU at its initial zero shifts keeps positive values as they are.
    unit = BiRealUnit(8, 8, 1, "binary", "binary").eval()
    nn.init.zeros_(unit.bn.weight)
    nn.init.zeros_(unit.bn.bias)
    x = torch.rand(2, 8, 6, 6) + 0.1
    assert torch.allclose(unit(x), x)


def test_downsampling_unit_halves_the_map_and_changes_channels():
    block = BiRealBlock(16, 32, 2, "binary", "binary")
    assert block(torch.randn(2, 16, 16, 16)).shape == (2, 32, 8, 8)


def test_learnable_thresholds_and_prelu_get_gradients():
    block = BiRealBlock(8, 8, 1, "binary", "binary")
    block(torch.randn(4, 8, 8, 8)).square().mean().backward()
    for unit in (block.unit1, block.unit2):
        assert unit.threshold.bias.grad is not None and unit.threshold.bias.grad.abs().sum() > 0
        assert unit.act.prelu.weight.grad.abs().sum() > 0


def test_convs_binarize_their_inputs_and_weights():
    unit = BiRealUnit(4, 4, 1, "binary", "binary")
    seen = {}
    unit.conv.register_forward_hook(lambda m, inp, out: seen.update(op=m.op_precision))
    unit(torch.randn(1, 4, 5, 5))
    assert seen["op"] == "binary"


def test_bireal_resnet_counts_the_same_macs_as_the_basic_one():
    # Bi-Real moves shortcuts, not convs: the binary 3x3 convs and the fp32 1x1 downsampling
    # conv (after average pooling instead of with a stride) do the same MACs.
    basic = create_model("resnet20", weight_precision="binary", act_precision="binary")
    bireal = create_model(
        "resnet20", weight_precision="binary", act_precision="binary", block="bireal"
    )
    assert count_ops(bireal).edge.macs == count_ops(basic).edge.macs
    assert count_ops(bireal).cloud.macs == count_ops(basic).cloud.macs
    assert all(isinstance(b, BiRealBlock) for b in bireal.blocks[: bireal.split])
    assert not any(isinstance(b, BiRealBlock) for b in bireal.blocks[bireal.split :])


def test_recipe_block_reaches_the_network_and_only_appears_in_the_state_key_when_set():
    base = {"name": "r", "dataset": "cifar10", "architecture": "resnet20", "epochs": 1}
    assert "block" not in recipe_from_dict(base).to_dict()
    recipe = recipe_from_dict({**base, "block": "bireal"})
    assert recipe.to_dict()["block"] == "bireal"
    assert recipe.model_kwargs()["block"] == "bireal"


def test_block_on_a_network_without_blocks_of_that_kind_is_a_user_error():
    base = {"name": "r", "dataset": "fashion-mnist", "architecture": "smallcnn", "epochs": 1}
    with pytest.raises(UserInputError, match="block"):
        recipe_from_dict({**base, "block": "bireal"})
    with pytest.raises(UserInputError, match="block"):
        recipe_from_dict({**base, "architecture": "resnet20", "block": "xnor"})

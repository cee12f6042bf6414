"""Bi-Real / ReActNet binary blocks: a shortcut around every conv, learnable thresholds."""

import pytest
import torch
from torch import nn

from fogsim.errors import UserInputError
from fogsim.nn.bireal import BiRealBlock
from fogsim.nn.ops import count_ops
from fogsim.nn.recipe import recipe_from_dict
from fogsim.nn.zoo import create_model


def _silence(norm: nn.BatchNorm2d) -> None:
    nn.init.zeros_(norm.weight)
    nn.init.zeros_(norm.bias)


def test_each_conv_has_its_own_shortcut():
    # BN scaled to zero silences a binary conv; what remains is its own shortcut, and the
    # RPReLU at its initial zero shifts keeps positive values as they are.
    block = BiRealBlock(8, 8, 1, "binary", "binary").eval()
    _silence(block.norm1)
    _silence(block.norm2)
    x = torch.rand(2, 8, 6, 6) + 0.1
    assert torch.allclose(block(x), x)
    # With only the second conv silenced, the block is its first unit alone: the first
    # conv's real-valued output reaches the block's output (a plain block would add x).
    block = BiRealBlock(8, 8, 1, "binary", "binary").eval()
    _silence(block.norm2)
    h = block.act1(block.norm1(block.conv1(block.threshold1(x))) + x)
    assert torch.allclose(block(x), block.act2(h))


def test_downsampling_block_halves_the_map_and_changes_channels():
    block = BiRealBlock(16, 32, 2, "binary", "binary")
    assert block(torch.randn(2, 16, 16, 16)).shape == (2, 32, 8, 8)


def test_learnable_thresholds_and_prelu_get_gradients():
    block = BiRealBlock(8, 8, 1, "binary", "binary")
    block(torch.randn(4, 8, 8, 8)).square().mean().backward()
    for threshold, act in ((block.threshold1, block.act1), (block.threshold2, block.act2)):
        assert threshold.bias.grad is not None and threshold.bias.grad.abs().sum() > 0
        assert act.prelu.weight.grad.abs().sum() > 0


def test_convs_binarize_their_inputs_and_weights():
    block = BiRealBlock(4, 4, 1, "binary", "binary")
    assert block.conv1.op_precision == block.conv2.op_precision == "binary"


def test_init_from_a_plain_resnet_starts_the_binary_convs_from_its_weights():
    plain = create_model("resnet20").state_dict()
    bireal = create_model(
        "resnet20", weight_precision="binary", act_precision="binary", block="bireal"
    ).state_dict()
    for i in range(6):
        for conv in ("conv1", "conv2"):
            key = f"blocks.{i}.{conv}.weight"
            assert bireal[key].shape == plain[key].shape


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

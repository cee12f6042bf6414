"""Bi-Real / ReActNet binary blocks: a shortcut around every conv, learnable thresholds."""

import torch
from torch import nn

from fogsim.nn.bireal import BiRealBlock, BiRealUnit


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

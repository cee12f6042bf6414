"""Bi-Real / ReActNet binary blocks: a shortcut around every conv, learnable thresholds."""

from pathlib import Path

import pytest
import torch
from torch import nn

from fogsim.errors import UserInputError
from fogsim.nn.bireal import BiRealBlock
from fogsim.nn.ops import all_fp32, count_ops
from fogsim.nn.recipe import recipe_from_dict
from fogsim.nn.zoo import create_model

ROOT = Path(__file__).parents[1]


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


def _binary_resnet(**kwargs):
    return create_model(
        "resnet20",
        weight_precision="binary",
        act_precision="binary",
        block="bireal",
        exit_head="conv",
        **kwargs,
    )


def test_a_wider_edge_multiplies_the_device_channels_and_leaves_the_cloud_blocks_alone():
    narrow, wide = count_ops(_binary_resnet()), count_ops(_binary_resnet(edge_width=2))
    # Every binary conv (and the binary conv exit) has twice the inputs and twice the outputs.
    assert wide.edge.macs["binary"] == 4 * narrow.edge.macs["binary"]
    # fp32: the stem doubles its outputs, the 1x1 downsampling conv both sides, the exit's
    # classifier (after the exit conv's 64 channels, 128 when wider) its inputs.
    stem, down, head = 3 * 16 * 9 * 32 * 32, 16 * 32 * 16 * 16, 64 * 10
    assert narrow.edge.macs["fp32"] == stem + down + head
    assert wide.edge.macs["fp32"] == 2 * stem + 4 * down + 2 * head
    # The split sends 64 channels, not 32; only the first cloud block sees more of them.
    assert wide.feature_shape == (64, 16, 16) and narrow.feature_shape == (32, 16, 16)
    first_block = 32 * 64 * 9 * 8 * 8 + 32 * 64 * 8 * 8  # its conv1 and its 1x1 shortcut
    assert wide.cloud.macs["fp32"] - narrow.cloud.macs["fp32"] == first_block
    logits, final = _binary_resnet(edge_width=2)(torch.rand(2, 3, 32, 32))
    assert final.shape == (2, 10) and logits[0].shape == (2, 10)


def test_init_from_the_plain_reference_leaves_only_the_widened_tensors_fresh():
    plain = create_model("resnet20").state_dict()
    wide = _binary_resnet(edge_width=2).state_dict()
    fits = {k for k in wide if k in plain and wide[k].shape == plain[k].shape}
    # The cloud's last two blocks and the final head fit; the widened device part does not.
    assert {f"blocks.{i}.conv1.weight" for i in (7, 8)} <= fits and "final.fc.weight" in fits
    assert not any(k.startswith(("stem", "blocks.0.", "blocks.5.")) for k in fits)


def test_edge_width_is_a_recipe_key_for_the_cifar_resnets_only():
    base = {"name": "r", "dataset": "cifar10", "architecture": "resnet20", "epochs": 1}
    assert "edge_width" not in recipe_from_dict(base).to_dict()
    recipe = recipe_from_dict({**base, "edge_width": 2})
    assert recipe.to_dict()["edge_width"] == 2 and recipe.model_kwargs()["edge_width"] == 2
    for bad in (0, 1.5, "two"):
        with pytest.raises(UserInputError, match="edge_width"):
            recipe_from_dict({**base, "edge_width": bad})
    fmnist = {**base, "dataset": "fashion-mnist", "architecture": "smallcnn"}
    with pytest.raises(UserInputError, match="edge_width"):
        recipe_from_dict({**fmnist, "edge_width": 2})


def _seed_line(name: str) -> str:
    from fogsim.nn.card import card_markdown
    from fogsim.nn.checkpoint import load_checkpoint

    ckpt = load_checkpoint(ROOT / "models" / f"{name}.pt")
    md = card_markdown(ckpt.card, ckpt.path)
    return next(line for line in md.splitlines() if "the seed paper's compute energy" in line)


def test_a_wide_networks_card_also_compares_with_the_reference_network_eval_is_given():
    # The seed compares with the usual network: for a widened edge that is the shipped fp32
    # reference (`fogsim eval --reference models/cifar10-fp32.pt`), not the wide fp32 twin.
    from fogsim.energy import compute_energy_j, default_table
    from fogsim.nn.card import hybrid_compute_energy_j
    from fogsim.nn.checkpoint import load_checkpoint

    table = default_table()
    wide = load_checkpoint(ROOT / "models/cifar10-binary.pt")
    assert wide.model_kwargs["edge_width"] == 2
    reference = count_ops(load_checkpoint(ROOT / "models/cifar10-fp32.pt").build())
    reference_j = compute_energy_j(all_fp32(reference.full_macs), table)
    rates = wide.card["test_metrics"]["exit_rate_per_exit"]
    hybrid_j = hybrid_compute_energy_j(count_ops(wide.build()), rates, table)
    line = _seed_line("cifar10-binary")
    assert "the same network (edge_width 2) all fp32" in line
    assert f"against {reference_j * 1e6:.4g} uJ for the usual network (edge_width 1)" in line
    assert f"fp32: {reference_j / hybrid_j:.3g}x less (`compute_energy_reduction`" in line
    assert reference_j / hybrid_j > 5.5
    # At the usual width there is one network to compare with.
    assert "usual network" not in _seed_line("cifar10-int4")

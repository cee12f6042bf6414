"""``split_precision``: what the device sends at the split, apart from its activations."""

import pytest
import torch

from fogsim.errors import UserInputError
from fogsim.nn.checkpoint import load_checkpoint, save_checkpoint
from fogsim.nn.ops import count_ops
from fogsim.nn.quant import quantize_activation
from fogsim.nn.recipe import recipe_from_dict
from fogsim.nn.zoo import create_model

BINARY = {"weight_precision": "binary", "act_precision": "binary"}


@pytest.mark.parametrize(("sends", "bits"), [("int4", 4), ("int8", 8), ("fp32", 32)])
def test_the_split_sends_at_its_own_precision_and_the_bytes_follow(sends, bits):
    plain = create_model("smallcnn", **BINARY)
    wider = create_model("smallcnn", **BINARY, split_precision=sends)
    (sent_plain,) = count_ops(plain).boundaries
    (sent,) = count_ops(wider).boundaries
    assert sent.precision == sends and sent_plain.precision == "binary"
    assert sent.bytes == sent_plain.bytes * bits
    # The device's own layers do not change: the same MACs at the same precisions.
    assert count_ops(wider).edge.macs == count_ops(plain).edge.macs


def test_the_cloud_reads_the_features_on_the_grid_of_the_split_precision():
    torch.manual_seed(0)
    model = create_model("smallcnn", **BINARY, split_precision="int4").eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        sent, _ = model.edge(x)
        raw, _ = model.edge_features(x)
        expected = quantize_activation(model.split_quant[0](raw), "int4")
    torch.testing.assert_close(sent, expected)
    assert len(torch.unique(sent)) > 2  # more than a sign


def test_a_checkpoint_keeps_its_split_precision(tmp_path):
    model = create_model("smallcnn", **BINARY, split_precision="int8")
    path = tmp_path / "net.pt"
    args = {**BINARY, "split_precision": "int8"}
    save_checkpoint(path, "smallcnn", args, model, {"dataset": "toy"})
    assert load_checkpoint(path).build().edge_act_precision == "int8"


def test_recipes_check_it():
    base = {"name": "r", "dataset": "fashion-mnist", "architecture": "smallcnn", "epochs": 1}
    recipe = recipe_from_dict({**base, **BINARY, "split_precision": "int4"})
    assert recipe.model_kwargs()["split_precision"] == "int4"
    assert "split_precision" not in recipe_from_dict({**base, **BINARY}).to_dict()
    with pytest.raises(UserInputError, match="split_precision"):
        recipe_from_dict({**base, "split_precision": "int3"})
    with pytest.raises(UserInputError, match="split_precision with split 0"):
        recipe_from_dict(
            {**base, "split": 0, "exits": [], "exit_weights": [], "split_precision": "int8"}
        )

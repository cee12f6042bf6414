"""A recipe's ``freeze:``: the parts it names keep init_from's weights and statistics, the
rest learns, and the training cost counts the frozen parts' forward pass alone."""

import pytest
import torch
from test_nn_train import RECIPE, fit, toy_dataset

from fogsim.errors import UserInputError
from fogsim.nn.checkpoint import load_checkpoint
from fogsim.nn.freeze import frozen_modules, group_of
from fogsim.nn.ops import _layer_macs
from fogsim.nn.recipe import recipe_from_dict
from fogsim.nn.training_cost import mac_energy_j
from fogsim.nn.zoo import create_model


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def trained(tmp_path):
    """A trained binary-edge toy network to start from."""
    recipe = recipe_from_dict({**RECIPE, "name": "base", "epochs": 2})
    fit(recipe, tmp_path / "base-work", tmp_path / "base.pt", data=toy_dataset)
    return tmp_path / "base.pt"


def _retrain(tmp_path, start, freeze, **overrides):
    recipe = recipe_from_dict(
        {**RECIPE, "name": "again", "init_from": str(start), "freeze": freeze, **overrides}
    )
    lines: list[str] = []
    card = fit(recipe, tmp_path / "again-work", tmp_path / "again.pt", lines.append)
    return card, load_checkpoint(tmp_path / "again.pt").state_dict, lines


def test_frozen_parts_keep_their_weights_and_statistics_and_the_rest_learns(tmp_path, trained):
    before = load_checkpoint(trained).state_dict
    card, after, lines = _retrain(tmp_path, trained, ["device"])
    model = create_model("smallcnn", num_classes=4, weight_precision="binary", act_precision=1)
    kept = {k for k in before if group_of(k, model) == "device"}
    assert kept and {k for k in before if group_of(k, model) == "cloud"}
    for key, value in before.items():
        if key in kept:  # weights, and BatchNorm running statistics and batch counts too
            assert torch.equal(after[key], value), key
    moved = [k for k in before if k not in kept and not torch.equal(after[k], before[k])]
    assert any(k.startswith("final.") for k in moved)
    assert any(k.startswith("exits.") for k in moved)
    assert any(line.startswith("holding device fixed;") for line in lines)
    assert card["recipe"]["freeze"] == ["device"]


def test_frozen_exit_heads_stay_as_they_were(tmp_path, trained):
    before = load_checkpoint(trained).state_dict
    _, after, _ = _retrain(tmp_path, trained, ["device", "exits"])
    model = create_model("smallcnn", num_classes=4, weight_precision="binary", act_precision=1)
    assert frozen_modules(model, ["exits"]) == list(model.exits)
    for key, value in before.items():
        if key.startswith(("exits.", "stem.", "blocks.0.")):
            assert torch.equal(after[key], value), key


def test_the_training_cost_counts_a_frozen_part_forward_only(tmp_path, trained):
    whole, _, _ = _retrain(tmp_path / "a", trained, None)
    part, _, _ = _retrain(tmp_path / "b", trained, ["device"])
    model = create_model("smallcnn", num_classes=4, weight_precision="binary", act_precision=1)
    macs, _ = _layer_macs(model)
    device_macs = sum(m for name, (_, m) in macs.items() if group_of(name, model) == "device")
    device_params = sum(
        p.numel() for n, p in model.named_parameters() if group_of(n, model) == "device"
    )
    images = whole["train_images"] * whole["epochs"]
    saved = 2 * device_macs * images * mac_energy_j(32, 32)
    t_whole, t_part = whole["training"], part["training"]
    assert t_whole["gemm_energy_j"] - t_part["gemm_energy_j"] == pytest.approx(saved, rel=1e-9)
    assert t_whole["peak_grad_bytes"] - t_part["peak_grad_bytes"] == 4 * device_params
    assert t_whole["peak_param_bytes"] == t_part["peak_param_bytes"]  # stored all the same
    assert t_part["param_movement_energy_j"] < t_whole["param_movement_energy_j"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"freeze": ["device"]}, "without init_from"),
        ({"freeze": ["edge"], "init_from": "x.pt"}, "freeze"),
        ({"freeze": "device", "init_from": "x.pt"}, "not a list"),
        ({"freeze": ["device", "device"], "init_from": "x.pt"}, "twice"),
        ({"freeze": ["fog"], "init_from": "x.pt"}, "no fog part"),
        (
            {"freeze": ["exits"], "init_from": "x.pt", "exits": [], "exit_weights": []},
            "no exit heads",
        ),
        (
            {"freeze": ["device", "exits", "cloud"], "init_from": "x.pt"},
            "nothing would train",
        ),
        (
            {
                "freeze": ["device"],
                "init_from": "x.pt",
                "method": "rct",
                "weight_precision": "fp32",
            },
            "method rct",
        ),
    ],
)
def test_impossible_freezes_are_refused_before_training(override, message):
    with pytest.raises(UserInputError, match=message):
        recipe_from_dict({**RECIPE, **override})

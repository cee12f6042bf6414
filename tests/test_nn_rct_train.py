"""`method: rct | qat` recipes: their keys, training them, and what the card and eval keep."""

import json

import pytest
import torch
import yaml
from test_nn_train import _cli, fit, toy_dataset
from typer.testing import CliRunner

import fogsim.data
from fogsim.errors import UserInputError
from fogsim.nn.checkpoint import load_checkpoint
from fogsim.nn.rct import qmax
from fogsim.nn.recipe import recipe_from_dict

BASE = {"name": "r", "dataset": "fashion-mnist", "architecture": "smallcnn", "epochs": 2}
RCT = {**BASE, "method": "rct", "optimizer": "sgd", "momentum": 0}


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"method": "int8"}, "method"),
        ({"bitwidth": {"start": 8}}, "bitwidth"),  # without a method
        ({**RCT, "optimizer": "adam"}, "optimizer"),
        ({**RCT, "weight_precision": "int8"}, "weight_precision"),
        ({**RCT, "autocast": "bf16"}, "autocast"),
        ({**RCT, "bitwidth": {"max": 17}}, "bitwidth.max"),
        ({**RCT, "bitwidth": {"start": 8, "max": 6}}, "bitwidth.start"),
        ({**RCT, "bitwidth": {"bits": 8}}, "bitwidth"),
        ({**RCT, "bitwidth": {"grow_below": 1, "shrink_above": 0.5}}, "bitwidth.grow_below"),
        ({**BASE, "method": "qat", "bitwidth": {"min": 4}}, "bitwidth.min"),
    ],
)
def test_a_bad_method_key_is_a_user_error_naming_it(override, key) -> None:
    with pytest.raises(UserInputError, match=key):
        recipe_from_dict({**BASE, **override})


def test_rct_takes_sgd_with_momentum_but_no_adam() -> None:
    assert recipe_from_dict({**RCT, "momentum": 0.9}).momentum == 0.9
    with pytest.raises(UserInputError, match="int8"):  # the message says what rct keeps
        recipe_from_dict({**RCT, "optimizer": "adam"})


def test_method_and_bitwidth_appear_in_the_recipe_dict_only_when_set() -> None:
    assert "method" not in recipe_from_dict(BASE).to_dict()
    d = recipe_from_dict({**RCT, "bitwidth": {"start": 6}}).to_dict()
    assert d["method"] == "rct" and d["bitwidth"]["start"] == 6


@pytest.fixture(autouse=True)
def toy_data(monkeypatch, tmp_path):
    monkeypatch.setattr(fogsim.data, "load_dataset", toy_dataset)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_rct_trains_ships_weights_on_each_layers_grid_and_eval_reports_its_cost(tmp_path):
    recipe = {
        **RCT,
        "name": "toy-rct",
        "dataset": "toy",
        "epochs": 4,
        "batch_size": 32,
        "lr": 0.5,
        "holdout": 64,
        "bitwidth": {"start": 6, "min": 3, "max": 8},
    }
    path, ckpt = tmp_path / "toy.yaml", tmp_path / "toy.pt"
    path.write_text(yaml.safe_dump(recipe))
    runner = CliRunner()
    result = runner.invoke(_cli(), ["train", str(path), "--output", str(ckpt), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "training cost (rct)" in result.output and "weight bits during epoch 4" in result.output
    loaded = load_checkpoint(ckpt)
    training = loaded.card["training"]
    bits = training["bits_per_epoch"]
    assert all(len(v) == 4 for v in bits.values())
    # The bits of the epoch that ships (the last, or the best before it) bound each
    # channel's distinct weights: at most 2 qmax + 1 values on a symmetric grid.
    state = loaded.state_dict
    for name, per_epoch in bits.items():
        w = state[f"{name}.weight"].flatten(1)
        for channel in w:
            assert len(torch.unique(channel)) <= 2 * qmax(max(per_epoch)) + 1
    assert "## Training cost (rct)" in ckpt.with_suffix(".md").read_text()
    result = runner.invoke(_cli(), ["eval", str(ckpt), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    t = report["training"]
    assert t["method"] == "rct"
    for key in ("peak_param_bytes", "gemm_energy_j", "param_movement_energy_j"):
        assert 0 < t[key] < t[f"fp32_{key}"]
    assert report["accuracy"]["cloud"] > 0.4  # four classes: chance is 0.25


@pytest.mark.parametrize("method", ["qat", "rct"])
def test_both_methods_train_with_momentum_and_count_its_state(tmp_path, method):

    common = {"dataset": "toy", "epochs": 1, "batch_size": 64, "lr": 0.1, "holdout": 64}
    recipe = recipe_from_dict({**RCT, **common, "method": method, "momentum": 0.9})
    card = fit(recipe, tmp_path / "work", tmp_path / "out.pt")
    t = card["training"]
    # QAT's momentum is fp32, as fp32 training's; RCT's int8 for its integer weights.
    fp32_state = t["fp32_peak_optimizer_bytes"]
    assert t["method"] == method and 0 < t["peak_optimizer_bytes"] <= fp32_state
    assert (t["peak_optimizer_bytes"] < fp32_state) == (method == "rct")
    assert not [k for k in load_checkpoint(tmp_path / "out.pt").state_dict if "momentum" in k]


@pytest.mark.parametrize("momentum", [0, 0.9])
def test_rct_training_is_deterministic_and_resumes_with_its_bits(tmp_path, momentum):
    from fogsim.nn.train import STATE_FILE

    recipe = recipe_from_dict(
        {
            **RCT,
            "momentum": momentum,
            "name": "toy-rct",
            "dataset": "toy",
            "epochs": 2,
            "batch_size": 64,
            "lr": 0.5,
            "holdout": 64,
            "bitwidth": {"start": 6, "min": 3, "max": 8, "shrink_above": 0.1},
        }
    )

    def run(work: str, log=lambda _: None) -> dict:
        card = fit(recipe, tmp_path / work, tmp_path / f"{work}.pt", log)
        state = torch.load(tmp_path / f"{work}.pt", weights_only=True)["state_dict"]
        return {"bits": card["training"]["bits_per_epoch"], **state}

    whole = run("a")

    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("epoch 1:"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run("b", stop_after_first_epoch)
    # The state after epoch 1 keeps RCT's int8 momentum: what the resumed run continues from.
    saved = torch.load(tmp_path / "b" / STATE_FILE, weights_only=True)["model"]
    kept = {k: v for k, v in saved.items() if k.endswith("momentum_int")}
    assert len(kept) == (7 if momentum else 0)
    assert all(v.dtype == torch.int8 and v.any() for v in kept.values())
    resumed = run("b")
    assert whole["bits"] == resumed["bits"]
    assert any(v[0] != v[1] for v in whole["bits"].values())  # some layer changed its bits
    assert all(torch.equal(whole[k], resumed[k]) for k in whole if k != "bits")

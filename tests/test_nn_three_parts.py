"""Networks in three parts (device, fog, cloud): the forward pass part by part, the recipe's
refusals, inference outcomes by tier, and the shipped two-part networks left as they were."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fogsim.data.dataset import Dataset, fingerprint
from fogsim.errors import UserInputError
from fogsim.inference import run_inference
from fogsim.nn.checkpoint import load_checkpoint, save_checkpoint
from fogsim.nn.codec import compressed_sizes
from fogsim.nn.evaluate import to_input
from fogsim.nn.recipe import load_recipe, recipe_from_dict
from fogsim.nn.zoo import create_model

ROOT = Path(__file__).resolve().parent.parent
THREE = {
    "num_classes": 4,
    "split": 2,
    "fog_split": 3,
    "exits": [2, 3],
    "weight_precision": "binary",
    "act_precision": "binary",
    "fog_weight_precision": "int8",
    "fog_act_precision": "int8",
}
RECIPE = {
    "name": "toy",
    "dataset": "toy",
    "architecture": "smallcnn",
    "epochs": 1,
    "split": 2,
    "fog_split": 3,
    "exits": [2, 3],
    "exit_weights": [0.3, 0.3],
}


def _toy(n: int = 40, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    labels = rng.integers(0, 4, n).astype(np.int64)
    return Dataset(
        "toy", "test", images, labels, ("a", "b", "c", "d"), fingerprint(images, labels), "mem"
    )


def _three_part(**changes: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("smallcnn", **{**THREE, **changes}).eval()


def test_forward_is_the_three_parts_run_by_hand():
    model = _three_part()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        (device_logits, fog_logits), final = model(x)
        h = model.stem((x - model.input_mean) / model.input_std)
        h = model.blocks[1](model.blocks[0](h))
        assert torch.equal(model.exits[0](h), device_logits)
        before, _ = model.edge_features(x)
        assert torch.equal(before, h)
        sent = model.split_quant(h)
        h = model.blocks[2](sent)
        assert torch.equal(model.exits[1](h), fog_logits)
        forwarded = model.fog_quant(h)
        assert torch.equal(model.final(model.blocks[3](forwarded)), final)
    # What crosses each boundary lies on the sender's grid: signs, then 8-bit levels.
    assert set(sent.unique().tolist()) <= {-1.0, 1.0}
    codes = (forwarded + 1) / 2 * 255
    assert torch.allclose(codes, codes.round(), atol=1e-4) and forwarded.abs().max() <= 1
    assert [b.conv.weight_precision for b in model.blocks] == ["binary", "binary", "int8", "fp32"]
    assert model.tiers == ("device", "fog", "cloud")
    assert model.exit_tiers == ("device", "fog")


def test_resnet_fog_blocks_take_the_fog_precisions_and_stay_plain():
    model = create_model(
        "resnet20",
        split=3,
        fog_split=6,
        exits=[3, 5],
        weight_precision="binary",
        act_precision="binary",
        fog_weight_precision=4,
        fog_act_precision=4,
        block="bireal",
        exit_head="conv",
    )
    kinds = [type(b).__name__ for b in model.blocks]
    assert kinds == ["BiRealBlock"] * 3 + ["BasicBlock"] * 6
    assert [b.conv1.weight_precision for b in model.blocks[3:]] == ["int4"] * 3 + ["fp32"] * 3
    # A conv exit head runs at the precision of the part it sits on.
    assert [e.conv.weight_precision for e in model.exits] == ["binary", "int4"]
    assert model.exit_tiers == ("device", "fog")
    exits, final = model(torch.rand(2, 3, 32, 32))
    assert len(exits) == 2 and final.shape == (2, 10)


def test_default_exits_end_the_device_and_fog_parts():
    model = create_model("smallcnn", split=1, fog_split=3)
    assert model.exit_points == (1, 3) and model.exit_tiers == ("device", "fog")


def test_a_two_part_network_has_no_fog_part():
    model = create_model("smallcnn", weight_precision="binary", act_precision="binary")
    assert model.tiers == ("device", "cloud") and model.fog_split is None
    assert not any(k.startswith("fog_quant") for k in model.state_dict())
    features = torch.rand(2, 64, 7, 7)
    assert model.fog(features) == (features, [])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fog_split": 2}, "fog_split: 2 is outside 3..4"),
        ({"fog_split": 1}, "fog_split: 1 is outside 3..4"),
        ({"fog_split": 5}, "fog_split: 5 is outside 3..4"),
        ({"exits": [2, 4], "exit_weights": [0.3, 0.3]}, r"exits: \[2, 4\].*1..3 \(fog_split"),
        (
            {"fog_split": None, "fog_weight_precision": "int8"},
            "fog_weight_precision: 'int8'.*no fog",
        ),
        ({"fog_split": None, "fog_act_precision": 4}, "fog_act_precision: 'int4'.*no fog"),
        ({"fog_act_precision": "int3"}, "fog_act_precision"),
        ({"fog_split": "x"}, "fog_split"),
    ],
)
def test_bad_fog_settings_are_refused_naming_the_key(changes, message):
    raw = {**RECIPE, **changes}
    if changes.get("fog_split", 0) is None:
        del raw["fog_split"]
        raw["exits"], raw["exit_weights"] = [2], [0.5]
    with pytest.raises(UserInputError, match=message):
        recipe_from_dict(raw, "toy.yaml")


def test_the_constructor_names_bad_fog_arguments_too():
    with pytest.raises(ValueError, match="fog_split 2 is outside 3..4"):
        create_model("smallcnn", split=2, fog_split=2)
    with pytest.raises(ValueError, match=r"exits \(2, 4\).*fog_split=3"):
        create_model("smallcnn", split=2, fog_split=3, exits=[2, 4])
    with pytest.raises(ValueError, match="fog_weight_precision set without fog_split"):
        create_model("smallcnn", fog_weight_precision="int8")


def test_fog_keys_reach_the_network_and_stay_out_of_two_part_recipes():
    three = recipe_from_dict({**RECIPE, "fog_weight_precision": 8}, "toy.yaml")
    assert three.model_kwargs()["fog_split"] == 3
    assert three.model_kwargs()["fog_weight_precision"] == "int8"
    assert three.to_dict()["fog_split"] == 3 and "fog_act_precision" not in three.to_dict()
    two = recipe_from_dict({**RECIPE, "exits": [2], "exit_weights": [0.5], "fog_split": None})
    assert not any(k.startswith("fog") for k in two.to_dict())
    assert not any(k.startswith("fog") for k in two.model_kwargs())


def _shipped() -> dict:
    return json.loads((ROOT / "tests/data/shipped_outputs.json").read_text())


@pytest.mark.parametrize("name", sorted(_shipped()))
def test_shipped_checkpoints_give_the_outputs_they_gave_before_three_parts(name):
    # Recorded from each shipped file by the code before fog parts existed (commit 2d90966);
    # a file trained since is recorded once when it ships (tests/data/record_shipped_outputs.py).
    recorded = _shipped()[name]
    path = ROOT / "models" / name
    ckpt = load_checkpoint(path)
    if ckpt.sha256 != recorded["sha256"]:
        pytest.skip(f"{name} was retrained since its outputs were recorded")
    model = ckpt.build()
    assert sorted(model.state_dict()) == recorded["state_dict_keys"]
    x = torch.rand(
        recorded["n_images"], *model.input_shape, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        exits, final = model(x)
    # Float kernels differ by CPU (oneDNN picks them by instruction set): the same code and
    # weights give logits a few ulp apart on another machine, so the check allows 1e-5. A
    # changed network moves them by orders of magnitude more.
    close = {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(final, torch.tensor(recorded["final_logits"]), **close)
    assert len(exits) == len(recorded["exit_logits"])
    for got, want in zip(exits, recorded["exit_logits"], strict=True):
        torch.testing.assert_close(got, torch.tensor(want), **close)


RECIPE_DICTS = json.loads((ROOT / "tests/data/recipe_dicts.json").read_text())


@pytest.mark.parametrize("name", sorted(RECIPE_DICTS))
def test_shipped_recipes_keep_the_dict_their_training_states_are_keyed_by(name):
    # Recorded by the code before fog parts existed (commit 2d90966); cifar10-binary's entry
    # was recorded again when its recipe changed (Bi-Real blocks, 60 epochs), and
    # cifar10-int4's when its epochs went from 8 to 30, and again for its relu grid (8 epochs);
    # cifar10-binary's again at 120 epochs, cifar10-int4's at 24, cifar10-binary's at edge_width 2
    # and 60 epochs, and at split_precision int4 distilled from ResNet-32; cifar10-resnet32-fp32's
    # when its run started; cifar10-binary's as a second schedule when the int4 run ended
    # unshipped, and at 120 epochs when that second schedule did not lift the test curve;
    # cifar10-resnet32-binary's when its run started; cifar10-binary-200's when its run started.
    assert load_recipe(ROOT / "models/recipes" / name).to_dict() == RECIPE_DICTS[name]


TRAINING_STATES = sorted(p.parent.name for p in (ROOT / "models/training").glob("*/state.pt"))


# Every run in training, whichever it is; a shipped run's state is deleted, so nothing is left
# to check (the list was once written out by hand, and its shipped names skipped for good).
@pytest.mark.parametrize("name", TRAINING_STATES)
def test_a_training_state_on_disk_still_matches_its_recipe(name):
    state = ROOT / "models/training" / name / "state.pt"
    recorded = torch.load(state, map_location="cpu", weights_only=True)["recipe"]
    assert load_recipe(ROOT / "models/recipes" / f"{name}.yaml").to_dict() == recorded


def test_inference_outcomes_carry_each_exit_tier_and_the_fog_features(tmp_path):
    model = _three_part()
    path = tmp_path / "three.pt"
    card = {"default_threshold": 1.0, "default_thresholds": [0.9, 1.2], "default_rule": "entropy"}
    save_checkpoint(path, "smallcnn", THREE, model, card)
    ds = _toy(23)
    o = run_inference(path, ds, batch_size=8, cache_dir=tmp_path / "cache", progress=False)
    assert o.tiers == ("device", "fog", "cloud") and o.exit_tiers == ("device", "fog")
    assert o.default_thresholds == (0.9, 1.2) and o.default_threshold == 1.0
    assert o.feature_bytes == 64 * 7 * 7 // 8 and o.fog_feature_bytes == 64 * 7 * 7
    with torch.no_grad():
        sent, _ = model.edge(to_input(ds.images))
        forwarded, _ = model.fog(sent)
    assert np.array_equal(o.compressed_feature_bytes, compressed_sizes(sent, "binary"))
    assert np.array_equal(o.compressed_fog_feature_bytes, compressed_sizes(forwarded, "int8"))
    # The device runs its whole part for a fog exit; the fog runs nothing for a device exit.
    assert o.edge_ops_to_exit[0] == o.edge_ops_to_exit[1] == o.edge_ops
    assert o.fog_ops_to_exit[0] == {} and o.fog_ops_to_exit[1] == o.fog_ops
    assert set(o.fog_ops) == {"int8", "fp32"} and set(o.cloud_ops) == {"fp32"}
    assert o.part_ops == {"device": o.edge_ops, "fog": o.fog_ops, "cloud": o.cloud_ops}
    again = run_inference(path, ds, cache_dir=tmp_path / "cache", progress=False)
    for field in ("tiers", "exit_tiers", "fog_ops", "fog_ops_to_exit", "default_thresholds"):
        assert getattr(again, field) == getattr(o, field), field
    assert np.array_equal(again.compressed_fog_feature_bytes, o.compressed_fog_feature_bytes)


def test_a_two_part_network_answers_as_before_with_an_empty_fog(tmp_path):
    kwargs = {k: v for k, v in THREE.items() if not k.startswith("fog")} | {"exits": [1, 2]}
    torch.manual_seed(0)
    path = tmp_path / "two.pt"
    card = {"default_threshold": 0.7, "default_rule": "entropy"}
    save_checkpoint(path, "smallcnn", kwargs, create_model("smallcnn", **kwargs).eval(), card)
    o = run_inference(path, _toy(9), cache_dir=tmp_path / "cache", progress=False)
    assert o.tiers == ("device", "cloud") and o.exit_tiers == ("device", "device")
    assert o.fog_ops == {} and o.fog_ops_to_exit == ({}, {}) and o.fog_feature_bytes == 0
    assert o.default_thresholds == (0.7, 0.7)
    assert np.array_equal(o.compressed_fog_feature_bytes, np.zeros(9))


def test_the_shipped_three_part_recipe_validates():
    r = load_recipe(ROOT / "models/recipes/fmnist-3tier.yaml")
    assert (r.split, r.fog_split, r.weight_precision, r.fog_weight_precision) == (
        2,
        3,
        "binary",
        "int8",
    )
    assert yaml.safe_load((ROOT / "models/recipes/fmnist-3tier.yaml").read_text())["exits"] == [
        2,
        3,
    ]


@pytest.mark.parametrize(
    ("value", "message"), [("0.5,0.6,0.7", "3 thresholds for the 2 exit"), ("nan", "'nan'")]
)
def test_a_bad_threshold_list_exits_2_with_a_message(tmp_path, value, message):
    path = tmp_path / "three.pt"
    card = {"default_threshold": 1.0, "default_rule": "entropy", "dataset": "fashion-mnist"}
    save_checkpoint(path, "smallcnn", THREE, _three_part(), card)
    result = subprocess.run(
        [sys.executable, "-m", "fogsim", "eval", str(path), "--threshold", value],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr

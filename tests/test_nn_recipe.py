"""Recipes: every key type-checked and named, numbers YAML reads as strings, dataset paths."""

from pathlib import Path

import pytest
import yaml

from fogsim.errors import UserInputError
from fogsim.nn.recipe import DatasetPath, load_recipe, recipe_from_dict

RECIPES = Path(__file__).parents[1] / "models" / "recipes"
BASE = {"name": "r", "dataset": "fashion-mnist", "architecture": "smallcnn", "epochs": 2}

# The training state of a run is keyed by to_dict(): this is cifar10-fp32's, as it was when
# its 120-epoch run started. It must not change.
CIFAR10_FP32 = {
    "name": "cifar10-fp32",
    "dataset": "cifar10",
    "architecture": "resnet20",
    "epochs": 120,
    "weight_precision": "fp32",
    "act_precision": "fp32",
    "split": 6,
    "exits": [6],
    "exit_weights": [0.3],
    "seed": 0,
    "batch_size": 128,
    "optimizer": "sgd",
    "lr": 0.1,
    "lr_schedule": "onecycle",
    "momentum": 0.9,
    "weight_decay": 0.0005,
    "augmentation": {"crop_padding": 4, "hflip": True},
    "holdout": 5000,
    "train_subset": None,
    "exit_rule": "entropy",
    "max_accuracy_drop": 0.01,
    "exit_head": "conv",
    "init_from": None,
    "distill": None,
    "autocast": "bf16",
}


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return load_recipe(path)


def test_the_cifar10_fp32_recipe_dict_is_unchanged():
    raw = yaml.safe_load((RECIPES / "cifar10-fp32.yaml").read_text())
    d = recipe_from_dict(raw).to_dict()
    assert d == CIFAR10_FP32
    assert {k: type(v) for k, v in d.items()} == {k: type(v) for k, v in CIFAR10_FP32.items()}


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_recipe_loads(path):
    raw = yaml.safe_load(path.read_text())
    recipe = load_recipe(path)
    assert recipe.name == path.stem and recipe.dataset == raw["dataset"]
    assert recipe.to_dict()["lr"] == raw["lr"] and type(recipe.to_dict()["lr"]) is float


def test_floats_yaml_reads_as_strings_are_numbers(tmp_path):
    # YAML 1.1 reads 1e-3 (no dot) as the string "1e-3".
    assert yaml.safe_load("lr: 1e-3") == {"lr": "1e-3"}
    text = (
        "name: r\ndataset: fashion-mnist\narchitecture: smallcnn\nepochs: 2\n"
        "lr: 1e-3\nweight_decay: 5e-4\nmomentum: 9e-1\nmax_accuracy_drop: 1e-2\n"
        "exit_weights: [3e-1]\ndistill: {teacher: t.pt, weight: 5e-1, temperature: 4e0}\n"
    )
    r = _load(tmp_path, text)
    assert (r.lr, r.weight_decay, r.momentum, r.max_accuracy_drop) == (0.001, 0.0005, 0.9, 0.01)
    assert r.exit_weights == (0.3,) and (r.distill.weight, r.distill.temperature) == (0.5, 4.0)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"epochs": "two"}, "epochs"),
        ({"epochs": 1.5}, "epochs"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"augmentation": 3}, "augmentation"),
        ({"augmentation": {"crop_padding": -1}}, "augmentation.crop_padding"),
        ({"augmentation": {"hflip": "yes please"}}, "augmentation.hflip"),
        ({"split": 9}, "split"),
        ({"split": "two"}, "split"),
        ({"exits": [7]}, "exits"),
        ({"exits": 2}, "exits"),
        ({"exits": ["x"]}, "exits\\[0\\]"),
        ({"exits": [1, 2], "exit_weights": [0.3]}, "exit_weights"),
        ({"exit_weights": 0.5}, "exit_weights"),
        ({"lr": "fast"}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"momentum": 1.5}, "momentum"),
        ({"weight_decay": [1]}, "weight_decay"),
        ({"batch_size": "many"}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"holdout": 0}, "holdout"),
        ({"optimizer": 3}, "optimizer"),
        ({"architecture": ["smallcnn"]}, "architecture"),
        ({"architecture": "vgg"}, "architecture"),
        ({"weight_precision": 3}, "weight_precision"),
        ({"act_precision": [1]}, "act_precision"),
        ({"name": "../evil"}, "name"),
        ({"name": 7}, "name"),
        ({"dataset": 7}, "dataset"),
        ({"dataset": {"name": "x"}}, "dataset"),
        ({"dataset": {"path": "x", "split": "train"}}, "dataset"),
        ({"init_from": 3}, "init_from"),
        ({"distill": "t.pt"}, "distill"),
        ({"distill": {"teacher": "t.pt", "temperature": 0}}, "distill.temperature"),
        ({"autocast": True}, "autocast"),
        ({"exit_head": "conv", "architecture": "resnet20", "split": 0}, "exits"),
    ],
)
def test_a_bad_value_is_a_user_error_naming_its_key(override, key):
    with pytest.raises(UserInputError, match=key):
        recipe_from_dict({**BASE, **override})


def test_a_dataset_path_is_relative_to_the_recipe_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "r.yaml"
    path.write_text(
        "name: r\ndataset: {path: ../digits, name: digits}\narchitecture: smallcnn\nepochs: 1\n"
    )
    r = load_recipe(path)
    assert isinstance(r.dataset, DatasetPath)
    assert r.dataset_args() == {"name": "digits", "path": tmp_path / "sub" / ".." / "digits"}
    # Kept as written, so that the training state survives moving the project folder.
    assert r.to_dict()["dataset"] == {"path": "../digits", "name": "digits"}
    assert recipe_from_dict({**BASE}).dataset_args() == {"name": "fashion-mnist"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"epochs: [1, 2\n", "not valid YAML"),
        (b"a: 2024-13-01\n", "not valid YAML"),
        (b"\xff\xfe\x00binary", "not a text file"),
        (b"", "mapping"),
        (b"- a\n- b\n", "mapping"),
    ],
)
def test_a_file_that_is_no_recipe_is_a_user_error(tmp_path, content, message):
    path = tmp_path / "r.yaml"
    path.write_bytes(content)
    with pytest.raises(UserInputError, match=message):
        load_recipe(path)


def test_fogsim_train_on_a_bad_recipe_exits_2_with_the_key_named(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ndataset: fashion-mnist\narchitecture: smallcnn\nepochs: two\n")
    done = subprocess.run(
        [sys.executable, "-m", "fogsim", "train", str(path), "--output", str(tmp_path / "b.pt")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "epochs: 'two' is not a whole number" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "training").exists()

"""dataset_mismatch: a checkpoint against a dataset; `fogsim eval --dataset` and its refusals."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from data_fixtures import isolate, write_idx
from typer.testing import CliRunner

from fogsim.commands.eval import eval_cmd
from fogsim.data.dataset import Dataset, fingerprint
from fogsim.errors import UserInputError
from fogsim.nn.checkpoint import dataset_mismatch, load_checkpoint, require_fit, save_checkpoint
from fogsim.nn.zoo import create_model

MODELS = Path(__file__).parents[1] / "models"
KWARGS = {"num_classes": 4, "weight_precision": "binary", "act_precision": "binary"}
CLASSES = ("tl", "tr", "bl", "br")


def _dataset(name="toy", classes=CLASSES, shape=(28, 28, 1), n=12, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    labels = rng.integers(0, len(classes), n).astype(np.int64)
    return Dataset(name, "test", images, labels, classes, fingerprint(images, labels), "mem")


@pytest.fixture
def toy(tmp_path):
    torch.manual_seed(0)
    data = _dataset()
    card = {
        "dataset": "toy",
        "classes": list(CLASSES),
        "dataset_fingerprint": data.fingerprint,
        "default_threshold": 0.5,
        "default_rule": "entropy",
    }
    path = tmp_path / "toy.pt"
    save_checkpoint(path, "smallcnn", KWARGS, create_model("smallcnn", **KWARGS), card)
    return load_checkpoint(path), data


def test_the_dataset_it_was_trained_on_fits(toy):
    ckpt, data = toy
    assert dataset_mismatch(ckpt, data) == []
    assert dataset_mismatch(ckpt, _dataset(seed=1)) == []  # other images, same dataset


def test_another_dataset_of_the_same_shape_runs_but_is_named(toy):
    ckpt, _ = toy
    problems = dataset_mismatch(ckpt, _dataset("digits", ("0", "1", "2", "3"), seed=5))
    assert len(problems) == 2 and not any(p.fatal for p in problems)
    assert "trained on 'toy', not 'digits'" in problems[0]
    assert "'tl' vs '0'" in problems[1]


def test_the_same_images_under_another_name_are_the_same_data(toy):
    ckpt, data = toy
    renamed = Dataset("my-copy", "test", data.images, data.labels, CLASSES, data.fingerprint, "m")
    assert dataset_mismatch(ckpt, renamed) == []


def test_a_shape_or_class_count_the_network_cannot_take_is_fatal(toy):
    ckpt, _ = toy
    (shape,) = dataset_mismatch(ckpt, _dataset(shape=(32, 32, 3)))
    assert shape.fatal and "32x32x3" in shape and "28x28x1" in shape
    problems = dataset_mismatch(ckpt, _dataset(classes=tuple("abcdefghij")))
    assert [p.fatal for p in problems] == [True] and "10 classes" in problems[0]


def test_require_fit_refuses_fatal_always_and_the_rest_unless_insisted(toy):
    ckpt, _ = toy
    with pytest.raises(UserInputError, match="cannot run"):
        require_fit(ckpt, _dataset(shape=(16, 16, 1)), allow_mismatch=True, how_to_insist="x")
    digits = _dataset("digits", ("0", "1", "2", "3"), seed=5)
    with pytest.raises(UserInputError, match="pass --yes to run it anyway"):
        require_fit(ckpt, digits, allow_mismatch=False, how_to_insist="pass --yes")
    assert len(require_fit(ckpt, digits, allow_mismatch=True, how_to_insist="x")) == 2


def test_fashion_mnist_network_on_mnist_is_noticed():
    # The case: fmnist-binary.pt on MNIST ran at 8.5% without a word.
    ckpt = load_checkpoint(MODELS / "fmnist-binary.pt")
    mnist = _dataset("mnist", tuple(str(d) for d in range(10)))
    problems = dataset_mismatch(ckpt, mnist)
    assert problems and not any(p.fatal for p in problems)
    assert "trained on 'fashion-mnist', not 'mnist'" in problems[0]


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_cmd)
    app.command("other")(lambda: None)  # two commands: typer then expects the command name
    return app


@pytest.fixture
def digits_dir(tmp_path, monkeypatch) -> Path:
    """An MNIST-layout folder of 28x28 images with 4 classes, named '0' to '3' by the loader."""
    isolate(monkeypatch, tmp_path)
    rng = np.random.default_rng(2)
    for split, n in (("train", 16), ("test", 10)):
        labels = (np.arange(n) % 4).astype(np.uint8)
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        write_idx(tmp_path / "digits", split, images, labels)
    return tmp_path / "digits"


def test_eval_on_another_dataset_is_refused_then_run_when_insisted(toy, digits_dir):
    ckpt, _ = toy
    runner = CliRunner()
    refused = runner.invoke(_cli(), ["eval", str(ckpt.path), "--dataset", str(digits_dir)])
    assert isinstance(refused.exception, UserInputError)
    assert "--allow-dataset-mismatch" in str(refused.exception)
    args = ["eval", str(ckpt.path), "--dataset", str(digits_dir), "--json"]
    done = runner.invoke(_cli(), [*args, "--allow-dataset-mismatch", "--split", "train"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["n_images"] == 16 and (report["dataset"], report["split"]) == ("digits", "train")
    assert any("not 'digits'" in w for w in report["dataset_warnings"])


def test_eval_refuses_a_dataset_the_network_cannot_read(toy, tmp_path):
    ckpt, _ = toy
    rng = np.random.default_rng(3)
    labels = (np.arange(8) % 4).astype(np.uint8)
    write_idx(tmp_path / "small", "test", rng.integers(0, 256, (8, 16, 16), np.uint8), labels)
    args = [
        "eval",
        str(ckpt.path),
        "--dataset",
        str(tmp_path / "small"),
        "--allow-dataset-mismatch",
    ]
    result = CliRunner().invoke(_cli(), args)
    assert isinstance(result.exception, UserInputError)
    assert "cannot run" in str(result.exception) and "16x16x1" in str(result.exception)


def test_eval_dataset_that_is_neither_a_name_nor_a_path(toy):
    ckpt, _ = toy
    result = CliRunner().invoke(_cli(), ["eval", str(ckpt.path), "--dataset", "no-such-thing"])
    assert isinstance(result.exception, UserInputError)
    assert "neither a known dataset" in str(result.exception)

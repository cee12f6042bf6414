"""Training on a tiny learnable dataset: determinism, resume, and the eval JSON contract."""

import json

import numpy as np
import pytest
import torch
import typer
import yaml
from typer.testing import CliRunner

import fogsim.data
from fogsim.commands.eval import eval_cmd
from fogsim.commands.train import train
from fogsim.data.dataset import Dataset, fingerprint
from fogsim.nn.recipe import recipe_from_dict
from fogsim.nn.train import train_recipe

RECIPE = {
    "name": "toy-binary",
    "dataset": "toy",
    "architecture": "smallcnn",
    "weight_precision": "binary",
    "act_precision": "binary",
    "epochs": 1,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 0.01,
    "holdout": 64,
    "augmentation": {"crop_padding": 1},
}


def toy_dataset(name: str = "toy", *, split: str = "test", **_: object) -> Dataset:
    """Four classes, each a bright 14x14 quadrant on noise: learnable in one short epoch."""
    rng = np.random.default_rng(0 if split == "train" else 1)
    n = 320 if split == "train" else 128
    labels = rng.integers(0, 4, n).astype(np.int64)
    images = rng.integers(0, 100, (n, 28, 28, 1), dtype=np.uint8)
    for i, c in enumerate(labels):
        r, col = divmod(int(c), 2)
        images[i, 14 * r : 14 * r + 14, 14 * col : 14 * col + 14] += 150
    return Dataset(
        name, split, images, labels, ("tl", "tr", "bl", "br"), fingerprint(images, labels), "mem"
    )


@pytest.fixture(autouse=True)
def toy_data(monkeypatch, tmp_path):
    monkeypatch.setattr(fogsim.data, "load_dataset", toy_dataset)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("train")(train)
    app.command("eval")(eval_cmd)
    return app


def test_train_then_eval_json_contract(tmp_path):
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    ckpt = tmp_path / "toy.pt"
    runner = CliRunner()
    result = runner.invoke(_cli(), ["train", str(recipe), "--output", str(ckpt), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert ckpt.is_file() and "toy-binary" in ckpt.with_suffix(".md").read_text()
    result = runner.invoke(_cli(), ["eval", str(ckpt), "--json", "--reference", str(ckpt)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in (
        "exit_rate",
        "edge_energy_per_image_j",
        "reference_accuracy",
        "reference_edge_energy_per_image_j",
        "curve",
    ):
        assert key in report
    assert set(report["accuracy"]) >= {"edge", "cloud", "hybrid"}
    assert 0 <= report["exit_rate"] <= 1 and report["accuracy"]["cloud"] > 0.5  # it learned
    assert report["reference_accuracy"] == report["accuracy"]["cloud"]  # reference: same net
    # The reference runs every layer at the edge; the hybrid's edge stops at the split.
    assert report["reference_edge_energy_per_image_j"] > report["edge_energy_per_image_j"] > 0
    curve = report["curve"]
    assert curve[0]["exit_rate"] == 0 and curve[-1]["exit_rate"] <= 1
    assert [p["exit_rate"] for p in curve] == sorted(p["exit_rate"] for p in curve)
    table = runner.invoke(_cli(), ["eval", str(ckpt), "--rule", "maxprob", "--threshold", "0.9"])
    assert table.exit_code == 0 and "exit rate" in table.output


def test_training_is_deterministic_and_resumes(tmp_path):
    recipe = recipe_from_dict({**RECIPE, "epochs": 2})

    def run(work: str, log=lambda _: None) -> dict:
        train_recipe(
            recipe,
            work_dir=tmp_path / work,
            output=tmp_path / f"{work}.pt",
            command="test",
            load_dataset=toy_dataset,
            progress=False,
            log=log,
        )
        return torch.load(tmp_path / f"{work}.pt", weights_only=True)["state_dict"]

    whole = run("a")

    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("epoch 1:"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run("b", stop_after_first_epoch)
    lines: list[str] = []
    resumed = run("b", lines.append)
    assert any("resuming after epoch 1" in line for line in lines)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_recipe_errors_name_the_key():
    from fogsim.errors import UserInputError

    with pytest.raises(UserInputError, match="unknown key 'epochz'"):
        recipe_from_dict({**RECIPE, "epochz": 3})
    with pytest.raises(UserInputError, match="exit_weights"):
        recipe_from_dict({**RECIPE, "exit_weights": [0.7, 0.5]})
    with pytest.raises(UserInputError, match="missing required key"):
        recipe_from_dict({k: v for k, v in RECIPE.items() if k != "epochs"})

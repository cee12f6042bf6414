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
    "epochs": 3,
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


def _train(tmp_path, name: str, **overrides) -> tuple[dict, list[str]]:
    lines: list[str] = []
    card = train_recipe(
        recipe_from_dict({**RECIPE, "name": name, **overrides}),
        work_dir=tmp_path / f"{name}-work",
        output=tmp_path / f"{name}.pt",
        command="test",
        load_dataset=toy_dataset,
        progress=False,
        log=lines.append,
    )
    return card, lines


def test_init_from_copies_matching_weights_and_records_the_source(tmp_path):
    from fogsim.nn.checkpoint import load_checkpoint
    from fogsim.nn.train import init_from_checkpoint
    from fogsim.nn.zoo import create_model

    _train(tmp_path, "teacher", weight_precision="fp32", act_precision="fp32")
    source = load_checkpoint(tmp_path / "teacher.pt")
    student = create_model("smallcnn", num_classes=4, weight_precision="binary", act_precision=1)
    sha, copied, fresh = init_from_checkpoint(student, str(tmp_path / "teacher.pt"))
    assert sha == source.sha256 and copied > 0
    own = student.state_dict()
    shared = [k for k in own if k in source.state_dict]
    # The binary student has a split quantizer (BN) the fp32 teacher lacks: left fresh.
    assert fresh == len(own) - len(shared) > 0
    assert all(torch.equal(own[k], source.state_dict[k]) for k in shared)

    card, lines = _train(tmp_path, "student", init_from=str(tmp_path / "teacher.pt"))
    assert card["init_from_sha256"] == source.sha256
    assert any(line.startswith(f"initialised {copied} tensors") for line in lines)


def test_init_from_a_foreign_network_is_refused(tmp_path):
    from fogsim.errors import CheckpointError, UserInputError
    from fogsim.nn.checkpoint import save_checkpoint
    from fogsim.nn.train import init_from_checkpoint
    from fogsim.nn.zoo import create_model

    cifar = create_model("resnet20")
    save_checkpoint(tmp_path / "r20.pt", "resnet20", {}, cifar, {"dataset": "cifar10"})
    toy = create_model("smallcnn", num_classes=4)
    with pytest.raises(CheckpointError, match="init_from: no checkpoint file"):
        init_from_checkpoint(toy, str(tmp_path / "missing.pt"))
    with pytest.raises(UserInputError, match="no tensor"):  # nothing shares a name and shape
        init_from_checkpoint(torch.nn.Linear(2, 2), str(tmp_path / "r20.pt"))


def test_distillation_matches_the_teacher_and_learns(tmp_path):
    from fogsim.errors import UserInputError
    from fogsim.nn.train import distill_loss

    logits = torch.randn(8, 4)
    zero = distill_loss([logits], logits, logits, (0.5,), 4.0)
    assert zero.abs().item() < 1e-6  # KL of a distribution with itself
    assert distill_loss([logits], logits, torch.randn(8, 4), (0.5,), 4.0).item() > 0

    _train(tmp_path, "teacher", weight_precision="fp32", act_precision="fp32")
    teacher = str(tmp_path / "teacher.pt")
    card, _ = _train(tmp_path, "kd", distill={"teacher": teacher, "weight": 0.5})
    assert card["teacher_sha256"] and card["test_metrics"]["accuracy"]["cloud"] > 0.5

    with pytest.raises(UserInputError, match="trained on 'toy', not 'mnist'"):
        _train(tmp_path, "kd2", dataset="mnist", distill={"teacher": teacher})


def test_bf16_autocast_trains(tmp_path):
    card, _ = _train(tmp_path, "bf16", autocast="bf16")
    assert card["recipe"]["autocast"] == "bf16"
    assert card["test_metrics"]["accuracy"]["cloud"] > 0.5


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"exit_head": "mlp"}, "exit_head"),
        ({"autocast": "fp16"}, "autocast"),
        ({"distill": {"weight": 0.5}}, "teacher"),
        ({"distill": {"teacher": "t.pt", "temp": 2}}, "unknown key"),
        ({"distill": {"teacher": "t.pt", "weight": 1.5}}, "weight"),
    ],
)
def test_new_recipe_keys_are_checked(override, message):
    from fogsim.errors import UserInputError

    with pytest.raises(UserInputError, match=message):
        recipe_from_dict({**RECIPE, **override})

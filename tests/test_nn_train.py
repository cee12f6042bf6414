"""Training on a tiny learnable dataset: determinism, resume, and the eval JSON contract."""

import functools
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
from fogsim.nn import bf16
from fogsim.nn.recipe import recipe_from_dict
from fogsim.nn.train import train_recipe

# At collection, before this process runs any conv: where bf16 needs oneDNN capped below AMX,
# the cap only works if it is in place before oneDNN first runs.
BF16_SAFE = bf16.prepare()

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


def toy_dataset(
    name: str = "toy", *, split: str = "test", shape: tuple = (28, 28, 1), **_: object
) -> Dataset:
    """Four classes, each a bright quadrant on noise: learnable in one short epoch."""
    rng = np.random.default_rng(0 if split == "train" else 1)
    n = 320 if split == "train" else 128
    labels = rng.integers(0, 4, n).astype(np.int64)
    images = rng.integers(0, 100, (n, *shape), dtype=np.uint8)
    h, w = shape[0] // 2, shape[1] // 2
    for i, c in enumerate(labels):
        r, col = divmod(int(c), 2)
        images[i, h * r : h * r + h, w * col : w * col + w] += 150
    return Dataset(
        name, split, images, labels, ("tl", "tr", "bl", "br"), fingerprint(images, labels), "mem"
    )


@pytest.fixture(autouse=True)
def toy_data(monkeypatch, tmp_path):
    monkeypatch.setattr(fogsim.data, "load_dataset", toy_dataset)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def fit(
    recipe, work_dir, output, log=lambda _: None, data=toy_dataset, compile_model=False
) -> dict:
    """``train_recipe`` as the tests run it: quiet, on the toy data unless told; its card."""
    return train_recipe(
        recipe,
        work_dir=work_dir,
        output=output,
        command="test",
        load_dataset=data,
        progress=False,
        log=log,
        compile_model=compile_model,
    )


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("train")(train)
    app.command("eval")(eval_cmd)
    return app


def test_train_then_eval_json_contract(tmp_path):
    from fogsim.nn.checkpoint import load_checkpoint

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
    # A second count, by hand: the whole network forward on the test images, argmax, compare;
    # an image exits where the entropy of its exit's softmax is below the threshold.
    model, test = load_checkpoint(ckpt).build(), toy_dataset(split="test")
    with torch.no_grad():
        (exit_logits,), final = model(torch.from_numpy(test.images).permute(0, 3, 1, 2) / 255.0)
    labels = torch.from_numpy(test.labels)
    cloud = (final.argmax(1) == labels).float().mean().item()
    p = exit_logits.softmax(1)
    exits = -(p * p.log()).sum(1) < report["threshold"]
    hybrid = torch.where(exits, exit_logits.argmax(1), final.argmax(1))
    assert report["accuracy"]["cloud"] == pytest.approx(cloud)
    assert report["reference_accuracy"] == pytest.approx(cloud)  # the reference is the same file
    assert report["exit_rate"] == pytest.approx(exits.float().mean().item())
    assert report["accuracy"]["hybrid"] == pytest.approx((hybrid == labels).float().mean().item())
    # The reference runs every layer at the edge; the hybrid's edge stops at the split.
    assert report["reference_edge_energy_per_image_j"] > report["edge_energy_per_image_j"] > 0
    curve = report["curve"]
    assert curve[0]["exit_rate"] == 0 and curve[-1]["exit_rate"] <= 1
    assert [p["exit_rate"] for p in curve] == sorted(p["exit_rate"] for p in curve)
    table = runner.invoke(_cli(), ["eval", str(ckpt), "--rule", "maxprob", "--threshold", "0.9"])
    assert table.exit_code == 0 and "exit rate" in table.output
    # The printed curve gives the seed paper's figure at every threshold, as the JSON has it.
    printed = runner.invoke(_cli(), ["eval", str(ckpt), "--reference", str(ckpt)]).output
    rows = [line.strip("│").split("│") for line in printed.splitlines() if line.startswith("│")]
    reference_j = report["reference_compute_energy_per_image_j"]
    for point, row in zip(curve, rows[-len(curve) :], strict=True):
        assert float(row[0]) == pytest.approx(point["threshold"], abs=1e-3)
        expected = reference_j / point["hybrid_compute_energy_per_image_j"]
        assert float(row[-1].strip().rstrip("x")) == pytest.approx(expected, rel=5e-3)


def test_training_is_deterministic_and_resumes(tmp_path):
    recipe = recipe_from_dict({**RECIPE, "epochs": 2})
    cards: dict[str, dict] = {}

    def run(work: str, log=lambda _: None) -> dict:
        cards[work] = fit(recipe, tmp_path / work, tmp_path / f"{work}.pt", log)
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
    # The CPU time of every epoch reaches the card, the interrupted run's first one included.
    for card in cards.values():
        assert len(card["cpu_s_per_epoch"]) == 2
        assert all(s > 0 for s in card["cpu_s_per_epoch"])
    # So do the held-out figures of every epoch, the same whether or not the run stopped; the
    # kept epoch's cloud path is what the card reports for the weights that ship.
    assert cards["a"]["holdout_per_epoch"] == cards["b"]["holdout_per_epoch"]
    assert [h["epoch"] for h in cards["b"]["holdout_per_epoch"]] == [1, 2]
    kept = cards["b"]["holdout_per_epoch"][cards["b"]["kept_epoch"] - 1]
    assert kept["cloud"] == pytest.approx(cards["b"]["holdout_metrics"]["accuracy"]["cloud"])
    assert max(h["cloud"] for h in cards["b"]["holdout_per_epoch"]) == kept["cloud"]
    from fogsim.nn.card import card_markdown

    shown = card_markdown(cards["b"], tmp_path / "b.pt")
    assert "## Held out during training" in shown and f"| {kept['epoch']} (kept) |" in shown


@pytest.mark.parametrize(
    ("timed", "says"),
    [
        ([1800.0, 1800.0], "1.00 CPU hours (process CPU time"),
        ([1800.0], "about 1.0 CPU hours: 0.50 measured over the last 1 epochs, scaled to all 2"),
        ([], None),
    ],
)
def test_the_card_states_the_cpu_hours_and_whether_they_were_scaled(timed, says):
    from fogsim.nn.card import _cpu_hours

    stated = _cpu_hours({"epochs": 2, "cpu_s_per_epoch": timed})
    assert stated == says if says is None else says in stated


def test_recipe_errors_name_the_key():
    from fogsim.errors import UserInputError

    with pytest.raises(UserInputError, match="unknown key 'epochz'"):
        recipe_from_dict({**RECIPE, "epochz": 3})
    with pytest.raises(UserInputError, match="exit_weights"):
        recipe_from_dict({**RECIPE, "exit_weights": [0.7, 0.5]})
    with pytest.raises(UserInputError, match="missing required key"):
        recipe_from_dict({k: v for k, v in RECIPE.items() if k != "epochs"})


def _train(tmp_path, name: str, data=toy_dataset, **overrides) -> tuple[dict, list[str]]:
    lines: list[str] = []
    card = fit(
        recipe_from_dict({**RECIPE, "name": name, **overrides}),
        tmp_path / f"{name}-work",
        tmp_path / f"{name}.pt",
        lines.append,
        data=data,
    )
    return card, lines


def test_init_from_copies_matching_weights_and_records_the_source(tmp_path):
    from fogsim.nn.checkpoint import load_checkpoint
    from fogsim.nn.setup import init_from_checkpoint
    from fogsim.nn.zoo import create_model

    _train(tmp_path, "teacher", weight_precision="fp32", act_precision="fp32")
    source = load_checkpoint(tmp_path / "teacher.pt")
    student = create_model("smallcnn", num_classes=4, weight_precision="binary", act_precision=1)
    sha, copied, fresh = init_from_checkpoint(student, str(tmp_path / "teacher.pt"))
    assert sha == source.sha256 and copied > 0
    own = student.state_dict()
    shared = [k for k in own if k in source.state_dict]
    # The binary student has a split quantizer the fp32 teacher lacks, left fresh: a BatchNorm's
    # weight, bias, running mean, running variance and batch count.
    assert fresh == 5 and {k for k in own if k not in source.state_dict} == {
        f"split_quant.0.{n}"
        for n in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    }
    assert all(torch.equal(own[k], source.state_dict[k]) for k in shared)

    card, lines = _train(tmp_path, "student", init_from=str(tmp_path / "teacher.pt"))
    assert card["init_from_sha256"] == source.sha256
    assert any(line.startswith(f"initialised {copied} tensors") for line in lines)


def test_init_from_a_foreign_network_is_refused(tmp_path):
    from fogsim.errors import CheckpointError, UserInputError
    from fogsim.nn.checkpoint import save_checkpoint
    from fogsim.nn.setup import init_from_checkpoint
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


def test_label_smoothing_is_cross_entropy_against_the_smoothed_target(tmp_path):
    from fogsim.nn.train import joint_loss

    logits, y, eps = torch.randn(16, 10), torch.randint(0, 10, (16,)), 0.1
    # Target: 1 - eps + eps/K on the label, eps/K elsewhere (Szegedy et al. 2016).
    target = torch.full((16, 10), eps / 10).scatter(1, y[:, None], 1 - eps + eps / 10)
    expected = -(target * torch.log_softmax(logits, 1)).sum(1).mean()
    got = joint_loss([logits], logits, y, (0.3,), eps)
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(joint_loss([logits], logits, y, (0.3,)), expected)

    card, _ = _train(tmp_path, "ls", label_smoothing=0.1)
    assert card["recipe"]["label_smoothing"] == 0.1
    assert card["test_metrics"]["accuracy"]["cloud"] > 0.5
    # A recipe without it keeps its dict (training states are keyed by it).
    assert "label_smoothing" not in recipe_from_dict(RECIPE).to_dict()


def test_bf16_autocast_trains(tmp_path):
    card, _ = _train(tmp_path, "bf16", autocast="bf16")
    assert card["recipe"]["autocast"] == "bf16"
    assert card["autocast"] == ("bf16" if BF16_SAFE else None)
    assert card["test_metrics"]["accuracy"]["cloud"] > 0.5


def test_bf16_that_crashes_this_cpu_trains_in_fp32_with_one_notice(tmp_path, monkeypatch):
    monkeypatch.setattr(bf16, "PROBE", "import os, signal\nos.kill(os.getpid(), signal.SIGILL)")
    monkeypatch.setattr(bf16, "_verdicts", {})
    monkeypatch.setattr(bf16, "_noticed", set())

    def no_autocast(*args, **kwargs):
        raise AssertionError("autocast ran although bf16 crashes this CPU")

    monkeypatch.setattr(torch, "autocast", no_autocast)
    card, lines = _train(tmp_path, "bf16", autocast="bf16", epochs=1)
    assert card["autocast"] is None and card["recipe"]["autocast"] == "bf16"
    assert [line for line in lines if "bf16" in line] == [
        "bf16 autocast crashes on this CPU (even with oneDNN capped at AVX512_CORE_BF16); "
        "running in fp32 instead"
    ]
    md = tmp_path / "bf16.md"
    from fogsim.nn.card import write_card_markdown

    write_card_markdown(md, card, tmp_path / "bf16.pt")
    assert "fp32 convolutions (bf16 autocast crashes on that CPU)" in md.read_text()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"exit_head": "mlp"}, "exit_head"),
        ({"autocast": "fp16"}, "autocast"),
        ({"distill": {"weight": 0.5}}, "teacher"),
        ({"distill": {"teacher": "t.pt", "temp": 2}}, "unknown key"),
        ({"distill": {"teacher": "t.pt", "weight": 1.5}}, "weight"),
        ({"label_smoothing": 1}, "label_smoothing"),
        ({"exit_precision": "int3"}, "exit_precision"),
        ({"act_grid": "unsigned"}, "act_grid"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"label_smoothing": "some"}, "label_smoothing"),
    ],
)
def test_new_recipe_keys_are_checked(override, message):
    from fogsim.errors import UserInputError

    with pytest.raises(UserInputError, match=message):
        recipe_from_dict({**RECIPE, **override})


def test_a_network_is_trained_for_the_shape_of_its_data(tmp_path):
    from fogsim.inference import run_inference
    from fogsim.nn.card import card_markdown
    from fogsim.nn.checkpoint import load_checkpoint

    digits = functools.partial(toy_dataset, shape=(16, 16, 1))
    card, _ = _train(tmp_path, "small", data=digits, epochs=1)
    ckpt = load_checkpoint(tmp_path / "small.pt")
    assert ckpt.model_kwargs["image_shape"] == [16, 16, 1] and ckpt.input_shape == (16, 16, 1)
    assert card["image_shape"] == [16, 16, 1]
    # What eval and run do with it: inference on 16x16 images, not a refusal.
    o = run_inference(ckpt.path, digits(split="test"), cache_dir=tmp_path / "c", progress=False)
    assert o.input_bytes == 16 * 16 and o.feature_bytes == 64 * 4 * 4 // 8  # binary split
    md = card_markdown(card, ckpt.path)
    assert "16x16x1 images" in md and "split tensor [64, 4, 4]: 128 bytes" in md

    colour = functools.partial(toy_dataset, shape=(20, 20, 3))
    card, _ = _train(tmp_path, "rgb", data=colour, epochs=2)
    assert load_checkpoint(tmp_path / "rgb.pt").input_shape == (20, 20, 3)
    assert card["test_metrics"]["accuracy"]["cloud"] > 0.5


@pytest.fixture
def no_training_step(monkeypatch):
    """Make any training step fail loudly: a check that comes after one is too late."""
    import fogsim.nn.train as train_module

    def step(*args, **kwargs):
        raise AssertionError("a training step ran before the input was refused")

    monkeypatch.setattr(train_module, "joint_loss", step)


def _no_test_split(name="toy", *, split="test", **kwargs):
    from fogsim.errors import DatasetNotFoundError

    if split == "test":
        raise DatasetNotFoundError(f"{name}: no test split")
    return toy_dataset(name, split=split, **kwargs)


@pytest.mark.parametrize(
    ("data", "overrides", "error", "message"),
    [
        (_no_test_split, {}, "DatasetNotFoundError", "no test split"),
        (functools.partial(toy_dataset, shape=(2, 2, 1)), {}, "UserInputError", "2x2"),
        (functools.partial(toy_dataset, shape=(28, 28, 40)), {}, "UserInputError", "40 channels"),
        (toy_dataset, {"augmentation": {"crop_padding": 28}}, "UserInputError", "crop_padding"),
        (toy_dataset, {"init_from": "absent.pt"}, "CheckpointError", "init_from"),
        (toy_dataset, {"distill": {"teacher": "absent.pt"}}, "CheckpointError", "teacher"),
        (toy_dataset, {"holdout": 320}, "UserInputError", "holdout"),
    ],
)
def test_bad_inputs_are_refused_before_the_first_step(
    tmp_path, no_training_step, data, overrides, error, message
):
    from fogsim import errors

    with pytest.raises(getattr(errors, error), match=message):
        _train(tmp_path, "bad", data=data, **overrides)
    assert not (tmp_path / "bad-work" / "state.pt").exists()


def test_a_teacher_of_another_shape_or_an_unusable_output_is_refused_first(
    tmp_path, no_training_step
):
    from fogsim.errors import UserInputError
    from fogsim.nn.checkpoint import save_checkpoint
    from fogsim.nn.zoo import create_model

    kwargs = {"num_classes": 4, "image_shape": [16, 16, 1]}
    card = {"dataset": "toy", "classes": ["tl", "tr", "bl", "br"]}
    teacher = tmp_path / "t16.pt"
    save_checkpoint(teacher, "smallcnn", kwargs, create_model("smallcnn", **kwargs), card)
    with pytest.raises(UserInputError, match="teacher.*16x16x1"):
        _train(tmp_path, "kd", distill={"teacher": str(teacher)})
    (tmp_path / "out.pt").mkdir()
    with pytest.raises(UserInputError, match="is a directory"):
        fit(recipe_from_dict(RECIPE), tmp_path / "w", tmp_path / "out.pt")
    with pytest.raises(UserInputError, match="device"):
        _train(tmp_path, "gpu", device="tpu-please")


def test_a_recipe_can_name_a_dataset_folder(tmp_path, monkeypatch):
    from data_fixtures import isolate, write_idx

    from fogsim.data.loader import load_dataset  # the real one: fogsim.data's is the toy here
    from fogsim.nn.recipe import load_recipe

    isolate(monkeypatch, tmp_path)
    rng = np.random.default_rng(0)
    for split, n in (("train", 256), ("test", 64)):
        labels = (np.arange(n) % 4).astype(np.uint8)
        images = rng.integers(0, 60, (n, 16, 16), dtype=np.uint8)
        for i, c in enumerate(labels):  # each class a bright quadrant, as the toy data
            r, col = divmod(int(c), 2)
            images[i, 8 * r : 8 * r + 8, 8 * col : 8 * col + 8] += 180
        write_idx(tmp_path / "data" / "quads", split, images, labels)
    (tmp_path / "recipes").mkdir()
    recipe = tmp_path / "recipes" / "quads.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {**RECIPE, "name": "quads", "epochs": 2, "dataset": {"path": "../data/quads"}}
        )
    )
    card = fit(load_recipe(recipe), tmp_path / "w", tmp_path / "quads.pt", data=load_dataset)
    assert card["dataset"] == "quads" and card["image_shape"] == [16, 16, 1]
    assert card["dataset_path"] == str((tmp_path / "data" / "quads").resolve())
    assert card["recipe"]["dataset"] == {"path": "../data/quads", "name": None}
    assert card["test_metrics"]["accuracy"]["cloud"] > 0.5


THREE_PARTS = {
    "split": 2,
    "fog_split": 3,
    "exits": [2, 3],
    "exit_weights": [0.3, 0.3],
    "fog_weight_precision": "int8",
    "fog_act_precision": "int8",
}


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    p = logits.softmax(1)
    return -(p * p.clamp_min(1e-30).log()).sum(1)


def test_a_three_part_network_trains_and_eval_reports_every_tier(tmp_path):
    from fogsim.nn.checkpoint import load_checkpoint

    recipe = tmp_path / "three.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, **THREE_PARTS, "name": "toy-3", "epochs": 2}))
    ckpt = tmp_path / "three.pt"
    runner = CliRunner()
    result = runner.invoke(_cli(), ["train", str(recipe), "--output", str(ckpt), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "answered on the device" in result.output
    card = load_checkpoint(ckpt).card
    assert card["tiers"] == ["device", "fog", "cloud"] and card["exit_tiers"] == ["device", "fog"]
    assert (card["fog_split"], card["fog_weight_precision"], card["fog_act_precision"]) == (
        3,
        "int8",
        "int8",
    )
    assert len(card["default_thresholds"]) == 2
    assert sum(t["exit_rate"] for t in card["test_tiers"].values()) == pytest.approx(1.0)
    md = ckpt.with_suffix(".md").read_text()
    assert "Fog (block 3): weights int8, activations int8" in md
    assert "split tensor fog to cloud [64, 7, 7]: 3136 bytes at int8" in md

    result = runner.invoke(_cli(), ["eval", str(ckpt), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["thresholds"] == card["default_thresholds"]
    tiers = report["tiers"]
    assert sum(t["exit_rate"] for t in tiers.values()) == pytest.approx(1.0)
    # A second count: the network forward on the test images, each image answered at the first
    # exit whose entropy is below that exit's threshold.
    model, test = load_checkpoint(ckpt).build(), toy_dataset(split="test")
    with torch.no_grad():
        (device_logits, fog_logits), final = model(
            torch.from_numpy(test.images).permute(0, 3, 1, 2) / 255.0
        )
    t0, t1 = report["thresholds"]
    at_device = _entropy(device_logits) < t0
    at_fog = ~at_device & (_entropy(fog_logits) < t1)
    assert tiers["device"]["exit_rate"] == pytest.approx(at_device.float().mean().item())
    assert tiers["fog"]["exit_rate"] == pytest.approx(at_fog.float().mean().item())
    labels = torch.from_numpy(test.labels)
    assert tiers["cloud"]["accuracy_alone"] == pytest.approx(
        (final.argmax(1) == labels).float().mean().item()
    )
    assert report["fog_feature_bytes"] == 64 * 7 * 7 and report["feature_bytes"] == 64 * 7 * 7 // 8


def test_eval_takes_one_threshold_or_one_per_exit(tmp_path):
    _train(tmp_path, "three", **THREE_PARTS)
    ckpt = str(tmp_path / "three.pt")
    runner = CliRunner()

    def tiers(*args: str) -> dict:
        result = runner.invoke(_cli(), ["eval", ckpt, "--json", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    comma, repeated = (
        tiers("--threshold", "0.3,1.2"),
        tiers("--threshold", "0.3", "--threshold", "1.2"),
    )
    assert comma["thresholds"] == repeated["thresholds"] == [0.3, 1.2]
    assert comma["tiers"] == repeated["tiers"] and comma["threshold"] is None
    shared = tiers("--threshold", "0.9")
    assert shared["threshold"] == 0.9 and shared["thresholds"] == [0.9, 0.9]
    for bad, message in (("0.1,0.2,0.3", "3 thresholds for the 2 exit"), ("low", "'low'")):
        result = runner.invoke(_cli(), ["eval", ckpt, "--threshold", bad])
        assert result.exit_code != 0 and message in str(result.exception), result.output


@pytest.mark.parametrize(("momentum", "state"), [(0.0, False), (0.9, True)])
def test_one_cycle_sgd_keeps_momentum_only_when_the_recipe_asks(momentum, state):
    from fogsim.nn.train import _optimizer
    from fogsim.nn.zoo import create_model

    r = recipe_from_dict(
        {**RECIPE, "optimizer": "sgd", "momentum": momentum, "lr_schedule": "onecycle"}
    )
    model = create_model("smallcnn")
    opt, sched = _optimizer(model, r, steps=10)
    model(torch.rand(2, 1, 28, 28))[1].sum().backward()
    opt.step()
    sched.step()
    # OneCycleLR would otherwise set momentum 0.95 on a `momentum: 0` recipe.
    assert opt.param_groups[0]["momentum"] == pytest.approx(momentum, abs=0.06)
    buffers = [s.get("momentum_buffer") for s in opt.state.values()]
    assert any(b is not None for b in buffers) == state


def test_compiled_training_learns_what_eager_training_learns(tmp_path):
    eager = fit(recipe_from_dict({**RECIPE, "name": "e"}), tmp_path / "we", tmp_path / "e.pt")
    lines: list[str] = []
    compiled = fit(
        recipe_from_dict({**RECIPE, "name": "c"}),
        tmp_path / "wc",
        tmp_path / "c.pt",
        lines.append,
        compile_model=True,
    )
    assert not [line for line in lines if "torch.compile" in line]  # it compiled
    # Fused kernels round differently: the same training, not the same bits.
    a, b = eager["test_metrics"]["accuracy"], compiled["test_metrics"]["accuracy"]
    assert b["cloud"] > 0.5 and abs(a["cloud"] - b["cloud"]) < 0.1


def test_where_torch_compile_cannot_build_training_goes_on_eagerly(tmp_path, monkeypatch):
    import fogsim.nn.train as train_module

    def broken(model):
        def forward(x):
            raise RuntimeError("no C++ compiler found\n(details)")

        return forward

    monkeypatch.setattr(train_module, "_compiled", broken)
    lines: list[str] = []
    r = recipe_from_dict({**RECIPE, "name": "b"})
    card = fit(r, tmp_path / "wb", tmp_path / "b.pt", lines.append, compile_model=True)
    eager = fit(recipe_from_dict({**RECIPE, "name": "b"}), tmp_path / "we", tmp_path / "e.pt")
    assert [line for line in lines if "torch.compile" in line] == [
        "torch.compile cannot build here (RuntimeError: no C++ compiler found); training eagerly"
    ]
    assert card["test_metrics"] == eager["test_metrics"]  # the eager run, step for step


def test_compile_refuses_the_low_precision_methods(tmp_path):
    from fogsim.errors import UserInputError

    rct = {"method": "rct", "weight_precision": "fp32", "optimizer": "sgd"}
    r = recipe_from_dict({**RECIPE, "name": "r", **rct})
    with pytest.raises(UserInputError, match="--compile with method rct"):
        fit(r, tmp_path / "w", tmp_path / "r.pt", compile_model=True)


def test_a_compiled_step_that_fails_later_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    import fogsim.nn.train as train_module

    def later(model):
        calls = []

        def forward(x):
            calls.append(1)
            if len(calls) > 1:
                raise RuntimeError("out of memory")
            return model(x)

        return forward

    monkeypatch.setattr(train_module, "_compiled", later)
    with pytest.raises(RuntimeError, match="out of memory"):
        fit(recipe_from_dict(RECIPE), tmp_path / "w", tmp_path / "x.pt", compile_model=True)


def test_the_card_states_the_seed_energy_figure_that_eval_reports(tmp_path):
    # Device exits after blocks 1 and 2, a fog exit after block 3: every term of the figure.
    from fogsim.inference import run_inference
    from fogsim.nn.card import card_markdown
    from fogsim.nn.checkpoint import load_checkpoint
    from fogsim.nn.report import evaluation_report

    card, _ = _train(
        tmp_path,
        "three",
        epochs=1,
        split=2,
        fog_split=3,
        fog_weight_precision="int8",
        fog_act_precision="int8",
        exits=[1, 2, 3],
        exit_weights=[0.2, 0.2, 0.2],
    )
    ckpt = load_checkpoint(tmp_path / "three.pt")
    o = run_inference(
        ckpt.path, toy_dataset(split="test"), cache_dir=tmp_path / "c", progress=False
    )
    report = evaluation_report(o, rule=card["default_rule"], threshold=card["default_thresholds"])
    assert 0 < card["test_metrics"]["exit_rate"] < 1, "the figure needs exits and offloads"
    md = card_markdown(card, ckpt.path)
    line = next(line for line in md.splitlines() if "the seed paper's compute energy" in line)
    hybrid_uj = report["hybrid_compute_energy_per_image_j"] * 1e6
    assert f"{hybrid_uj:.4g} uJ against" in line
    assert f"{report['compute_energy_reduction']:.3g}x less" in line


def test_eval_on_the_held_out_split_gives_what_training_chose_the_thresholds_on(tmp_path):
    # The card's held-out figures were computed by training on the images its recipe kept out;
    # `fogsim eval --split holdout` must find the same images, and so the same figures.
    card, _ = _train(tmp_path, "held", epochs=1)
    ckpt = tmp_path / "held.pt"
    result = CliRunner().invoke(_cli(), ["eval", str(ckpt), "--json", "--split", "holdout"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    held = card["holdout_metrics"]
    assert report["split"] == "holdout" and report["n_images"] == RECIPE["holdout"]
    assert report["exit_rate"] == pytest.approx(held["exit_rate"])
    for key in ("edge", "cloud", "hybrid"):
        assert report["accuracy"][key] == pytest.approx(held["accuracy"][key])


def test_eval_on_an_unknown_split_or_a_card_without_its_recipe_says_so(tmp_path):
    from fogsim.nn.checkpoint import load_checkpoint, save_checkpoint

    _train(tmp_path, "bare", epochs=1)
    ckpt = load_checkpoint(tmp_path / "bare.pt")
    card = {k: v for k, v in ckpt.card.items() if k != "recipe"}
    save_checkpoint(
        tmp_path / "norecipe.pt", ckpt.model_name, ckpt.model_kwargs, ckpt.build(), card
    )
    runner = CliRunner()
    bad = runner.invoke(_cli(), ["eval", str(tmp_path / "bare.pt"), "--split", "validation"])
    assert bad.exit_code != 0 and "use test, train or holdout" in str(bad.exception)
    blind = runner.invoke(_cli(), ["eval", str(tmp_path / "norecipe.pt"), "--split", "holdout"])
    assert blind.exit_code != 0 and "no recipe with `holdout` and `seed`" in str(blind.exception)

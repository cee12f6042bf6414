"""Checkpoint round trip, and a clear CheckpointError for every kind of bad file."""

import pytest
import torch

from fogsim.errors import CheckpointError
from fogsim.nn.checkpoint import load_checkpoint, save_checkpoint
from fogsim.nn.zoo import create_model

KWARGS = {
    "num_classes": 10,
    "split": 2,
    "exits": [2],
    "weight_precision": "binary",
    "act_precision": "binary",
}
CARD = {"dataset": "fashion-mnist", "default_threshold": 0.8, "default_rule": "entropy"}


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = create_model("smallcnn", **KWARGS).eval()
    path = tmp_path / "net.pt"
    save_checkpoint(path, "smallcnn", KWARGS, model, CARD)
    return path, model


def test_round_trip_rebuilds_the_same_network(saved):
    path, model = saved
    ckpt = load_checkpoint(path)
    assert ckpt.model_name == "smallcnn" and ckpt.model_kwargs == KWARGS and ckpt.card == CARD
    assert len(ckpt.sha256) == 64
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(ckpt.build()(x)[1], model(x)[1])
    assert list(path.parent.iterdir()) == [path]  # no temporary files left behind


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file.*fogsim train"):
        load_checkpoint(tmp_path / "absent.pt")


def test_truncated_file(saved):
    path, _ = saved
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint.*retrain"):
        load_checkpoint(path)


def test_corrupt_file(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_bare_state_dict_is_foreign(tmp_path, saved):
    _, model = saved
    path = tmp_path / "bare.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match="not a fogsim checkpoint"):
        load_checkpoint(path)


def test_pickled_module_is_refused_not_executed(tmp_path, saved):
    _, model = saved
    path = tmp_path / "module.pt"
    torch.save(model, path)
    with pytest.raises(CheckpointError, match="WeightsUnpickler"):
        load_checkpoint(path)


def test_other_version_and_unknown_model(tmp_path, saved):
    path, _ = saved
    payload = torch.load(path, weights_only=True)
    for change, message in (
        (("version", 99), "version 99"),
        (("model", {"name": "vgg", "kwargs": {}}), "unknown network"),
    ):
        bad = dict(payload)
        bad[change[0]] = change[1]
        torch.save(bad, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(tmp_path / "bad.pt")


def test_weights_that_do_not_fit_the_model(tmp_path, saved):
    path, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["model"]["kwargs"] = {**KWARGS, "num_classes": 3}
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "mismatch.pt").build()


@pytest.mark.parametrize(
    "content",
    [
        b"hello world\nthis is text\n",  # the legacy unpickler: KeyError
        b"a: 1\n",  # IndexError
        b"name: fmnist\nepochs: 3\n" * 50,
        b"",
        bytes(range(256)) * 4,
    ],
)
def test_a_file_that_is_not_a_torch_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "text.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_a_plain_tensor_is_not_a_checkpoint(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(CheckpointError, match="not a fogsim checkpoint.*holds a Tensor"):
        load_checkpoint(tmp_path / "tensor.pt")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": None}, "model description"),
        ({"state_dict": None}, "state dict"),
        ({"state_dict": {"w": "text"}}, "state dict"),
        ({"card": "text"}, "card"),
        ({"model": {"name": "smallcnn", "kwargs": {**KWARGS, "depth": 3}}}, "no argument.*depth"),
        (
            {"model": {"name": "smallcnn", "kwargs": {**KWARGS, "num_classes": "ten"}}},
            "num_classes",
        ),
        (
            {"model": {"name": "smallcnn", "kwargs": {**KWARGS, "image_shape": [28, 28]}}},
            "(H, W, C)",
        ),
    ],
)
def test_a_checkpoint_with_missing_or_wrong_parts_is_a_clear_error(
    tmp_path, saved, change, message
):
    path, _ = saved
    payload = {**torch.load(path, weights_only=True), **change}
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "bad.pt")


@pytest.mark.parametrize(
    "kwargs",
    [
        {**KWARGS, "exits": [7]},  # past the split
        {**KWARGS, "split": "two"},
        {**KWARGS, "image_shape": [2, 2, 1]},  # too small for the network's pooling
        {**KWARGS, "weight_precision": "fp16"},
    ],
)
def test_model_arguments_the_network_refuses_are_a_checkpoint_error(tmp_path, saved, kwargs):
    path, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["model"]["kwargs"] = kwargs
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "bad.pt").build()


def test_a_card_without_threshold_or_rule_is_a_clear_error(tmp_path, saved):
    path, model = saved
    save_checkpoint(tmp_path / "bare.pt", "smallcnn", KWARGS, model, {"dataset": "x"})
    ckpt = load_checkpoint(tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="default_threshold"):
        _ = ckpt.default_threshold
    with pytest.raises(CheckpointError, match="default_rule"):
        _ = ckpt.default_rule


def test_a_text_file_given_to_eval_exits_2_with_a_message(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "notes.pt"
    path.write_text("hello world\nthis is text\n")
    done = subprocess.run(
        [sys.executable, "-m", "fogsim", "eval", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert "not a readable checkpoint" in done.stderr and "Traceback" not in done.stderr


def test_input_shape_of_old_and_new_checkpoints(tmp_path, saved):
    path, model = saved
    assert load_checkpoint(path).input_shape == (28, 28, 1)  # no image_shape: the default
    rgb = {**KWARGS, "image_shape": [20, 24, 3]}
    save_checkpoint(tmp_path / "rgb.pt", "smallcnn", rgb, create_model("smallcnn", **rgb), CARD)
    ckpt = load_checkpoint(tmp_path / "rgb.pt")
    assert ckpt.input_shape == (20, 24, 3) and ckpt.num_classes == 10
    assert ckpt.build()(torch.rand(2, 3, 20, 24))[1].shape == (2, 10)


@pytest.mark.parametrize("name", ["fmnist-fp32", "fmnist-binary", "cifar10-fp32", "cifar10-binary"])
def test_shipped_checkpoints_load_strictly_and_know_their_input(name):
    from pathlib import Path

    ckpt = load_checkpoint(Path(__file__).parents[1] / "models" / f"{name}.pt")
    model = ckpt.build()  # strict: every stored tensor name and shape is still the network's
    assert set(model.state_dict()) == set(ckpt.state_dict)
    expected = (28, 28, 1) if name.startswith("fmnist") else (32, 32, 3)
    assert ckpt.input_shape == expected and ckpt.num_classes == len(ckpt.card["classes"]) == 10


def test_the_record_answers_for_the_same_bytes_without_loading(tmp_path, saved, monkeypatch):
    from fogsim.nn import checkpoint_info as info_module

    path, model = saved
    cache = tmp_path / "cache"
    first = info_module.checkpoint_info(path, cache)
    assert first.exit_tiers == model.exit_tiers and first.tiers == model.tiers
    assert first.input_shape == (28, 28, 1) and first.num_classes == 10 and first.card == CARD
    assert first.default_rule == "entropy" and first.default_thresholds(1) == (0.8,)
    assert [p.name for p in cache.iterdir()] == [f"checkpoint-v1-{first.sha256[:32]}.json"]

    def no_torch(*args, **kwargs):
        raise AssertionError("the record should have answered")

    monkeypatch.setattr("fogsim.nn.checkpoint.load_checkpoint", no_torch)
    info_module._info.cache_clear()
    copy = tmp_path / "elsewhere.pt"
    copy.write_bytes(path.read_bytes())
    again = info_module.checkpoint_info(copy, cache)
    assert again == info_module.CheckpointInfo(**{**vars(first), "path": copy})
    # Other bytes are another checkpoint: read (here: refused) with torch, never the record.
    torch.save({"other": torch.zeros(1)}, copy)
    with pytest.raises(AssertionError, match="record"):
        info_module.checkpoint_info(copy, cache)


def test_a_bad_file_is_refused_by_the_record_path_too(tmp_path):
    from fogsim.nn.checkpoint_info import checkpoint_info

    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        checkpoint_info(bad, tmp_path / "cache")
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        checkpoint_info(tmp_path / "missing.pt", tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # nothing recorded of a file that does not load

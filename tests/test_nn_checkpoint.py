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

"""run_inference: the outcome contract the simulator reads, the split codec, the disk cache."""

import dataclasses
import json
import zlib

import numpy as np
import pytest
import torch

import fogsim.inference as inference
from fogsim.data.dataset import Dataset, fingerprint
from fogsim.errors import UserInputError
from fogsim.inference import run_inference
from fogsim.nn.checkpoint import save_checkpoint
from fogsim.nn.codec import compressed_sizes, decode, encode, pack_features
from fogsim.nn.evaluate import to_input
from fogsim.nn.zoo import create_model

KWARGS = {
    "num_classes": 4,
    "split": 2,
    "exits": [1, 2],
    "weight_precision": "binary",
    "act_precision": "binary",
}


def _dataset(n: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    labels = rng.integers(0, 4, n).astype(np.int64)
    return Dataset(
        "toy", "test", images, labels, ("a", "b", "c", "d"), fingerprint(images, labels), "mem"
    )


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = create_model("smallcnn", **KWARGS)
    path = tmp_path / "net.pt"
    card = {"default_threshold": 0.7, "default_rule": "maxprob", "dataset": "toy"}
    save_checkpoint(path, "smallcnn", KWARGS, model.eval(), card)
    return path, model


def test_outcomes_follow_the_contract(tmp_path, checkpoint):
    path, model = checkpoint
    ds = _dataset(37, 0)
    o = run_inference(path, ds, batch_size=16, cache_dir=tmp_path / "cache", progress=False)
    assert o.n_images == 37 and o.class_names == ds.classes
    assert o.dataset_fingerprint == ds.fingerprint and len(o.checkpoint_sha256) == 64
    for name, dtype, shape in [
        ("labels", np.int64, (37,)),
        ("exit_entropy", np.float32, (37, 2)),
        ("exit_maxprob", np.float32, (37, 2)),
        ("exit_pred", np.int64, (37, 2)),
        ("cloud_pred", np.int64, (37,)),
        ("compressed_feature_bytes", np.int64, (37,)),
    ]:
        arr = getattr(o, name)
        assert arr.dtype == dtype and arr.shape == shape, name
    with torch.no_grad():
        exit_logits, final = model(to_input(ds.images))
    assert np.array_equal(o.cloud_pred, final.argmax(1).numpy())
    assert np.array_equal(o.exit_pred[:, 1], exit_logits[1].argmax(1).numpy())
    assert o.feature_bytes == 64 * 7 * 7 // 8 and o.input_bytes == 28 * 28
    assert len(o.edge_ops_to_exit) == 2
    # Exit 1 needs one more block and head than exit 0; the edge part is everything to the split.
    assert o.edge_ops_to_exit[0]["binary"] < o.edge_ops_to_exit[1]["binary"] == o.edge_ops["binary"]
    assert set(o.cloud_ops) == {"fp32"}
    assert o.full_ops["binary"] == o.edge_ops["binary"]
    assert (o.default_threshold, o.default_rule) == (0.7, "maxprob")


def test_second_run_hits_the_cache(tmp_path, checkpoint, monkeypatch):
    path, _ = checkpoint
    ds, cache = _dataset(20, 1), tmp_path / "cache"
    first = run_inference(path, ds, cache_dir=cache, progress=False)
    # The entry (json, npz) and the checkpoint's torch-free record; no temporary files left.
    names = sorted(p.name[:2] + p.suffix for p in cache.iterdir())
    assert names == ["ch.json", "v4.json", "v4.npz"]

    def no_inference(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr("fogsim.nn.evaluate.predict", no_inference)
    second = run_inference(path, ds, cache_dir=cache, progress=False)
    for field in (
        "labels",
        "exit_entropy",
        "exit_maxprob",
        "exit_pred",
        "cloud_pred",
        "compressed_feature_bytes",
    ):
        assert np.array_equal(getattr(first, field), getattr(second, field))
    assert second.edge_ops_to_exit == first.edge_ops_to_exit and second.edge_ops == first.edge_ops
    assert second.full_ops == first.full_ops and second.class_names == first.class_names
    with pytest.raises(AssertionError, match="cache"):
        run_inference(path, _dataset(20, 2), cache_dir=cache, progress=False)  # other data: miss


def test_split_tensor_is_bit_packed_at_its_precision():
    x = torch.tensor([[1.0, -1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 1.0] * 2])
    assert pack_features(x, "binary").tolist() == [[0b10110001] * 2]
    q = torch.tensor([[-1.0, -1 / 3, 1 / 3, 1.0]])  # int2 codes 0, 1, 2, 3 -> 2 bits each
    assert pack_features(q, "int2").shape == (1, 1)
    assert pack_features(q, "fp32").shape == (1, 16)
    zeros = torch.full((3, 4096), -1.0)
    assert (compressed_sizes(zeros, "binary") < 4096 // 8).all()  # zlib shrinks a constant tensor


def test_a_dataset_the_network_cannot_read_is_refused(tmp_path, checkpoint):
    path, _ = checkpoint
    ds = _dataset(5, 3)
    rgb = Dataset(
        "rgb", "test", np.zeros((5, 32, 32, 3), np.uint8), ds.labels, ds.classes, "f1", "m"
    )
    with pytest.raises(UserInputError, match="expects"):
        run_inference(path, rgb, cache_dir=tmp_path, progress=False)
    ten = Dataset("ten", "test", ds.images, ds.labels, tuple("abcdefghij"), "f2", "m")
    with pytest.raises(UserInputError, match="classes"):
        run_inference(path, ten, cache_dir=tmp_path, progress=False)


def test_incompressible_features_are_sent_raw_with_a_one_byte_marker():
    # Random signs pack to random bytes, which zlib can only frame, never shrink.
    signs = torch.from_numpy(np.random.default_rng(0).choice([-1.0, 1.0], (4, 8192)))
    packed = pack_features(signs, "binary")
    framed = [len(zlib.compress(row.tobytes(), 6)) for row in packed]
    assert all(f > 8192 // 8 for f in framed)  # zlib makes them larger
    assert compressed_sizes(signs, "binary").tolist() == [8192 // 8 + 1] * 4
    for row in packed:
        assert decode(encode(row.tobytes())) == row.tobytes()


def test_compressible_features_are_sent_as_zlib_and_decode_back():
    zeros = torch.full((2, 4096), -1.0)
    row = pack_features(zeros, "binary")[0].tobytes()
    assert encode(row) == zlib.compress(row, 6) and decode(encode(row)) == row
    assert compressed_sizes(zeros, "binary").tolist() == [len(zlib.compress(row, 6))] * 2
    # The receiver tells the two kinds apart by the first byte: zlib's is 0x78, never 0x00.
    assert encode(row)[0] == 0x78 and encode(bytes(range(256)))[0] == 0x00


def test_cached_outcomes_from_before_the_raw_fallback_are_not_reused(tmp_path, checkpoint):
    path, _ = checkpoint
    ds, cache = _dataset(6, 4), tmp_path / "cache"
    fresh = run_inference(path, ds, cache_dir=cache, progress=False)
    raw = fresh.feature_bytes + 1
    assert (fresh.compressed_feature_bytes <= raw).all()
    # An entry written by fogsim before the fallback (cache version 1), with zlib's sizes.
    stale = dataclasses.replace(fresh, compressed_feature_bytes=np.full(6, raw + 10))
    for stem in cache.glob(f"v{inference.CACHE_VERSION}-*.json"):
        stem.unlink()
        stem.with_suffix(".npz").unlink()
    old_stem = cache / f"v1-{fresh.checkpoint_sha256[:32]}-{ds.fingerprint[:32]}"
    inference._write_cache(old_stem, stale)
    meta = json.loads(old_stem.with_suffix(".json").read_text())
    meta.pop("version")
    old_stem.with_suffix(".json").write_text(json.dumps(meta))
    again = run_inference(path, ds, cache_dir=cache, progress=False)
    assert np.array_equal(again.compressed_feature_bytes, fresh.compressed_feature_bytes)

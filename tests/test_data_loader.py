"""``load_dataset``: the Dataset record, fingerprints, the decoded cache, integrity checks."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import (
    cifar10_files,
    imagefolder_files,
    images_for,
    isolate,
    write_dir,
    write_idx,
    write_zip,
)

import fogsim.data.loader as loader
from fogsim.data import Dataset, load_dataset
from fogsim.data.cache import cache_path
from fogsim.data.checksums import file_digest
from fogsim.data.dataset import fingerprint
from fogsim.errors import UserInputError

LABELS = np.array([1, 0, 2, 1], dtype=np.uint8)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def zip_path(tmp_path: Path) -> Path:
    files = imagefolder_files({"a": [np.full((3, 3, 3), 9, np.uint8)],
                               "b": [np.zeros((3, 3, 3), np.uint8)] * 2})
    return write_zip(tmp_path / "test.zip", files, prefix="test/")


def test_dataset_record_from_idx_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FOGSIM_DATA_DIR", str(tmp_path / "d"))
    images = images_for(LABELS, (2, 3))
    write_idx(tmp_path / "d" / "mnist", "train", images, LABELS)
    ds = load_dataset("mnist", split="train")
    assert isinstance(ds, Dataset) and len(ds) == 4
    assert (ds.name, ds.split) == ("mnist", "train")
    assert ds.classes == tuple("0123456789")
    assert ds.images.shape == (4, 2, 3, 1) and ds.labels.dtype == np.int64
    assert ds.fingerprint == fingerprint(ds.images, ds.labels)
    assert ds.source == f"{tmp_path / 'd' / 'mnist'} (idx)"
    np.testing.assert_array_equal(ds.class_counts(), [1, 2, 1, 0, 0, 0, 0, 0, 0, 0])


def test_name_defaults_to_the_path_stem(zip_path: Path) -> None:
    assert load_dataset(path=zip_path).name == "test"
    assert load_dataset("mine", path=zip_path).name == "mine"


def test_fingerprint_is_deterministic_and_content_sensitive() -> None:
    images = images_for(LABELS, (2, 2))
    first = fingerprint(images, LABELS.astype(np.int64))
    assert first == fingerprint(images.copy(), LABELS.astype(np.int64))
    assert len(first) == 64 and int(first, 16) >= 0
    changed = LABELS.astype(np.int64)
    changed[0] = 2
    assert fingerprint(images, changed) != first
    assert fingerprint(images.reshape(4, 4, 1), LABELS.astype(np.int64)) != first


def test_same_bytes_same_fingerprint_across_loads(zip_path: Path) -> None:
    cold = load_dataset(path=zip_path, cache_decoded=False)
    warm = load_dataset(path=zip_path)
    assert cold.fingerprint == warm.fingerprint == load_dataset(path=zip_path).fingerprint


def test_decoded_cache_is_used_and_keyed_by_content(
    monkeypatch: pytest.MonkeyPatch, zip_path: Path
) -> None:
    first = load_dataset(path=zip_path)
    entry = cache_path(file_digest(zip_path), "test")
    assert entry.is_file()

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded although the cache holds this archive")

    monkeypatch.setattr(loader, "load_zip", no_decoding)
    hit = load_dataset(path=zip_path)
    np.testing.assert_array_equal(hit.images, first.images)
    assert (hit.classes, hit.fingerprint) == (first.classes, first.fingerprint)
    # Other content, other key: the stale entry is never served.
    write_zip(zip_path, imagefolder_files({"c": [np.zeros((3, 3, 3), np.uint8)]}), "test/")
    with pytest.raises(AssertionError, match="decoded although"):
        load_dataset(path=zip_path)


def test_damaged_cache_entry_is_rebuilt(zip_path: Path) -> None:
    first = load_dataset(path=zip_path)
    entry = cache_path(file_digest(zip_path), "test")
    entry.write_bytes(b"garbage")
    assert load_dataset(path=zip_path).fingerprint == first.fingerprint
    assert entry.stat().st_size > 100


def test_no_cache_writes_nothing(zip_path: Path) -> None:
    load_dataset(path=zip_path, cache_decoded=False)
    assert not cache_path(file_digest(zip_path), "test").exists()


def test_known_archive_with_wrong_sha256(zip_path: Path) -> None:
    # Named cifar10, test.zip must be the provisioned one; this one is not.
    with pytest.raises(UserInputError, match=r"test.zip: sha256 is \w+, expected d232e50e"):
        load_dataset("cifar10", path=zip_path)


def test_classes_must_match_the_registry(tmp_path: Path) -> None:
    labels = np.array([0, 1])
    batch = {"test_batch": (images_for(labels, (32, 32, 3)), labels)}
    folder = write_dir(tmp_path / "cifar-10-batches-py", cifar10_files(batch))
    assert load_dataset("cifar10", path=folder).classes[0] == "airplane"
    names = ["automobile", "airplane", "bird", "cat", "deer", "dog", "frog", "horse", "ship"]
    names.append("truck")
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    with pytest.raises(UserInputError, match=r"\['automobile', 'airplane'.* are not cifar10's"):
        load_dataset("cifar10", path=folder)


def test_bad_split_and_missing_arguments(zip_path: Path) -> None:
    with pytest.raises(UserInputError, match="unknown split 'validation'"):
        load_dataset(path=zip_path, split="validation")
    with pytest.raises(UserInputError, match="give a dataset name or a path"):
        load_dataset()

"""CIFAR-10/100 python batches, from a folder or the official tar.gz, and their errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import (
    CIFAR10_CLASSES,
    cifar10_files,
    cifar100_files,
    images_for,
    write_dir,
    write_tar,
)

from fogsim.data.cifar import load_cifar_dir, load_cifar_tar
from fogsim.errors import UserInputError


def _batches() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        labels = np.array([i % 10, (i + 3) % 10, 9])
        out[name] = (images_for(labels, (32, 32, 3), seed=i), labels)
    return out


@pytest.fixture
def cifar10_dir(tmp_path: Path) -> Path:
    return write_dir(tmp_path / "cifar-10-batches-py", cifar10_files(_batches()))


def test_cifar10_test_split(cifar10_dir: Path) -> None:
    images, labels = _batches()["test_batch"]
    loaded = load_cifar_dir(cifar10_dir, "test")
    assert loaded.images.shape == (3, 32, 32, 3) and loaded.images.dtype == np.uint8
    assert loaded.labels.dtype == np.int64
    # Exact pixels prove the channel-major rows were turned into (H, W, C) correctly.
    np.testing.assert_array_equal(loaded.images, images)
    np.testing.assert_array_equal(loaded.labels, labels)
    assert loaded.classes == CIFAR10_CLASSES


def test_cifar10_train_concatenates_batches_in_order(cifar10_dir: Path) -> None:
    batches = _batches()
    loaded = load_cifar_dir(cifar10_dir, "train")
    names = [f"data_batch_{k}" for k in range(1, 6)]
    np.testing.assert_array_equal(loaded.images, np.concatenate([batches[n][0] for n in names]))
    np.testing.assert_array_equal(loaded.labels, np.concatenate([batches[n][1] for n in names]))


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar10_tar_equals_folder(tmp_path: Path, cifar10_dir: Path, split: str) -> None:
    archive = write_tar(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py",
                        cifar10_files(_batches()))
    from_tar, from_dir = load_cifar_tar(archive, split), load_cifar_dir(cifar10_dir, split)
    np.testing.assert_array_equal(from_tar.images, from_dir.images)
    np.testing.assert_array_equal(from_tar.labels, from_dir.labels)
    assert from_tar.classes == from_dir.classes


@pytest.mark.parametrize("as_tar", [False, True])
def test_cifar100_fine_labels_and_meta_classes(tmp_path: Path, as_tar: bool) -> None:
    classes = [f"class{i:02d}" for i in range(100)]
    labels = np.array([99, 0, 42])
    images = images_for(labels, (32, 32, 3))
    files = cifar100_files({"test": (images, labels), "train": (images[:1], labels[:1])}, classes)
    if as_tar:
        loaded = load_cifar_tar(write_tar(tmp_path / "c.tar.gz", "cifar-100-python", files), "test")
    else:
        loaded = load_cifar_dir(write_dir(tmp_path / "cifar-100-python", files), "test")
    np.testing.assert_array_equal(loaded.images, images)
    np.testing.assert_array_equal(loaded.labels, labels)
    assert loaded.classes == tuple(classes)


def test_truncated_tar(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py",
                        cifar10_files(_batches()))
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(UserInputError, match=r"cifar-10-python.tar.gz: corrupt or truncated"):
        load_cifar_tar(archive, "test")


def test_missing_batch(cifar10_dir: Path) -> None:
    (cifar10_dir / "data_batch_3").unlink()
    with pytest.raises(UserInputError, match="'data_batch_3' is missing"):
        load_cifar_dir(cifar10_dir, "train")


def test_no_meta(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "x.tar.gz", "cifar-10-batches-py", {"test_batch": b"x"})
    with pytest.raises(UserInputError, match="no CIFAR meta file"):
        load_cifar_tar(archive, "test")


class _Evil:
    def __reduce__(self) -> tuple:
        return (print, ("pwned",))


def test_pickle_with_foreign_global_is_refused(cifar10_dir: Path) -> None:
    (cifar10_dir / "test_batch").write_bytes(pickle.dumps({"data": _Evil(), "labels": []}))
    with pytest.raises(UserInputError, match=r"test_batch: not a readable CIFAR batch"):
        load_cifar_dir(cifar10_dir, "test")


def test_truncated_pickle(cifar10_dir: Path) -> None:
    path = cifar10_dir / "test_batch"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserInputError, match="test_batch: not a readable CIFAR batch"):
        load_cifar_dir(cifar10_dir, "test")


def test_wrong_row_size(cifar10_dir: Path) -> None:
    bad = {"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}
    (cifar10_dir / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(UserInputError, match=r"expected uint8 \(N, 3072\)"):
        load_cifar_dir(cifar10_dir, "test")


def test_labels_out_of_range(cifar10_dir: Path) -> None:
    data = np.zeros((1, 3072), np.uint8)
    (cifar10_dir / "test_batch").write_bytes(pickle.dumps({"data": data, "labels": [10]}))
    with pytest.raises(UserInputError, match="labels out of range"):
        load_cifar_dir(cifar10_dir, "test")

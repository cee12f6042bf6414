"""IDX reading (MNIST, Fashion-MNIST layouts), gzipped and raw, and its corrupt-file errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import idx_bytes, images_for, write_idx

from fogsim.data.idx import load_idx, read_idx
from fogsim.errors import UserInputError

LABELS = np.array([3, 0, 1, 3, 2], dtype=np.uint8)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("split", ["train", "test"])
def test_loads_images_labels_exactly(tmp_path: Path, gz: bool, split: str) -> None:
    images = images_for(LABELS, (6, 4))
    write_idx(tmp_path, split, images, LABELS, gz=gz)
    loaded = load_idx(tmp_path, split, classes=("a", "b", "c", "d"))
    assert loaded.images.shape == (5, 6, 4, 1)
    assert loaded.images.dtype == np.uint8 and loaded.labels.dtype == np.int64
    np.testing.assert_array_equal(loaded.images[..., 0], images)
    np.testing.assert_array_equal(loaded.labels, LABELS)
    assert loaded.classes == ("a", "b", "c", "d")
    assert loaded.images.flags.writeable


def test_classes_default_to_label_numbers(tmp_path: Path) -> None:
    write_idx(tmp_path, "test", images_for(LABELS, (2, 2)), LABELS)
    assert load_idx(tmp_path, "test", classes=None).classes == ("0", "1", "2", "3")


def test_truncated_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(idx_bytes(images_for(LABELS, (4, 4)))[:-7])
    with pytest.raises(UserInputError, match=r"t10k-images-idx3-ubyte.*truncated"):
        read_idx(path, 3)


def test_trailing_bytes_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x-idx1"
    path.write_bytes(idx_bytes(LABELS) + b"\0")
    with pytest.raises(UserInputError, match="should hold 5 bytes"):
        read_idx(path, 1)


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    write_idx(tmp_path, "test", images_for(LABELS, (4, 4)), LABELS)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(UserInputError, match=r"t10k-images-idx3-ubyte.gz: corrupt gzip"):
        load_idx(tmp_path, "test", None)


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"PK\3\4 not idx", "bad magic"), (b"\0\0\x0d\x03" + b"\0" * 12, "type 0x0d")],
)
def test_not_idx_or_wrong_type(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(gzip.compress(data))
    with pytest.raises(UserInputError, match=message):
        read_idx(path, 3)


def test_labels_file_missing(tmp_path: Path) -> None:
    write_idx(tmp_path, "test", images_for(LABELS, (4, 4)), LABELS)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserInputError, match="no t10k-labels IDX file"):
        load_idx(tmp_path, "test", None)


def test_count_mismatch(tmp_path: Path) -> None:
    write_idx(tmp_path, "test", images_for(LABELS[:4], (4, 4)), LABELS)
    with pytest.raises(UserInputError, match="4 images but 5 labels"):
        load_idx(tmp_path, "test", None)


def test_label_beyond_classes(tmp_path: Path) -> None:
    write_idx(tmp_path, "test", images_for(LABELS, (4, 4)), LABELS)
    with pytest.raises(UserInputError, match="label 3 but only 2 classes"):
        load_idx(tmp_path, "test", classes=("a", "b"))

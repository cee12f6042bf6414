"""ImageFolder datasets as folders and zips: order, labels, pixels, and their errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import imagefolder_files, png_bytes, write_imagefolder, write_zip

from fogsim.data.dataset import Loaded
from fogsim.data.imagefolder import load_imagefolder, load_zip
from fogsim.errors import UserInputError

RNG = np.random.default_rng(7)


def _colour(n: int) -> list[np.ndarray]:
    return [RNG.integers(0, 256, (5, 4, 3), dtype=np.uint8) for _ in range(n)]


# "cat-2" sorts before "cat/" as a path string but after "cat" as a name: the order
# must follow class names.
CLASSES = {"dog": _colour(2), "cat-2": _colour(1), "cat": _colour(3)}
ORDER = [("cat", 0), ("cat", 1), ("cat", 2), ("cat-2", 0), ("dog", 0), ("dog", 1)]


def _check(loaded: Loaded, classes: dict[str, list[np.ndarray]] = CLASSES) -> None:
    assert loaded.classes == ("cat", "cat-2", "dog")
    assert loaded.images.shape == (6, 5, 4, 3) and loaded.images.dtype == np.uint8
    assert loaded.labels.dtype == np.int64
    np.testing.assert_array_equal(loaded.labels, [0, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(loaded.images, np.stack([classes[c][i] for c, i in ORDER]))


def test_folder_sorted_classes_and_files(tmp_path: Path) -> None:
    files = imagefolder_files(CLASSES)
    # Written in reverse so directory order cannot stand in for sorting.
    write_imagefolder(tmp_path, dict(reversed(files.items())))
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "cat" / ".hidden.png").write_bytes(b"junk")
    _check(load_imagefolder(tmp_path))


def test_grayscale_has_one_channel(tmp_path: Path) -> None:
    gray = {"a": [np.full((3, 3), 7, np.uint8)], "b": [np.arange(9, dtype=np.uint8).reshape(3, 3)]}
    loaded = load_imagefolder(write_imagefolder(tmp_path, imagefolder_files(gray)))
    assert loaded.images.shape == (2, 3, 3, 1)
    np.testing.assert_array_equal(loaded.images[1, ..., 0], gray["b"][0])


@pytest.mark.parametrize("prefix", ["test/", ""])
def test_zip_with_split_folder_or_classes_at_top(tmp_path: Path, prefix: str) -> None:
    files = imagefolder_files(CLASSES)
    archive = write_zip(tmp_path / "test.zip", dict(reversed(files.items())), prefix=prefix)
    _check(load_zip(archive, "test"))


def test_zip_picks_the_requested_split(tmp_path: Path) -> None:
    archive = tmp_path / "both.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in imagefolder_files(CLASSES).items():
            zf.writestr(f"test/{name}", data)
        zf.writestr("train/other/0000.png", png_bytes(np.zeros((5, 4, 3), np.uint8)))
    assert load_zip(archive, "test").classes == ("cat", "cat-2", "dog")
    assert load_zip(archive, "train").classes == ("other",)


def test_zip_without_class_folders(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "flat.zip", {"0000.png": png_bytes(np.zeros((2, 2), np.uint8))})
    with pytest.raises(UserInputError, match=r"flat.zip: no class folders"):
        load_zip(archive, "test")


def test_zip_of_the_other_split_only(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "train.zip", imagefolder_files(CLASSES), prefix="train/")
    with pytest.raises(UserInputError, match=r"expected test/<class>/<image>"):
        load_zip(archive, "test")


def test_not_a_zip(tmp_path: Path) -> None:
    archive = tmp_path / "test.zip"
    archive.write_bytes(b"this is not a zip archive")
    with pytest.raises(UserInputError, match=r"test.zip: corrupt zip archive"):
        load_zip(archive, "test")


def test_undecodable_image(tmp_path: Path) -> None:
    files = imagefolder_files(CLASSES) | {"dog/0009.png": b"\x89PNG broken"}
    with pytest.raises(UserInputError, match=r"cannot decode image .*dog/0009.png"):
        load_imagefolder(write_imagefolder(tmp_path, files))


def test_sizes_must_agree(tmp_path: Path) -> None:
    files = imagefolder_files(CLASSES) | {"dog/0009.png": png_bytes(np.zeros((6, 4, 3), np.uint8))}
    with pytest.raises(UserInputError, match=r"0009.png is 4x6, but the first image is 4x5"):
        load_imagefolder(write_imagefolder(tmp_path, files))


def test_colour_after_grayscale(tmp_path: Path) -> None:
    files = {"a/0.png": png_bytes(np.zeros((2, 2), np.uint8)),
             "b/0.png": png_bytes(np.zeros((2, 2, 3), np.uint8))}
    with pytest.raises(UserInputError, match="all grayscale or all colour"):
        load_imagefolder(write_imagefolder(tmp_path, files))


def test_empty_class_folder(tmp_path: Path) -> None:
    write_imagefolder(tmp_path, imagefolder_files(CLASSES))
    (tmp_path / "bird").mkdir()
    with pytest.raises(UserInputError, match="class folder.* with no images: bird"):
        load_imagefolder(tmp_path)


def test_folder_without_images(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="no class folders with images"):
        load_imagefolder(tmp_path)

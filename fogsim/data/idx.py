"""IDX files (MNIST, Fashion-MNIST), gzipped or raw."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from fogsim.data.dataset import Loaded
from fogsim.errors import UserInputError

_UINT8 = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
_FIX = "Delete it and provision the dataset again (`make data`, or re-download)."


def split_prefix(split: str) -> str:
    """The file-name prefix of SPLIT: the IDX test split is called ``t10k``."""
    return "t10k" if split == "test" else "train"


def find_file(directory: Path, split: str, kind: str) -> Path | None:
    """The images (``idx3``) or labels (``idx1``) file of SPLIT, gzipped preferred."""
    ndim = "idx3" if kind == "images" else "idx1"
    stem = f"{split_prefix(split)}-{kind}-{ndim}-ubyte"
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array an IDX file holds, checking its header and exact length."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[:2] != b"\0\0":
        raise UserInputError(f"{path}: not an IDX file (bad magic number). {_FIX}")
    if raw[2] != _UINT8 or raw[3] != ndim:
        raise UserInputError(
            f"{path}: IDX file holds type 0x{raw[2]:02x} with {raw[3]} dimensions; "
            f"expected uint8 (0x08) with {ndim}. {_FIX}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserInputError(f"{path}: truncated IDX header. {_FIX}")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise UserInputError(
            f"{path}: IDX file of shape {shape} should hold {expected} bytes of data, "
            f"found {len(raw) - header} (truncated or corrupt). {_FIX}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def load_idx(directory: Path, split: str, classes: tuple[str, ...] | None) -> Loaded:
    """SPLIT of the IDX dataset in DIRECTORY; CLASSES name the labels (the files do not)."""
    paths = {kind: find_file(directory, split, kind) for kind in ("images", "labels")}
    for kind, path in paths.items():
        if path is None:
            raise UserInputError(
                f"{directory}: no {split_prefix(split)}-{kind} IDX file for the {split} split. "
                f"Put {split_prefix(split)}-{kind}-*-ubyte.gz beside the other files."
            )
    images = read_idx(paths["images"], 3)
    labels = read_idx(paths["labels"], 1).astype(np.int64)
    if len(images) != len(labels):
        raise UserInputError(
            f"{directory}: {len(images)} images but {len(labels)} labels in the {split} split. "
            f"{_FIX}"
        )
    if classes is None:
        classes = tuple(str(c) for c in range(int(labels.max(initial=-1)) + 1))
    _check_labels(labels, classes, paths["labels"])
    # Copy so the result owns writable memory rather than a view of the read buffer.
    return Loaded(images[..., np.newaxis].copy(), labels, classes)


def _check_labels(labels: np.ndarray, classes: tuple[str, ...], path: Path) -> None:
    if len(labels) and labels.max() >= len(classes):
        raise UserInputError(
            f"{path}: label {labels.max()} but only {len(classes)} classes. {_FIX}"
        )


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise UserInputError(f"{path}: corrupt gzip file ({exc}). {_FIX}") from exc

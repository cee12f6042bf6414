"""Recognising which on-disk layout a dataset directory or file is in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fogsim.data import cifar, idx
from fogsim.data.imagefolder import is_imagefolder
from fogsim.errors import DatasetNotFoundError, UserInputError

Kind = Literal["idx", "cifar-dir", "cifar-tar", "zip", "imagefolder"]
CIFAR_ARCHIVES = ("cifar-10-python.tar.gz", "cifar-100-python.tar.gz")
LAYOUTS = (
    "IDX files ({p}-images-idx3-ubyte[.gz], {p}-labels-idx1-ubyte[.gz]), "
    "CIFAR python batches (cifar-10-batches-py/, cifar-100-python/ or their .tar.gz), "
    "{s}.zip (ImageFolder inside), or a {s}/ folder with one sub-folder per class"
)


@dataclass(frozen=True)
class Source:
    """A split found on disk: the layout it is in and the file or folder to read."""

    kind: Kind
    path: Path


def layouts_help(split: str) -> str:
    """The layouts fogsim reads for SPLIT, in words, for error messages."""
    return LAYOUTS.format(p=idx.split_prefix(split), s=split)


def find_in_directory(directory: Path, split: str) -> Source | None:
    """The SPLIT of the dataset in DIRECTORY, or None when no known layout holds it.

    Original-precision layouts (IDX, CIFAR batches) are preferred to re-encoded ones (zips).
    """
    if idx.find_file(directory, split, "images") is not None:
        return Source("idx", directory)
    for sub in (directory, directory / cifar.CIFAR10_DIR, directory / cifar.CIFAR100_DIR):
        if sub.is_dir() and (cifar.is_cifar10_dir(sub) or cifar.is_cifar100_dir(sub)):
            return Source("cifar-dir", sub)
    for name in CIFAR_ARCHIVES:
        if (directory / name).is_file():
            return Source("cifar-tar", directory / name)
    if (directory / f"{split}.zip").is_file():
        return Source("zip", directory / f"{split}.zip")
    if (directory / split).is_dir() and is_imagefolder(directory / split):
        return Source("imagefolder", directory / split)
    return None


def source_for_path(path: Path, split: str) -> Source:
    """The SPLIT at an explicitly given PATH: a file, a dataset folder, or an ImageFolder."""
    if not path.exists():
        raise DatasetNotFoundError(f"{path} does not exist.")
    if path.is_file():
        name = path.name.lower()
        if name.endswith(".zip"):
            return Source("zip", path)
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            return Source("cifar-tar", path)
        raise UserInputError(
            f"{path}: fogsim cannot tell this file's format; give a .zip of an ImageFolder, a "
            f"CIFAR python .tar.gz, or a folder holding {layouts_help(split)}."
        )
    found = find_in_directory(path, split)
    if found is not None:
        return found
    if is_imagefolder(path):
        # A folder of class folders is one split by itself.
        return Source("imagefolder", path)
    raise UserInputError(
        f"{path}: holds no {split} split in a layout fogsim reads; expected "
        f"{layouts_help(split)}."
    )

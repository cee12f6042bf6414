"""CIFAR-10 and CIFAR-100 "python version" batches, from their directory or tar.gz."""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fogsim.data.dataset import Loaded
from fogsim.errors import UserInputError

_FIX = "Delete it and provision the dataset again (`make data`, or re-download)."
# The batches are pickles; these are the only globals a genuine one refers to, so a
# tampered file cannot run code when we load it.
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")
        return super().find_class(module, name)


def is_cifar10_dir(directory: Path) -> bool:
    """Whether DIRECTORY holds CIFAR-10 batches (``batches.meta`` and data batches)."""
    return (directory / "batches.meta").is_file()


def is_cifar100_dir(directory: Path) -> bool:
    """Whether DIRECTORY holds CIFAR-100 files (``meta`` beside ``train``/``test``)."""
    has_split = (directory / "train").is_file() or (directory / "test").is_file()
    return has_split and (directory / "meta").is_file()


def load_cifar_dir(directory: Path, split: str) -> Loaded:
    """SPLIT of the CIFAR-10 or CIFAR-100 batches in DIRECTORY."""

    def read(name: str) -> dict[str, Any] | None:
        path = directory / name
        return _unpickle(path.read_bytes(), path) if path.is_file() else None

    return _assemble(read, directory, split)


def load_cifar_tar(archive: Path, split: str) -> Loaded:
    """SPLIT of an official ``cifar-10-python.tar.gz`` or ``cifar-100-python.tar.gz``."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            top = CIFAR100_DIR if f"{CIFAR100_DIR}/meta" in members else CIFAR10_DIR

            def read(name: str) -> dict[str, Any] | None:
                member = members.get(f"{top}/{name}")
                if member is None:
                    return None
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                return _unpickle(data, Path(f"{archive}:{member.name}"))

            return _assemble(read, archive, split)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UserInputError(
            f"{archive}: corrupt or truncated tar archive ({exc}). {_FIX}"
        ) from exc


def _assemble(read: Callable[[str], dict[str, Any] | None], where: Path, split: str) -> Loaded:
    meta10 = read("batches.meta")
    if meta10 is not None:
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        return _from_batches(read, names, "labels", meta10, "label_names", where)
    meta100 = read("meta")
    if meta100 is not None:
        return _from_batches(read, [split], "fine_labels", meta100, "fine_label_names", where)
    raise UserInputError(
        f"{where}: no CIFAR meta file (batches.meta or meta); not a CIFAR python archive. {_FIX}"
    )


def _from_batches(
    read: Callable[[str], dict[str, Any] | None],
    names: list[str],
    label_key: str,
    meta: dict[str, Any],
    names_key: str,
    where: Path,
) -> Loaded:
    images, labels = [], []
    for name in names:
        batch = read(name)
        if batch is None:
            raise UserInputError(f"{where}: CIFAR batch {name!r} is missing. {_FIX}")
        data = np.asarray(_field(batch, "data", where, name))
        batch_labels = _field(batch, label_key, where, name)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise UserInputError(
                f"{where}: batch {name!r} holds {data.dtype} data of shape {data.shape}; "
                f"expected uint8 (N, 3072). {_FIX}"
            )
        if len(batch_labels) != len(data):
            raise UserInputError(
                f"{where}: batch {name!r} has {len(data)} images but {len(batch_labels)} "
                f"labels. {_FIX}"
            )
        # Rows are channel-major (1024 red, 1024 green, 1024 blue): to (N, H, W, C).
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch_labels, dtype=np.int64))
    classes = tuple(str(c) for c in _field(meta, names_key, where, "meta"))
    out = Loaded(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels), classes)
    if len(out.labels) and (out.labels.min() < 0 or out.labels.max() >= len(classes)):
        raise UserInputError(f"{where}: labels out of range for {len(classes)} classes. {_FIX}")
    return out


def _field(batch: dict[str, Any], key: str, where: Path, name: str) -> Any:
    if key not in batch:
        raise UserInputError(f"{where}: CIFAR file {name!r} has no {key!r} entry. {_FIX}")
    return batch[key]


def _unpickle(data: bytes, path: Path) -> dict[str, Any]:
    try:
        # latin1 reads the Python 2 pickles of the official archives: keys become str.
        obj = _BatchUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise UserInputError(f"{path}: not a readable CIFAR batch ({exc}). {_FIX}") from exc
    if not isinstance(obj, dict):
        raise UserInputError(f"{path}: not a CIFAR batch (holds {type(obj).__name__}). {_FIX}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}

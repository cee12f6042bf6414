"""The loaded dataset record and its content fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class Loaded(NamedTuple):
    """What every loader returns: uint8 (N, H, W, C) images, int64 labels, class names."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Dataset:
    """One split of a dataset in memory, with where it came from and a content fingerprint."""

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    fingerprint: str
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> np.ndarray:
        """Number of images of each class, indexed like ``classes``."""
        return np.bincount(self.labels, minlength=len(self.classes))


def subset(data: Dataset, indices: np.ndarray, split: str) -> Dataset:
    """The images of DATA at INDICES, as a split of its own (fingerprinted anew)."""
    images, labels = data.images[indices], data.labels[indices]
    return Dataset(
        data.name, split, images, labels, data.classes, fingerprint(images, labels), data.source
    )


def fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 hex over the images' and labels' bytes, used as a cache key for outcomes."""
    digest = hashlib.sha256()
    # The shape goes in too: the same bytes as 28x28 or as 784x1 are different datasets.
    digest.update(repr((images.shape, labels.shape)).encode())
    digest.update(np.ascontiguousarray(images, dtype=np.uint8).data)
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).data)
    return digest.hexdigest()

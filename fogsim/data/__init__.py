"""Datasets: the registry of known ones, finding them on disk, and loading them as arrays.

``load_dataset("fashion-mnist")`` looks in $FOGSIM_DATA_DIR, the user cache, the
system datasets folder, then downloads; ``load_dataset(path=...)`` reads what is there.
"""

from __future__ import annotations

from fogsim.data.dataset import Dataset
from fogsim.data.loader import load_dataset, resolve_dataset
from fogsim.data.registry import known_datasets

__all__ = ["Dataset", "known_datasets", "load_dataset", "resolve_dataset"]

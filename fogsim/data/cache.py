"""Decoded arrays of image archives, kept in the user cache so a second load skips decoding."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fogsim.data.dataset import Loaded, fingerprint
from fogsim.data.locations import decoded_cache_dir

# Bump when the decoded result of the same archive would change (decoder, layout rules).
FORMAT_VERSION = 1


def cache_path(archive_sha256: str, split: str) -> Path:
    """The cache file for SPLIT of the archive whose content hashes to ARCHIVE_SHA256."""
    return decoded_cache_dir() / f"{archive_sha256}-{split}-v{FORMAT_VERSION}.npz"


def load_cached(
    archive_sha256: str, split: str, decode: Callable[[], Loaded]
) -> tuple[Loaded, str]:
    """The decoded split and its fingerprint, from the cache or by DECODE (then stored).

    The key is the archive's content hash, not its path or mtime, so a changed file can
    never be served stale arrays and a moved or relinked one still hits.
    """
    path = cache_path(archive_sha256, split)
    if path.is_file():
        hit = _read(path)
        if hit is not None:
            return hit
    loaded = decode()
    digest = fingerprint(loaded.images, loaded.labels)
    _write(path, loaded, digest)
    return loaded, digest


def _read(path: Path) -> tuple[Loaded, str] | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            loaded = Loaded(npz["images"], npz["labels"], tuple(str(c) for c in npz["classes"]))
            return loaded, str(npz["fingerprint"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        # A damaged cache entry (a crash mid-write on another tool, a full disk) only
        # costs a decode: it is rebuilt from the archive, which is the source of truth.
        return None


def _write(path: Path, loaded: Loaded, digest: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside, then rename: concurrent loads never see a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.part")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                images=loaded.images,
                labels=loaded.labels,
                classes=np.array(loaded.classes, dtype=str),
                fingerprint=np.array(digest),
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

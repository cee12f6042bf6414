"""File digests, and checking a file against the checksum the registry holds for it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fogsim.data.registry import Checksum
from fogsim.errors import UserInputError


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of the file at PATH."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def verify_file(path: Path, expected: Checksum, fix: str) -> None:
    """Raise a UserInputError naming PATH and FIX when its digest is not the expected one."""
    algorithm, want = ("sha256", expected.sha256) if expected.sha256 else ("md5", expected.md5)
    got = file_digest(path, algorithm)
    if got != want:
        raise UserInputError(
            f"{path}: {algorithm} is {got}, expected {want} (corrupt, truncated or a "
            f"different file). {fix}"
        )

"""Seeded randomness owned by the run: one seed, independent named streams."""

from __future__ import annotations

import hashlib

import numpy as np


def _name_key(name: str) -> tuple[int, ...]:
    """A stable 128-bit key for a stream name (Python's ``hash`` is salted per process)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


class Streams:
    """Independent random streams derived from one seed, looked up by purpose name.

    ``stream("arrivals")`` is the same generator object on every call, so its
    draws continue where they left off; different names never share state, and
    a stream's draws do not depend on which other streams were created first.
    """

    def __init__(self, seed: int) -> None:
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self._streams: dict[str, np.random.Generator] = {}

    def stream(self, name: str) -> np.random.Generator:
        """The generator for ``name``, created on first use."""
        generator = self._streams.get(name)
        if generator is None:
            sequence = np.random.SeedSequence(self.seed, spawn_key=_name_key(name))
            generator = np.random.default_rng(sequence)
            self._streams[name] = generator
        return generator

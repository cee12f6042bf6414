"""Batteries: a device stops during the request in which its battery runs out."""

from __future__ import annotations

import numpy as np


def drain(capacity_j: np.ndarray, device: np.ndarray, parts: list[np.ndarray]) -> np.ndarray:
    """Spend each device's battery on its requests in order; return which ones find it empty.

    ``parts`` are one request's energies in the order it spends them (idle before
    it, its compute, its radio); rows are sorted by device, then by arrival.
    The request during which the battery runs out keeps what was left in it, taken
    part by part in that order, so a device's energies add up to its battery.
    Every later request of the device gets nothing. ``parts`` change in place.
    """
    if np.isposinf(capacity_j).all():
        return np.zeros(device.size, dtype=bool)  # no battery can run out: nothing to drain
    spent = np.sum(parts, axis=0)
    before = spent_before(spent, device)
    empty = before + spent > capacity_j
    left = np.maximum(capacity_j - before, 0.0)
    for part in parts:
        taken = np.minimum(part, left)
        part[empty] = taken[empty]
        left = left - taken
    return empty


def spent_before(spent_j: np.ndarray, device: np.ndarray) -> np.ndarray:
    """What each device spent on its earlier requests (rows sorted by device, then arrival)."""
    if spent_j.size == 0:
        return spent_j.copy()
    total = np.cumsum(spent_j)
    first = np.flatnonzero(np.append(True, device[1:] != device[:-1]))
    offset = np.repeat(total[first] - spent_j[first], np.diff(np.append(first, spent_j.size)))
    return total - offset - spent_j

"""The bursty (on/off) arrivals of many devices in one compiled loop.

``Bursty.sample`` device after device costs tens of microseconds of numpy calls each;
this draws the same numbers from the same generator in the same order (numba's
``Generator`` methods are numpy's algorithms), with the same arithmetic, so the times
are the same to the bit. ``tests/test_arrivals.py`` checks it against ``sample``.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def bursty_devices(
    rng: np.random.Generator,
    duration_s: float,
    count: int,
    on_rate_per_s: float,
    mean_on_s: float,
    mean_off_s: float,
) -> tuple[np.ndarray, np.ndarray]:
    """All devices' sorted times, device after device, and each device's count."""
    on_share = mean_on_s / (mean_on_s + mean_off_s)
    cycle_s = mean_on_s + mean_off_s
    pairs = max(8, int(1.2 * duration_s / cycle_s) + 8)
    counts = np.zeros(count, np.int64)
    out = np.empty(1024)
    used = 0
    for device in range(count):
        starts, ends = _on_periods(rng, duration_s, on_share, pairs, mean_on_s, mean_off_s)
        n = np.empty(starts.size, np.int64)
        for k in range(starts.size):
            n[k] = rng.poisson(on_rate_per_s * (ends[k] - starts[k]))
        total = int(n.sum())
        times = np.empty(total)
        j = 0
        for k in range(starts.size):  # the offsets, drawn after all the counts
            span = ends[k] - starts[k]
            for _ in range(n[k]):
                times[j] = starts[k] + rng.random() * span
                j += 1
        times.sort()
        while used + total > out.size:
            grown = np.empty(2 * out.size)
            grown[:used] = out[:used]
            out = grown
        out[used : used + total] = times
        used += total
        counts[device] = total
    return out[:used].copy(), counts


@numba.njit(cache=True)
def _on_periods(
    rng: np.random.Generator,
    duration_s: float,
    on_share: float,
    pairs: int,
    mean_on_s: float,
    mean_off_s: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``Bursty._on_periods``: the same draws (all on periods of a block, then all off)."""
    starts_on = rng.random() < on_share
    boundaries = np.zeros(1)
    while boundaries[-1] < duration_s:
        on = np.empty(pairs)
        for k in range(pairs):
            on[k] = rng.exponential(mean_on_s)
        off = np.empty(pairs)
        for k in range(pairs):
            off[k] = rng.exponential(mean_off_s)
        grown = np.empty(boundaries.size + 2 * pairs)
        grown[: boundaries.size] = boundaries
        last = boundaries[-1]
        total = 0.0  # a running sum, as np.cumsum adds: then added to the last boundary
        for k in range(pairs):
            first, second = (on[k], off[k]) if starts_on else (off[k], on[k])
            total += first
            grown[boundaries.size + 2 * k] = last + total
            total += second
            grown[boundaries.size + 2 * k + 1] = last + total
        boundaries = grown
    boundaries = np.minimum(boundaries, duration_s)
    first_on = 0 if starts_on else 1
    starts = boundaries[first_on:-1:2]
    ends = boundaries[first_on + 1 :: 2][: starts.size]
    return starts, ends

"""Heterogeneous device groups: each device's own factors on its group's profile.

A group with a ``spread`` draws, for each of its devices, one factor per figure
(throughput, memory bandwidth, power, uplink) from the run's seed, stream
``population/<group name>/<figure>``; a figure without a spread keeps factor 1. The draws
are vectors over the group's devices, so a group of millions costs one array each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fogsim.scenario.models import DeviceGroup, LognormalSpread, Spread
from fogsim.sim.rng import Streams

FIGURES = ("throughput", "memory_bandwidth", "power", "uplink")


@dataclass(frozen=True)
class Factors:
    """Per-device factors of one group (arrays of its device count)."""

    throughput: np.ndarray
    memory_bandwidth: np.ndarray
    power: np.ndarray
    uplink: np.ndarray


def _draw(spread: Spread | None, rng: np.random.Generator, count: int) -> np.ndarray:
    if spread is None:
        return np.ones(count)
    if isinstance(spread, LognormalSpread):
        return np.exp(rng.normal(0.0, spread.sigma, count))
    return rng.uniform(spread.low, spread.high, count)


def draw_factors(seed: int, group: DeviceGroup) -> Factors:
    """The group's per-device factors; the same seed and group give the same draws."""
    streams = Streams(seed)
    spread = group.spread
    # One stream per figure, so that spreading one figure does not move another's draws.
    return Factors(
        **{
            name: _draw(
                None if spread is None else getattr(spread, name),
                streams.stream(f"population/{group.name}/{name}"),
                group.count,
            )
            for name in FIGURES
        }
    )

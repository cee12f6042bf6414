"""The scenario's devices as a table: each device's group and its own figures.

Each device's figures are its group's profile and radio times the factors the
simulator draws for it (``fogsim.sim.population``, the same seed and streams), so the
optimiser sees exactly the devices a run simulates. ``features`` turns them into the
numbers the predictors read (logs of rates, so that a factor is a shift).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import numpy as np

from fogsim.scenario.models import DeviceGroup, PowerRadioEnergy, Precision, Scenario
from fogsim.sim.population import Factors, draw_factors

PRECISIONS: tuple[str, ...] = typing.get_args(Precision)
# Where a profile has no memory roofline: a bandwidth no layer reaches (bit/s).
UNBOUNDED_BPS = 1e15
FEATURES = (
    *(f"log_throughput_{p}" for p in PRECISIONS),
    "log_memory_bandwidth",
    "layer_overhead_us",
    "log_active_power",
    "log_uplink",
    "radio_delay_s",
    "log_tx_joules_per_bit",
)


@dataclass(frozen=True)
class Population:
    """Every device of a scenario, numbered as the simulator numbers them (group by group)."""

    group: np.ndarray  # int (devices,)
    factors: tuple[Factors, ...]  # per group
    features: np.ndarray  # float (devices, len(FEATURES))

    @property
    def size(self) -> int:
        return int(self.group.size)

    def rows(self, g: int) -> np.ndarray:
        return np.flatnonzero(self.group == g)


def population(scenario: Scenario) -> Population:
    """The scenario's devices, their factors drawn from its seed as a run draws them."""
    factors = tuple(draw_factors(scenario.seed, group) for group in scenario.devices)
    group = np.concatenate(
        [np.full(g.count, i, dtype=np.int64) for i, g in enumerate(scenario.devices)]
    )
    table = np.concatenate(
        [_features(g, f) for g, f in zip(scenario.devices, factors, strict=True)]
    )
    return Population(group, factors, table)


def _features(group: DeviceGroup, f: Factors) -> np.ndarray:
    profile, radio = group.profile, group.radio
    n = group.count
    columns = []
    for precision in PRECISIONS:
        rate = profile.throughput.get(precision)
        columns.append(np.log(rate * f.throughput) if rate else np.zeros(n))
    bandwidth = profile.memory_bandwidth or UNBOUNDED_BPS
    columns.append(np.log(bandwidth * f.memory_bandwidth))
    columns.append(np.full(n, profile.layer_overhead * 1e6))
    columns.append(np.log(profile.active_power * f.power))
    uplink = radio.uplink * f.uplink
    columns.append(np.log(uplink))
    columns.append(np.full(n, radio.delay))
    columns.append(np.log(tx_joules_per_bit(group, uplink)))
    return np.column_stack(columns)


def tx_joules_per_bit(group: DeviceGroup, uplink_bps: np.ndarray) -> np.ndarray:
    """Joules per bit sent at the device's own uplink rate, as ``fogsim.sim.radio`` counts
    them (no tail): power model, or the per-bit figure's power over a slower link."""
    energy = group.radio.energy
    if isinstance(energy, PowerRadioEnergy):
        return energy.tx_per_bps + energy.tx_base / uplink_bps
    return energy.tx * group.radio.uplink / uplink_bps

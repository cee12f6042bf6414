"""Ground truth: each design's latency and energy on each device, by the simulator's own
device model.

A request's device latency is its roofline compute time on the device (``fogsim.sim.device``,
with the device's own factors) plus, when it leaves the device, its features over the
device's own uplink and the radio's delay; its energy is the compute energy plus the
radio's sending energy (``fogsim.sim.radio.send_energy``). Both are means over the request
kinds a design produces. Left out, because they depend on traffic and not on the design
alone: queueing, the shared stages after the gateway, idle power and radio tails.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fogsim.inference import InferenceOutcomes
from fogsim.optimize.designs import DesignSpace
from fogsim.optimize.population import Population
from fogsim.scenario.models import Scenario
from fogsim.sim.device import _times_and_energy
from fogsim.sim.radio import send_energy
from fogsim.sim.routes import Kinds


@dataclass(frozen=True)
class Truth:
    """Per (device, design): mean device latency (s) and energy (J) per request; per design:
    accuracy and exit rate."""

    latency_s: np.ndarray  # (devices, designs)
    energy_j: np.ndarray  # (devices, designs)
    accuracy: np.ndarray  # (designs,)
    exit_rate: np.ndarray  # (designs,)


def ground_truth(
    scenario: Scenario,
    space: DesignSpace,
    devices: Population,
    rows: np.ndarray | None = None,
    designs: np.ndarray | None = None,
) -> Truth:
    """The truth for devices ``rows`` (default all) and designs ``designs`` (default all)."""
    rows = np.arange(devices.size) if rows is None else np.asarray(rows)
    chosen = np.arange(len(space.designs)) if designs is None else np.asarray(designs)
    latency = np.zeros((rows.size, chosen.size))
    energy = np.zeros_like(latency)
    by_model: dict[int, list[int]] = {}
    for j, d in enumerate(chosen.tolist()):
        by_model.setdefault(space.designs[d].model, []).append(j)
    for m, columns in by_model.items():
        kind_s, kind_j, send_s, send_j = kind_costs(scenario, space.models[m], devices, rows)
        share = np.stack([space.designs[chosen[j]].kind_share for j in columns], axis=1)
        bits = np.stack([space.designs[chosen[j]].kind_bits for j in columns], axis=1)
        # Sending is linear in the bits, so a kind's mean bits give its mean cost.
        latency[:, columns] = kind_s @ share + _sending(send_s, bits, share)
        energy[:, columns] = kind_j @ share + _sending(send_j, bits, share)
    d = [space.designs[i] for i in chosen]
    return Truth(
        latency,
        energy,
        np.array([x.accuracy for x in d]),
        np.array([x.exit_rate for x in d]),
    )


def _sending(per_bit_and_fixed: np.ndarray, bits: np.ndarray, share: np.ndarray) -> np.ndarray:
    """(devices, designs): sum over kinds of share x (per-bit cost x bits + fixed cost)."""
    per_bit, fixed = per_bit_and_fixed[:, 0], per_bit_and_fixed[:, 1]
    sends = (bits > 0).astype(np.float64)
    return per_bit[:, None] * (share * bits).sum(0) + fixed[:, None] * (share * sends).sum(0)


def kind_costs(
    scenario: Scenario, outcomes: InferenceOutcomes, devices: Population, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compute seconds and joules per (device, request kind) of one checkpoint, and each
    device's sending cost as (per bit, per request): seconds and joules."""
    kinds = Kinds(outcomes)
    kind_s = np.zeros((rows.size, kinds.count))
    kind_j = np.zeros_like(kind_s)
    send_s = np.zeros((rows.size, 2))
    send_j = np.zeros((rows.size, 2))
    first = np.cumsum([0] + [g.count for g in scenario.devices])
    for g, group in enumerate(scenario.devices):
        mine = np.flatnonzero(devices.group[rows] == g)
        if mine.size == 0:
            continue
        own = rows[mine] - first[g]
        f = devices.factors[g]
        kind_s[mine], kind_j[mine] = _times_and_energy(
            g,
            group.profile,
            kinds,
            f.throughput[own, None],
            f.memory_bandwidth[own, None],
            f.power[own, None],
        )
        uplink = group.radio.uplink * f.uplink[own]
        send_s[mine, 0], send_s[mine, 1] = 1.0 / uplink, group.radio.delay
        # send_energy is linear in bits at a fixed rate: its value for one bit is per bit.
        send_j[mine, 0] = send_energy(group.radio, np.ones(mine.size), 1.0 / uplink)
    return kind_s, kind_j, send_s, send_j

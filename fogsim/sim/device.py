"""What happens on the devices: their compute, their own radio link, and their energy.

A device's compute queue and its dedicated access link are each a FIFO server
that no other device touches, so their start and end times follow exactly
from the Lindley recursion, vectorised over all devices (``solve_fifo``);
no simulation events are needed for them. The radio's energy waits for the
shared fog (``fogsim.sim.radio``): on a shared cell, and for the answer, only
the fog knows how long the radio is busy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fogsim.energy import energy_per_mac
from fogsim.errors import UserInputError
from fogsim.inference import InferenceOutcomes
from fogsim.scenario.models import DeviceProfile, Scenario
from fogsim.sim import battery
from fogsim.sim.device_jobs import DeviceJobs, charge_jobs, solve_with_jobs
from fogsim.sim.fifo import solve_fifo
from fogsim.sim.population import draw_factors
from fogsim.sim.radio import send_energy
from fogsim.sim.roofline import roofline_seconds
from fogsim.sim.routes import Kinds
from fogsim.sim.workload import Workload

DEVICE_QUEUE_FULL = "device_queue_full"
BATTERY_EMPTY = "battery_empty"


@dataclass
class DeviceStage:
    """Per-request results of the device side; NaN where a stage did not happen."""

    compute_start_s: np.ndarray
    compute_end_s: np.ndarray
    uplink_start_s: np.ndarray  # the device's own radio began sending (dedicated access)
    uplink_sent_s: np.ndarray  # ...and sent its last bit
    uplink_end_s: np.ndarray  # when the last bit reached the gateway
    bits: np.ndarray  # bits the device sends (0 when answered on the device)
    compute_j: np.ndarray
    idle_j: np.ndarray
    drop_reason: np.ndarray  # object: None or a reason


def compute_tables(scenario: Scenario, kinds: Kinds) -> tuple[np.ndarray, np.ndarray]:
    """Service time (s) and compute energy (J) per (device group, request kind), for the
    group's profile as it stands (each device's own factors are applied in device_tables)."""
    seconds = np.zeros((len(scenario.devices), kinds.count))
    joules = np.zeros_like(seconds)
    for g, group in enumerate(scenario.devices):
        seconds[g], joules[g] = _times_and_energy(g, group.profile, kinds, 1.0, 1.0, 1.0)
    return seconds, joules


def _times_and_energy(
    g: int, profile: DeviceProfile, kinds: Kinds, speed: Any, memory: Any, power: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Roofline time and compute energy per request kind (last axis) of a profile whose
    throughput, memory bandwidth and power are scaled by the given factors (a number, or
    a column of per-device factors)."""
    ops = [kinds.device_ops(kind) for kind in range(kinds.count)]
    compute = np.zeros(len(ops))
    op_joules = np.zeros(len(ops))
    per_mac = _energy_per_mac(profile) if profile.compute_energy == "per_op" else None
    for k, by_precision in enumerate(ops):
        for precision, macs in by_precision.items():
            rate = profile.throughput.get(precision)
            if rate is None:
                raise _missing(g, "throughput", precision)
            compute[k] += macs / rate
            if per_mac is not None:
                if precision not in per_mac:
                    raise _missing(g, "energy_per_mac", precision)
                op_joules[k] += macs * per_mac[precision]
    traffic, layers = device_traffic(kinds)
    bandwidth = None if profile.memory_bandwidth is None else profile.memory_bandwidth * memory
    # Compute-bound time, with memory traffic and overhead added by the roofline
    # (unchanged for a profile without memory_bandwidth and layer_overhead).
    seconds = roofline_seconds(compute / speed, traffic, layers, bandwidth, profile.layer_overhead)
    if per_mac is not None:
        return seconds, op_joules * power * np.ones_like(seconds)
    # The whole device draws active_power while it computes (idle power is
    # counted only outside compute, in _idle_energy).
    return seconds, profile.active_power * power * seconds


def device_traffic(kinds: Kinds) -> tuple[np.ndarray, np.ndarray]:
    """Bytes moved and conv/linear layers the device runs, per request kind."""
    o = kinds.outcomes
    traffic, layers = np.zeros(kinds.count), np.zeros(kinds.count)
    traffic[: kinds.n_exits] = o.edge_bytes_to_exit
    layers[: kinds.n_exits] = o.edge_layers_to_exit
    traffic[kinds.features], layers[kinds.features] = o.edge_bytes, o.edge_layers
    return traffic, layers


def _energy_per_mac(profile: DeviceProfile) -> dict[str, float]:
    table = energy_per_mac(profile.energy_table) if profile.energy_table else {}
    return {**table, **profile.energy_per_mac}


def _missing(group: int, field: str, precision: str) -> UserInputError:
    return UserInputError(
        f"devices[{group}].profile.{field}: the network runs {precision} layers on the device, "
        f"but the device profile gives no {precision} {field}; add one, "
        f"e.g. profile: {{base: ..., {field}: {{{precision}: ...}}}}"
    )


def run_devices(
    scenario: Scenario,
    workload: Workload,
    outcomes: InferenceOutcomes,
    kinds: Kinds,
    kind: np.ndarray,
    jobs: DeviceJobs | None = None,
) -> DeviceStage:
    """Device compute, dedicated uplinks, compute and idle energy of every device; ``jobs``
    (on-device training) take their turns in the compute queues.

    Requests that find their device's battery certainly empty are dropped here,
    before they can load the shared fog; the engine settles the batteries once
    the radio's energy is known.
    """
    n = workload.size
    service, joules, uplink_bps = device_tables(scenario, workload, kinds, kind)
    drop = np.full(n, None, dtype=object)
    # The same as ``drop != None``, kept as it is filled: comparing an object array
    # costs a Python call a request.
    dropped = np.zeros(n, dtype=bool)
    start, end = np.full(n, np.nan), np.full(n, np.nan)
    for g, group in enumerate(scenario.devices):
        rows = workload.group_rows(g)
        result = solve_with_jobs(
            workload.device[rows],
            workload.arrival_s[rows],
            service[rows],
            group.queue_capacity,
            jobs,
        )
        start[rows], end[rows] = result.start_s, result.end_s
        drop[rows[result.dropped]] = DEVICE_QUEUE_FULL
        dropped[rows[result.dropped]] = True
    bits = _bits_sent(kinds, kind, outcomes, workload, scenario.policy.raw_bytes(outcomes))
    bits[dropped] = 0.0
    compute_j = np.where(dropped, 0.0, joules)
    del dropped
    up_start, up_sent, up_end = _dedicated_uplinks(scenario, workload, end, bits, uplink_bps)
    idle_j = _idle_energy(scenario, workload, start, end)
    if jobs is not None:
        idle_w = np.array([group.profile.idle_power for group in scenario.devices])
        job_j, job_idle_j = charge_jobs(jobs, workload.device, start, idle_w[workload.group])
        compute_j, idle_j = compute_j + job_j, idle_j - job_idle_j
    stage = DeviceStage(start, end, up_start, up_sent, up_end, bits, compute_j, idle_j, drop)
    _stop_empty_devices(scenario, workload, stage, uplink_bps)
    return stage


def device_tables(
    scenario: Scenario, workload: Workload, kinds: Kinds, kind: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each request's device service time (s), compute energy (J) and radio uplink rate
    (bit/s): its group's, or, in a group with a ``spread``, its own device's."""
    seconds, joules = compute_tables(scenario, kinds)
    service, energy = seconds[workload.group, kind], joules[workload.group, kind]
    uplink = np.array([group.radio.uplink for group in scenario.devices])[workload.group]
    first = 0
    for g, group in enumerate(scenario.devices):
        if group.spread is not None:
            rows = workload.group_rows(g)
            f = draw_factors(scenario.seed, group)
            own = workload.device[rows] - first
            per_device_s, per_device_j = _times_and_energy(
                g,
                group.profile,
                kinds,
                f.throughput[:, None],
                f.memory_bandwidth[:, None],
                f.power[:, None],
            )
            service[rows] = per_device_s[own, kind[rows]]
            energy[rows] = per_device_j[own, kind[rows]]
            uplink[rows] = group.radio.uplink * f.uplink[own]
        first += group.count
    return service, energy, uplink


def _bits_sent(
    kinds: Kinds,
    kind: np.ndarray,
    outcomes: InferenceOutcomes,
    workload: Workload,
    raw_bytes: int,
) -> np.ndarray:
    """Bits the device sends: nothing when it answers, its features, or the raw input
    (``raw_bytes``: the image's, or the policy's payload)."""
    leaves = np.array([kinds.tier(k) != 0 for k in range(kinds.count)])[kind]
    raw = (kind == kinds.raw_cloud) | (kind == kinds.raw_fog)
    feature_bits = outcomes.compressed_feature_bytes[workload.image_id].astype(np.float64) * 8
    return np.select([raw, leaves], [raw_bytes * 8.0, feature_bits], 0.0)


def _dedicated_uplinks(
    scenario: Scenario,
    workload: Workload,
    compute_end: np.ndarray,
    bits: np.ndarray,
    uplink_bps: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each device's own radio link to its gateway, as a FIFO (gateways with dedicated access):
    when sending starts, when the last bit leaves, and when it reaches the gateway."""
    n = workload.size
    start, sent, end = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    dedicated = np.array([g.access == "dedicated" for g in scenario.network.gateway_nodes])
    sends = (bits > 0) & dedicated[workload.gateway]
    for g, group in enumerate(scenario.devices):
        rows = workload.group_rows_where(g, sends)
        if rows.size == 0:
            continue
        # Requests leave the device in order of finishing their own part.
        rows = _by_device_then(rows, workload.device, compute_end)
        result = solve_fifo(workload.device[rows], compute_end[rows], bits[rows] / uplink_bps[rows])
        start[rows], sent[rows] = result.start_s, result.end_s
        end[rows] = result.end_s + group.radio.delay
    return start, sent, end


def _by_device_then(rows: np.ndarray, device: np.ndarray, time_s: np.ndarray) -> np.ndarray:
    """``rows`` ordered by device, then time, ties kept in order (a stable sort). A device
    computes first in, first out, so they mostly are already: checked first, in one pass."""
    d, t = device[rows], time_s[rows]
    ordered = (d[1:] > d[:-1]) | ((d[1:] == d[:-1]) & (t[1:] >= t[:-1]))
    if ordered.all():
        return rows
    return rows[np.lexsort((t, d))]


def _idle_energy(
    scenario: Scenario, workload: Workload, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """Idle power over the gap before each computed request since the device's last one."""
    idle_w = np.array([group.profile.idle_power for group in scenario.devices])[workload.group]
    served = ~np.isnan(start)
    idle = np.zeros(workload.size)
    rows = np.flatnonzero(served)
    if rows.size == 0:
        return idle
    device = workload.device[rows]
    previous_end = np.concatenate(([0.0], end[rows][:-1]))
    previous_end[np.concatenate(([True], device[1:] != device[:-1]))] = 0.0
    idle[rows] = np.maximum(start[rows] - previous_end, 0.0) * idle_w[rows]
    return idle


def battery_capacity_j(scenario: Scenario, workload: Workload) -> np.ndarray:
    """Each request's device battery in joules (infinite where a device has none)."""
    capacity = [np.inf if group.battery is None else group.battery for group in scenario.devices]
    return np.array(capacity)[workload.group]


def _stop_empty_devices(
    scenario: Scenario, workload: Workload, stage: DeviceStage, uplink_bps: np.ndarray
) -> None:
    """Drop the requests whose device has certainly spent its battery before they begin.

    "Certainly": counting only what is known before the fog, with sending at its
    fastest, no tail and no answer; the full count can only be larger.
    """
    capacity = battery_capacity_j(scenario, workload)
    if np.isinf(capacity).all():
        return
    least_send = _least_send_energy(scenario, workload, stage.bits, uplink_bps)
    spent = stage.idle_j + stage.compute_j + least_send
    empty = battery.spent_before(spent, workload.device) > capacity
    stage.drop_reason[empty] = BATTERY_EMPTY
    for column in (
        stage.compute_start_s,
        stage.compute_end_s,
        stage.uplink_start_s,
        stage.uplink_sent_s,
        stage.uplink_end_s,
    ):
        column[empty] = np.nan
    stage.bits[empty] = 0.0
    stage.compute_j[empty] = stage.idle_j[empty] = 0.0


def _least_send_energy(
    scenario: Scenario, workload: Workload, bits: np.ndarray, uplink_bps: np.ndarray
) -> np.ndarray:
    """Sending energy with the radio at its own rate, or a shared cell all to itself."""
    cell_bps = np.array(
        [np.inf if g.cell is None else g.cell.bandwidth for g in scenario.network.gateway_nodes]
    )
    shared = np.array([g.access == "shared" for g in scenario.network.gateway_nodes])
    joules = np.zeros(workload.size)
    sends = bits > 0
    for g, group in enumerate(scenario.devices):
        rows = workload.group_rows_where(g, sends)
        gateway = workload.gateway[rows]
        rate = np.where(shared[gateway], cell_bps[gateway], uplink_bps[rows])
        joules[rows] = send_energy(group.radio, bits[rows], bits[rows] / rate)
    return joules

"""What happens on the devices: edge compute, the device's own radio, and its energy.

A device's compute queue and its dedicated access link are each a FIFO server
that no other device touches, so their start and end times follow exactly
from the Lindley recursion, vectorised over all devices (``solve_fifo``);
no simulation events are needed for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fogsim.energy import energy_per_mac
from fogsim.errors import UserInputError
from fogsim.inference import InferenceOutcomes
from fogsim.policies import Decision, Route
from fogsim.scenario.models import DeviceProfile, PowerRadioEnergy, RadioProfile, Scenario
from fogsim.sim.fifo import solve_fifo
from fogsim.sim.workload import Workload

DEVICE_QUEUE_FULL = "device_queue_full"
BATTERY_EMPTY = "battery_empty"


@dataclass
class EdgeStage:
    """Per-request results of the device side; NaN where a stage did not happen."""

    edge_start_s: np.ndarray
    edge_end_s: np.ndarray
    uplink_start_s: np.ndarray
    uplink_end_s: np.ndarray  # when the last bit reached the gateway (dedicated access)
    bits: np.ndarray  # bits the device sends (0 when answered at the edge)
    compute_j: np.ndarray
    radio_j: np.ndarray
    idle_j: np.ndarray
    drop_reason: np.ndarray  # object: None or a reason


def request_kinds(decision: Decision, n_exits: int) -> np.ndarray:
    """An index per request: exit e answered (0..E-1), features sent (E), raw sent (E+1)."""
    return np.where(
        decision.route == Route.EDGE,
        decision.exit_index,
        np.where(decision.route == Route.FEATURES, n_exits, n_exits + 1),
    ).astype(np.int64)


def kind_ops(outcomes: InferenceOutcomes) -> list[dict[str, int]]:
    """MACs by precision the device runs for each request kind."""
    return [*outcomes.edge_ops_to_exit, outcomes.edge_ops, {}]


def compute_tables(
    scenario: Scenario, outcomes: InferenceOutcomes
) -> tuple[np.ndarray, np.ndarray]:
    """Service time (s) and compute energy (J) per (device group, request kind)."""
    ops = kind_ops(outcomes)
    seconds = np.zeros((len(scenario.devices), len(ops)))
    joules = np.zeros_like(seconds)
    for g, group in enumerate(scenario.devices):
        per_mac = _energy_per_mac(group.profile)
        for k, by_precision in enumerate(ops):
            for precision, macs in by_precision.items():
                rate = group.profile.throughput.get(precision)
                if rate is None or precision not in per_mac:
                    missing = "throughput" if rate is None else "energy_per_mac"
                    raise UserInputError(
                        f"devices[{g}].profile.{missing}: the network runs {precision} layers "
                        f"at the edge, but the device profile gives no {precision} {missing}; "
                        f"add one, e.g. profile: {{base: ..., {missing}: {{{precision}: ...}}}}"
                    )
                seconds[g, k] += macs / rate
                joules[g, k] += macs * per_mac[precision]
            if group.profile.compute_energy == "active_power":
                joules[g, k] = group.profile.active_power * seconds[g, k]
    return seconds, joules


def _energy_per_mac(profile: DeviceProfile) -> dict[str, float]:
    return {**energy_per_mac(profile.energy_table), **profile.energy_per_mac}


def run_devices(
    scenario: Scenario,
    workload: Workload,
    outcomes: InferenceOutcomes,
    decision: Decision,
) -> EdgeStage:
    """Edge compute, dedicated uplinks, energy and batteries of every device."""
    n = workload.size
    kinds = request_kinds(decision, outcomes.exit_pred.shape[1])
    seconds, joules = compute_tables(scenario, outcomes)
    service = seconds[workload.group, kinds]
    drop = np.full(n, None, dtype=object)
    start, end = np.full(n, np.nan), np.full(n, np.nan)
    for g, group in enumerate(scenario.devices):
        # Devices are numbered group by group, so each group is one contiguous block.
        rows = np.flatnonzero(workload.group == g)
        result = solve_fifo(
            workload.device[rows], workload.arrival_s[rows], service[rows], group.queue_capacity
        )
        start[rows], end[rows] = result.start_s, result.end_s
        drop[rows[result.dropped]] = DEVICE_QUEUE_FULL
    bits = _bits_sent(decision, outcomes, workload)
    bits[drop != None] = 0.0  # noqa: E711 - elementwise comparison on an object array
    compute_j = np.where(drop == None, joules[workload.group, kinds], 0.0)  # noqa: E711
    up_start, up_end = _dedicated_uplinks(scenario, workload, end, bits)
    radio_j = _radio_energy(scenario, workload, bits, up_start, up_end, end)
    idle_j = _idle_energy(scenario, workload, start, end)
    stage = EdgeStage(start, end, up_start, up_end, bits, compute_j, radio_j, idle_j, drop)
    _drain_batteries(scenario, workload, stage)
    return stage


def _bits_sent(decision: Decision, outcomes: InferenceOutcomes, workload: Workload) -> np.ndarray:
    feature_bits = outcomes.compressed_feature_bytes[workload.image_id].astype(np.float64) * 8
    return np.select(
        [decision.route == Route.FEATURES, decision.route == Route.RAW],
        [feature_bits, np.full(workload.size, outcomes.input_bytes * 8.0)],
        0.0,
    )


def _dedicated_uplinks(
    scenario: Scenario, workload: Workload, edge_end: np.ndarray, bits: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each device's own radio link to its gateway, as a FIFO (gateways with dedicated access)."""
    n = workload.size
    start, end = np.full(n, np.nan), np.full(n, np.nan)
    dedicated = np.array([g.access == "dedicated" for g in scenario.network.gateways])
    sends = (bits > 0) & dedicated[workload.gateway]
    for g, group in enumerate(scenario.devices):
        rows = np.flatnonzero(sends & (workload.group == g))
        if rows.size == 0:
            continue
        # Requests leave the device in order of finishing their edge part.
        rows = rows[np.lexsort((edge_end[rows], workload.device[rows]))]
        result = solve_fifo(workload.device[rows], edge_end[rows], bits[rows] / group.radio.uplink)
        start[rows] = result.start_s
        end[rows] = result.end_s + group.radio.delay
    return start, end


def _radio_energy(
    scenario: Scenario,
    workload: Workload,
    bits: np.ndarray,
    up_start: np.ndarray,
    up_end: np.ndarray,
    edge_end: np.ndarray,
) -> np.ndarray:
    """Energy the device's radio spends sending, at its own PHY rate, with any tail."""
    radio_j = np.zeros(workload.size)
    for g, group in enumerate(scenario.devices):
        rows = np.flatnonzero((workload.group == g) & (bits > 0))
        if rows.size:
            radio_j[rows] = _radio_joules(
                group.radio, workload, rows, bits, up_start, edge_end, scenario.duration
            )
    return radio_j


def _radio_joules(
    radio: RadioProfile,
    workload: Workload,
    rows: np.ndarray,
    bits: np.ndarray,
    up_start: np.ndarray,
    edge_end: np.ndarray,
    duration_s: float,
) -> np.ndarray:
    energy = radio.energy
    airtime = bits[rows] / radio.uplink
    if not isinstance(energy, PowerRadioEnergy):
        return bits[rows] * energy.tx
    sending = (energy.tx_per_bps * radio.uplink + energy.tx_base) * airtime
    if energy.tail <= 0:
        return sending
    # The radio stays in its high-power tail after sending until the next send
    # from the same device or until the tail time runs out, whichever is first.
    began = np.where(np.isnan(up_start[rows]), edge_end[rows], up_start[rows])
    order = np.lexsort((began, workload.device[rows]))
    rows, began, sending, airtime = rows[order], began[order], sending[order], airtime[order]
    finished = began + airtime
    device = workload.device[rows]
    next_start = np.append(began[1:], np.inf)
    next_start[np.append(device[1:] != device[:-1], True)] = duration_s
    tail_s = np.clip(next_start - finished, 0.0, energy.tail)
    result = np.empty_like(sending)
    result[np.argsort(order)] = sending + energy.tail_power * tail_s
    return result


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


def _drain_batteries(scenario: Scenario, workload: Workload, stage: EdgeStage) -> None:
    """Stop each battery-powered device at the request during which its battery runs out."""
    capacity = np.array(
        [np.inf if group.battery is None else group.battery for group in scenario.devices]
    )[workload.group]
    if np.isinf(capacity).all():
        return
    spent = stage.compute_j + stage.radio_j + stage.idle_j
    device = workload.device
    boundaries = np.flatnonzero(np.concatenate(([True], device[1:] != device[:-1])))
    cumulative = np.cumsum(spent)
    offset = np.repeat(
        cumulative[boundaries] - spent[boundaries], np.diff(np.append(boundaries, device.size))
    )
    empty = (cumulative - offset) > capacity
    # Once empty, a device stays empty: every later request of it is dropped too.
    empty = np.maximum.accumulate(empty.astype(np.int64) + device.astype(np.int64) * 2) % 2 == 1
    empty &= stage.drop_reason == None  # noqa: E711
    stage.drop_reason[empty] = BATTERY_EMPTY
    for column in (stage.edge_start_s, stage.edge_end_s, stage.uplink_start_s, stage.uplink_end_s):
        column[empty] = np.nan
    stage.bits[empty] = 0.0
    stage.compute_j[empty] = stage.radio_j[empty] = stage.idle_j[empty] = 0.0

"""One simulation run: workload, devices, the shared fog in SimPy, and per-request records."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import simpy
from tqdm import tqdm

from fogsim.inference import InferenceOutcomes
from fogsim.policies import Route
from fogsim.scenario.models import Scenario
from fogsim.sim import battery
from fogsim.sim.edge import BATTERY_EMPTY, EdgeStage, battery_capacity_j, run_devices
from fogsim.sim.fognet import Fog
from fogsim.sim.radio import RadioUse, radio_energy
from fogsim.sim.rng import Streams
from fogsim.sim.workload import Workload, generate_workload
from fogsim.topology import build_topology

STATUSES = ("answered_edge", "answered_cloud", "dropped", "unfinished")
PROGRESS_STEPS = 200


@dataclass
class DeviceEnergy:
    """Each request's device energy by component, and which requests found the battery empty."""

    idle_j: np.ndarray
    compute_j: np.ndarray
    radio_j: np.ndarray
    battery_empty: np.ndarray  # bool


@dataclass
class SimResult:
    """The columns of the per-request table, plus run-level statistics."""

    columns: dict[str, np.ndarray]
    links: dict[str, dict[str, float]] = field(default_factory=dict)
    cloud: dict[str, float] = field(default_factory=dict)
    events_s: float = 0.0


class AccountingError(RuntimeError):
    """A request did not end in exactly one state: a bug in fogsim, never a user error."""


def simulate(
    scenario: Scenario, outcomes: InferenceOutcomes, *, progress: bool = False
) -> SimResult:
    """Simulate ``scenario`` with the per-image ``outcomes`` of its network."""
    streams = Streams(scenario.seed)
    workload = generate_workload(scenario, outcomes.labels, streams)
    decision = scenario.policy.route(outcomes, workload.image_id)
    edge = run_devices(scenario, workload, outcomes, decision)

    offloaded = np.flatnonzero(edge.bits > 0)
    shared_access = np.array([g.access == "shared" for g in scenario.network.gateways])
    ready = np.where(shared_access[workload.gateway], edge.edge_end_s, edge.uplink_end_s)
    offloaded = offloaded[ready[offloaded] < scenario.duration]
    offloaded = offloaded[np.argsort(ready[offloaded], kind="stable")]
    raw = bool((decision.route == Route.RAW).any())
    cloud_macs = sum((outcomes.full_ops if raw else outcomes.cloud_ops).values())

    graph = build_topology(scenario)
    env = simpy.Environment()
    fog = Fog(env, scenario, graph, float(cloud_macs), workload.size)
    env.process(
        fog.feed(ready[offloaded], offloaded, workload.gateway[offloaded], edge.bits[offloaded])
    )
    started = time.perf_counter()
    _run_until(env, scenario.duration, progress)
    events_s = time.perf_counter() - started

    answer_bits = scenario.network.answer_size
    delays = _answer_delays(scenario, fog, answer_bits)
    cloud_back = fog.times.cloud_end_s + delays[workload.group, workload.gateway]
    energy = _device_energy(scenario, workload, edge, fog, cloud_back)
    columns = _records(scenario, outcomes, workload, decision, edge, fog, cloud_back, energy)
    check_accounting(columns)
    links = fog.link_stats(scenario.duration)
    return SimResult(columns, links, _cloud_stats(scenario, fog), events_s)


def _cloud_stats(scenario: Scenario, fog: Fog) -> dict[str, float]:
    """Cloud counters, and its energy: each worker at full power while it runs a batch,
    at idle power otherwise, over the whole run."""
    cloud, profile = fog.cloud, scenario.cloud.profile
    worker_s = cloud.workers * scenario.duration
    busy_s = cloud.busy_time_s
    return {
        "submitted": cloud.submitted,
        "completed": cloud.completed,
        "dropped": cloud.dropped,
        "peak_queue": cloud.peak_queue,
        "busy_worker_s": busy_s,
        "utilisation": busy_s / worker_s,
        "energy_j": profile.power * busy_s + profile.idle_power * (worker_s - busy_s),
    }


def _device_energy(
    scenario: Scenario, workload: Workload, edge: EdgeStage, fog: Fog, cloud_back: np.ndarray
) -> DeviceEnergy:
    """Radio energy from when the radio was really busy, then each battery spent in order."""
    use = _radio_use(scenario, workload, edge, fog, cloud_back)
    radio_j = radio_energy(scenario, workload.group, workload.device, use)
    parts = [edge.idle_j.copy(), edge.compute_j.copy(), radio_j]
    empty = battery.drain(battery_capacity_j(scenario, workload), workload.device, parts)
    return DeviceEnergy(*parts, empty | (edge.drop_reason == BATTERY_EMPTY))


def _radio_use(
    scenario: Scenario, workload: Workload, edge: EdgeStage, fog: Fog, cloud_back: np.ndarray
) -> RadioUse:
    """Sending on the device's own link or the shared cell; receiving the answer's last hop."""
    times = fog.times
    on_cell = ~np.isnan(times.cell_tx_end_s)
    tx_start = np.where(on_cell, times.cell_tx_start_s, edge.uplink_start_s)
    tx_end = np.where(on_cell, times.cell_tx_end_s, edge.uplink_sent_s)
    # The answer's last hop is the device's own downlink, or the shared cell.
    last_bps = np.array([[g.radio.downlink] * len(fog.hops) for g in scenario.devices])
    for j, cell in fog.cells.items():
        last_bps[:, j] = cell.bandwidth_bps
    answer_bits = scenario.network.answer_size
    received = cloud_back <= scenario.duration
    rx_end = np.where(received, cloud_back, np.nan)
    rx_start = rx_end - answer_bits / last_bps[workload.group, workload.gateway]
    bits_received = np.where(received, answer_bits, 0.0)
    return RadioUse(tx_start, tx_end, edge.bits, rx_start, rx_end, bits_received)


def _run_until(env: simpy.Environment, duration_s: float, progress: bool) -> None:
    if not progress:
        env.run(until=duration_s)
        return
    with tqdm(total=duration_s, unit="sim s", desc="simulating", leave=False) as bar:
        for step in range(1, PROGRESS_STEPS + 1):
            env.run(until=duration_s * step / PROGRESS_STEPS)
            bar.update(env.now - bar.n)


def _answer_delays(scenario: Scenario, fog: Fog, answer_bits: float) -> np.ndarray:
    """Time for an answer to travel back, per (device group, gateway): delays plus serialisation.

    The answer retraces the request's hops (a shared cell included); a gateway with
    dedicated access adds the device's own radio. Answers are a few hundred bits,
    so the downlink is modelled without contention.
    """
    delays = np.zeros((len(scenario.devices), len(scenario.network.gateways)))
    for j, hops in enumerate(fog.hops):
        shared = sum(hop.link.delay_s + answer_bits / hop.link.bandwidth_bps for hop in hops)
        for g, group in enumerate(scenario.devices):
            radio = (
                0.0 if j in fog.cells else group.radio.delay + answer_bits / group.radio.downlink
            )
            delays[g, j] = shared + radio
    return delays


def _records(
    scenario, outcomes, workload, decision, edge, fog: Fog, cloud_back, energy: DeviceEnergy
) -> dict[str, np.ndarray]:
    n = workload.size
    times = fog.times
    image = workload.image_id
    n_exits = outcomes.exit_pred.shape[1]
    to_edge = decision.route == Route.EDGE
    edge_dropped = (edge.drop_reason != None) | energy.battery_empty  # noqa: E711
    answer = np.where(to_edge, edge.edge_end_s, cloud_back)
    exit_used = np.where(to_edge, decision.exit_index, -1).astype(np.int16)
    prediction = np.where(
        to_edge,
        outcomes.exit_pred[image, np.clip(decision.exit_index, 0, n_exits - 1)],
        outcomes.cloud_pred[image],
    )
    reason = np.where(edge_dropped, edge.drop_reason, "").astype(object)
    reason[times.cloud_dropped] = "cloud_queue_full"
    # A device whose battery ran out answers nothing more, whatever else befell the request.
    reason[energy.battery_empty] = BATTERY_EMPTY
    status = np.full(n, "unfinished", dtype=object)
    done = ~edge_dropped & ~times.cloud_dropped & (answer <= scenario.duration)
    status[done & to_edge] = "answered_edge"
    status[done & ~to_edge] = "answered_cloud"
    status[edge_dropped | times.cloud_dropped] = "dropped"
    late = np.zeros(n, dtype=bool)

    deadline = scenario.deadline
    if deadline is not None:
        due = workload.arrival_s + deadline.latency
        late = (status != "dropped") & ~(answer <= due) & (due <= scenario.duration)
        fallback = late & (decision.route == Route.FEATURES) & (edge.edge_end_s <= due)
        if deadline.fallback == "edge" and fallback.any():
            last = n_exits - 1
            answer[fallback] = due[fallback]
            prediction[fallback] = outcomes.exit_pred[image[fallback], last]
            exit_used[fallback] = last
            status[fallback] = "answered_edge"
            reason[fallback] = "deadline_fallback"
        else:
            fallback[:] = False
        reason[late & ~fallback & (status != "unfinished")] = "late"
        reason[late & ~fallback & (status == "unfinished")] = "late_unfinished"
    answered = (status == "answered_edge") | (status == "answered_cloud")
    answer[~answered] = np.nan
    labels = outcomes.labels[image]
    group_names = np.array([g.name for g in scenario.devices], dtype=object)
    gateway_names = np.array([g.name for g in scenario.network.gateways], dtype=object)
    # The device's radio began sending on its own link, or on the shared cell.
    uplink_start = np.where(
        np.isnan(times.cell_tx_start_s), edge.uplink_start_s, times.cell_tx_start_s
    )
    return {
        "request": np.arange(n, dtype=np.int64),
        "device": workload.device,
        "group": group_names[workload.group],
        "gateway": gateway_names[workload.gateway],
        "image": image,
        "path": np.where(to_edge, "edge", "cloud").astype(object),
        "status": status,
        "reason": reason,
        "late": late,
        "exit": exit_used,
        "t_arrival_s": workload.arrival_s,
        "t_edge_start_s": edge.edge_start_s,
        "t_edge_end_s": edge.edge_end_s,
        "t_uplink_start_s": uplink_start,
        "t_uplink_end_s": np.where(np.isnan(times.cell_end_s), edge.uplink_end_s, times.cell_end_s),
        "t_backhaul_end_s": times.backhaul_end_s,
        "t_cloud_link_end_s": times.cloud_link_end_s,
        "t_cloud_start_s": times.cloud_start_s,
        "t_cloud_end_s": times.cloud_end_s,
        "t_answer_s": answer,
        "wait_device_s": edge.edge_start_s - workload.arrival_s,
        "wait_uplink_s": uplink_start - edge.edge_end_s,
        "wait_cloud_s": times.cloud_start_s - times.cloud_enqueue_s,
        "batch_size": times.batch_size,
        "bytes_sent": edge.bits / 8.0,
        "latency_s": answer - workload.arrival_s,
        "energy_compute_j": energy.compute_j,
        "energy_radio_j": energy.radio_j,
        "energy_idle_j": energy.idle_j,
        "energy_j": energy.compute_j + energy.radio_j + energy.idle_j,
        "prediction": np.where(answered, prediction, -1).astype(np.int16),
        "label": labels.astype(np.int16),
        "correct": answered & (prediction == labels),
    }


def check_accounting(columns: dict[str, np.ndarray]) -> None:
    """Every request ends in exactly one state, consistently with its other columns."""
    status = columns["status"]
    counts = {s: int((status == s).sum()) for s in STATUSES}
    if sum(counts.values()) != status.size:
        raise AccountingError(f"requests in no known state: {counts} of {status.size}")
    answered = (status == "answered_edge") | (status == "answered_cloud")
    latency = columns["latency_s"]
    if not (np.isfinite(latency[answered]).all() and (latency[answered] >= 0).all()):
        raise AccountingError("an answered request has no valid latency")
    if np.isfinite(latency[~answered]).any():
        raise AccountingError("a request that was not answered has a latency")
    dropped = status == "dropped"
    if (columns["reason"][dropped] == "").any():
        raise AccountingError("a dropped request has no reason")
    if columns["correct"][~answered].any():
        raise AccountingError("a request that was not answered counts as correct")

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
from fogsim.sim.edge import run_devices
from fogsim.sim.fognet import Fog
from fogsim.sim.rng import Streams
from fogsim.sim.workload import generate_workload
from fogsim.topology import build_topology

STATUSES = ("answered_edge", "answered_cloud", "dropped", "unfinished")
PROGRESS_STEPS = 200


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

    columns = _records(scenario, outcomes, workload, decision, edge, fog)
    check_accounting(columns)
    cloud = {
        "submitted": fog.cloud.submitted,
        "completed": fog.cloud.completed,
        "dropped": fog.cloud.dropped,
        "peak_queue": fog.cloud.peak_queue,
    }
    return SimResult(columns, fog.link_stats(scenario.duration), cloud, events_s)


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
        shared = sum(link.delay_s + answer_bits / link.bandwidth_bps for link, _ in hops)
        for g, group in enumerate(scenario.devices):
            radio = (
                0.0 if j in fog.cells else group.radio.delay + answer_bits / group.radio.downlink
            )
            delays[g, j] = shared + radio
    return delays


def _records(scenario, outcomes, workload, decision, edge, fog: Fog) -> dict[str, np.ndarray]:
    n = workload.size
    times = fog.times
    image = workload.image_id
    n_exits = outcomes.exit_pred.shape[1]
    to_edge = decision.route == Route.EDGE
    edge_dropped = edge.drop_reason != None  # noqa: E711
    cloud_back = (
        times.cloud_end_s
        + _answer_delays(scenario, fog, scenario.network.answer_size)[
            workload.group, workload.gateway
        ]
    )
    answer = np.where(to_edge, edge.edge_end_s, cloud_back)
    exit_used = np.where(to_edge, decision.exit_index, -1).astype(np.int16)
    prediction = np.where(
        to_edge,
        outcomes.exit_pred[image, np.clip(decision.exit_index, 0, n_exits - 1)],
        outcomes.cloud_pred[image],
    )
    reason = np.where(edge_dropped, edge.drop_reason, "").astype(object)
    reason[times.cloud_dropped] = "cloud_queue_full"
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
    energy = edge.compute_j + edge.radio_j + edge.idle_j
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
        "t_uplink_start_s": edge.uplink_start_s,
        "t_uplink_end_s": np.where(np.isnan(times.cell_end_s), edge.uplink_end_s, times.cell_end_s),
        "t_backhaul_end_s": times.backhaul_end_s,
        "t_cloud_link_end_s": times.cloud_link_end_s,
        "t_cloud_start_s": times.cloud_start_s,
        "t_cloud_end_s": times.cloud_end_s,
        "t_answer_s": answer,
        "wait_device_s": edge.edge_start_s - workload.arrival_s,
        "wait_uplink_s": edge.uplink_start_s - edge.edge_end_s,
        "wait_cloud_s": times.cloud_start_s - times.cloud_enqueue_s,
        "batch_size": times.batch_size,
        "bytes_sent": edge.bits / 8.0,
        "latency_s": answer - workload.arrival_s,
        "energy_compute_j": edge.compute_j,
        "energy_radio_j": edge.radio_j,
        "energy_idle_j": edge.idle_j,
        "energy_j": energy,
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

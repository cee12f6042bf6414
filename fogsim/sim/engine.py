"""One simulation run: workload, devices, the shared stages (in SimPy, or solved by the
fast engine where it is exact), and per-request records."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import simpy
from tqdm import tqdm

from fogsim.inference import InferenceOutcomes
from fogsim.policies import AdaptiveExit, Tier
from fogsim.scenario.models import Scenario
from fogsim.sim import battery, handover
from fogsim.sim.adaptive import AdaptiveRun
from fogsim.sim.assignment import Assignment, RunDesign, refuse_with_a_plan
from fogsim.sim.device import BATTERY_EMPTY, DeviceStage, battery_capacity_j, run_devices
from fogsim.sim.fast import FastEngineUnsupported, NotExact, why_not_fast
from fogsim.sim.handover import InFlight
from fogsim.sim.mobility import MobilityRun
from fogsim.sim.ordering import stable_argsort, unique_inverse
from fogsim.sim.radio import RadioUse, radio_energy, resend_energy
from fogsim.sim.records import (  # noqa: F401  (STATUSES, AccountingError: their old home)
    STATUSES,
    AccountingError,
    Journeys,
    StageTable,
    check_accounting,
    request_columns,
)
from fogsim.sim.rng import Streams
from fogsim.sim.routes import Kinds, Planner
from fogsim.sim.shared import SharedStages, server_energy_j
from fogsim.sim.shares import (
    MergedStages,
    Share,
    hand_back_times,
    merge_journeys,
    merged_columns,
    stage_table,
    subset_workload,
    whole_device_stage,
)
from fogsim.sim.workload import Workload, generate_workload
from fogsim.topology import Topology

if TYPE_CHECKING:
    from fogsim.sim.drift import DriftPlan
    from fogsim.sim.fast.stages import FastStages

PROGRESS_STEPS = 200
ENGINES = ("simpy", "fast", "auto")  # auto: fast where it is exact, else SimPy


@dataclass
class DeviceEnergy:
    """Each request's device energy by component, and which requests found the battery empty."""

    idle_j: np.ndarray
    compute_j: np.ndarray
    radio_j: np.ndarray
    battery_empty: np.ndarray  # bool


@dataclass
class SimResult:
    """The columns of the per-request table, the stages, plus run-level statistics."""

    columns: dict[str, np.ndarray]
    links: dict[str, dict[str, float]] = field(default_factory=dict)
    cloud: dict[str, float] = field(default_factory=dict)
    events_s: float = 0.0
    servers: dict[str, dict[str, float | str]] = field(default_factory=dict)
    stages: StageTable | MergedStages | None = None
    drift: dict[str, object] | None = None  # fogsim.sim.drift.DriftPlan.summary
    engine: str = "simpy"  # which engine solved the shared stages
    mobility: dict[str, object] | None = None  # fogsim.sim.mobility.MobilityRun.summary

    def summary_extra(self) -> dict[str, object]:
        """What the run adds to its summary beyond the per-request table."""
        extra = {
            "links": self.links,
            "cloud": self.cloud,
            "servers": self.servers,
            "engine": self.engine,
        }
        if self.mobility is not None:
            extra["mobility"] = self.mobility
        return extra if self.drift is None else {**extra, "drift": self.drift}


def simulate(
    scenario: Scenario,
    outcomes: InferenceOutcomes | Assignment,
    *,
    progress: bool = False,
    engine: str = "auto",
) -> SimResult:
    """Simulate ``scenario`` with the per-image ``outcomes`` of its network, which every
    device runs under the scenario's policy; or with an ``Assignment``, a design per device.

    ``engine`` solves the shared stages: ``simpy`` (the reference), ``fast`` (exact where
    routes are feed-forward and resources steady; an error elsewhere) or ``auto`` (fast
    where it applies, SimPy otherwise). Both give identical results.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    assignment = (
        outcomes
        if isinstance(outcomes, Assignment)
        else Assignment.single(outcomes, scenario.policy)
    )
    if assignment.planned:
        refuse_with_a_plan(scenario)
    streams = Streams(scenario.seed)
    workload = generate_workload(scenario, assignment.labels, streams)
    moving = MobilityRun(scenario, workload, streams) if scenario.mobility else None
    if moving is not None:
        workload = moving.workload  # each request leaves through its device's gateway then
    # Drift, mobility and the adaptive policy act on the one network every device runs.
    drift = None
    if scenario.drift:  # real inference and training (torch), cached
        from fogsim.sim.drift import prepare_drift

        drift = prepare_drift(scenario, assignment.designs[0].outcomes, workload)
    if drift is not None:
        workload = drift.workload
        assignment = Assignment.single(drift.outcomes, scenario.policy)
    topology = Topology(scenario)
    shares = [
        _device_share(scenario, workload, assignment.designs[d], rows, moving, drift)
        for d, rows in assignment.shares(workload)
    ]
    if moving is not None and moving.retry:
        # Mobility runs one design: its one share is every request, each now through the
        # gateway its send went to.
        workload = shares[0].workload

    planners = [Planner(topology, share.kinds) for share in shares]

    def plan_journeys(s: int, device: DeviceStage, kind: np.ndarray) -> Journeys:
        share = shares[s]
        return _plan_journeys(scenario, share.workload, share.outcomes, device, planners[s], kind)

    adaptive = None
    if isinstance(scenario.policy, AdaptiveExit):
        only = shares[0]
        adaptive = AdaptiveRun(scenario, only.outcomes, only.kinds, workload, only.decision)
        only.journeys = adaptive.journeys(
            lambda device, kind: plan_journeys(0, device, kind), only.device, only.kind
        )
    else:
        for s, share in enumerate(shares):
            share.journeys = plan_journeys(s, share.device, share.kind)
    journeys, position = merge_journeys(shares)

    started = time.perf_counter()
    # With no request on the shared stages there is nothing to solve: auto spares the
    # fast engine's start-up (numba) and runs the empty SimPy network.
    idle = engine == "auto" and journeys.rows.size == 0
    net = None
    if engine != "simpy" and not idle:
        net = _solve_fast(scenario, topology, journeys, engine)
    used = "fast" if net is not None else "simpy"
    in_flight = None
    if net is None:
        net, in_flight = _run_simpy(
            scenario, topology, workload, shares, journeys, adaptive, progress, moving,
            planners[0],
        )  # fmt: skip
    events_s = time.perf_counter() - started
    journeys.times = net.times
    if adaptive is not None:
        journeys = shares[0].journeys = adaptive.settle(shares[0].device, journeys)
    if in_flight is not None:
        assert moving is not None
        moving.settle(in_flight, journeys)  # each request's last gateway, re-sends, losses
    hand_back_times(shares, journeys, position)
    for planned in {id(j): j for j in (journeys, *(s.journeys for s in shares))}.values():
        planned.let_go_of_inputs()
        planned.times.compact_enqueues()

    device = whole_device_stage(shares, workload.size)
    answer_s = _answer_at_device(scenario, topology, workload, journeys)
    if moving is not None:
        answer_s = moving.receive(workload, answer_s)
    server_j = journeys.server_energy_j(scenario, workload.size)
    # Nothing reads these again: each batch's shares of work (a column per stage) and
    # when answers reached the gateway. The devices' energy and the table are computed
    # with them gone.
    every = (journeys.times, *(s.journeys.times for s in shares))
    for times in {id(t): t for t in every}.values():
        times.release("share", "answer_at_gateway_s")
    del every
    resend_j = moving.resend_energy_j(workload, device.bits) if moving is not None else None
    energy = _device_energy(scenario, workload, device, journeys, answer_s, resend_j)
    device.uplink_sent_s = np.empty(0)  # read by the radio's energy only
    lost_s = moving.lost_s if moving is not None else None
    # Before the per-request table, which writes into the device stage (see StageTable).
    stages = stage_table(scenario, shares)
    columns = merged_columns(
        scenario, shares, answer_s, energy, server_j, assignment.planned, lost_s
    )
    stages.take_bytes_sent(columns["bytes_sent"])
    if drift is not None:
        drift.finish_columns(columns)
    if moving is not None:
        moving.finish_columns(columns)
    check_accounting(columns)
    servers = _server_stats(scenario, net)
    return SimResult(
        columns,
        net.link_stats(scenario.duration),
        _cloud_total(servers, net, scenario.duration),
        events_s,
        servers,
        stages,
        drift.summary() if drift is not None else None,
        used,
        moving.summary(columns) if moving is not None else None,
    )


def _device_share(
    scenario: Scenario,
    workload: Workload,
    design: RunDesign,
    rows: np.ndarray,
    moving: MobilityRun | None,
    drift: DriftPlan | None,
) -> Share:
    """One design's requests (``rows``), routed by its policy and computed on its devices."""
    mine = subset_workload(workload, rows)
    outcomes = design.outcomes
    decision = design.policy.route(outcomes, mine.image_id)
    kinds = Kinds(outcomes)
    if moving is not None:
        decision = moving.decide(decision, kinds)
    kind = kinds.of(decision)
    device = run_devices(scenario, mine, outcomes, kinds, kind, drift.jobs if drift else None)
    if moving is not None:
        mine = moving.cut_off(mine, device)  # retry: each through the gateway it is sent to
    return Share(rows, design.name, outcomes, mine, decision, kinds, kind, device)


def _run_simpy(
    scenario: Scenario,
    topology: Topology,
    workload: Workload,
    shares: list[Share],
    journeys: Journeys,
    adaptive: AdaptiveRun | None,
    progress: bool,
    moving: MobilityRun | None,
    planner: Planner,
) -> tuple[SharedStages, InFlight | None]:
    """The shared stages, run in SimPy until the end of the run; with mobility's
    ``in_flight: retry``, what its handovers did to the requests on them."""
    env = simpy.Environment()
    in_flight = None
    width = journeys.width
    if moving is not None and moving.retry:
        # Mobility runs one design: its one share is every request.
        width = handover.width(moving, workload, journeys, planner, shares[0].kind)
    net = SharedStages(env, scenario, topology, journeys.rows.size, width)
    if moving is not None and moving.retry:
        hop_s = _last_hop_s(scenario, topology)
        in_flight = InFlight(net, moving, workload, journeys, planner, shares[0].kind, hop_s)
        net.mobile = in_flight
    if adaptive is not None:
        hop = _last_hop_s(scenario, topology)[workload.group, workload.gateway][journeys.rows]
        radios = None if moving is None else moving.radios()
        env.process(adaptive.feed(net, journeys, hop, radios))
    else:
        resend_s = None
        if scenario.recovery is not None:
            # A retry leaves the device as the first attempt did: over its own radio
            # (sending and propagation, without waiting for its other requests), or on
            # the shared cell. (Recovery runs one design: its one share is every request.)
            rows, device = journeys.rows, shares[0].device
            resend_s = np.nan_to_num(device.uplink_end_s[rows] - device.uplink_start_s[rows])
        plans, plan, bits = journeys.plans, journeys.plan, journeys.bits
        env.process(net.feed(journeys.ready_s, plans, plan, bits, resend_s))
    _run_until(env, scenario.duration, progress)
    return net, in_flight


def _solve_fast(
    scenario: Scenario, topology: Topology, journeys: Journeys, engine: str
) -> FastStages | None:
    """The shared stages solved by the fast engine, or None where only SimPy is exact
    (``engine="fast"`` then raises, naming why)."""
    reason = why_not_fast(scenario, topology)
    if reason is None:
        from fogsim.sim.fast.stages import FastStages  # numba: only where it is needed

        net = FastStages(scenario, topology, journeys)
        try:
            net.solve()
            return net
        except NotExact as exc:
            reason = str(exc)
    if engine == "fast":
        raise FastEngineUnsupported(
            f"--engine fast cannot simulate {scenario.name!r} exactly: {reason}; "
            "use --engine simpy (or auto, which falls back to SimPy by itself)"
        )
    return None


def _plan_journeys(
    scenario: Scenario,
    workload: Workload,
    outcomes: InferenceOutcomes,
    device: DeviceStage,
    planner: Planner,
    kind: np.ndarray,
) -> Journeys:
    """The requests that enter the shared stages, in the order they get there, and their plans.

    A request is ready for the shared stages once it reached its gateway (its own radio)
    or once its device finished computing (a shared cell is itself a shared stage).
    Requests ready after the end of the run never enter: they count as unfinished.
    """
    gateways = scenario.network.gateway_nodes
    on_cell = np.array([g.access == "shared" and g.cell is not None for g in gateways])
    # Read only, never written: one of the device's own columns where every gateway is alike.
    if not on_cell.any():
        ready = device.uplink_end_s
    elif on_cell.all():
        ready = device.compute_end_s
    else:
        ready = np.where(on_cell[workload.gateway], device.compute_end_s, device.uplink_end_s)
    rows = np.flatnonzero(device.bits > 0)
    ready_s = ready[rows]
    sending = ready_s < scenario.duration
    rows, ready_s = rows[sending], ready_s[sending]
    del sending
    n_gateways, n_kinds = len(gateways), planner.kinds.count
    # Read in request order (in step through memory), then put in the order of readiness.
    combo = (workload.group[rows].astype(np.int64) * n_gateways + workload.gateway[rows]) * n_kinds
    combo += kind[rows]
    order = stable_argsort(ready_s)
    rows, ready_s, combo = rows[order], ready_s[order], combo[order]
    del order
    unique, plan = unique_inverse(combo)
    plans = []
    for code in unique.tolist():
        group_gateway, request_kind = divmod(code, n_kinds)
        group, gateway = divmod(group_gateway, n_gateways)
        plans.append(planner.plan(group, gateway, request_kind))
    if not scenario.fog:  # no plan can carry a fog payload: the device's alone
        bits = device.bits[rows][:, np.newaxis]
    else:
        fog_bytes = outcomes.compressed_fog_feature_bytes
        assert fog_bytes is not None  # InferenceOutcomes fills it in (zeros without a fog part)
        fog_bits = fog_bytes[workload.image_id[rows]].astype(np.float64) * 8.0
        bits = np.column_stack([device.bits[rows], fog_bits])
    # Request indices as int32 below 2**31 requests: 4 bytes a row, kept to the end.
    index = np.int32 if workload.size <= np.iinfo(np.int32).max else np.int64
    return Journeys(rows.astype(index), ready_s, plans, plan.astype(np.int32), bits)


def _answer_at_device(
    scenario: Scenario, topology: Topology, workload: Workload, journeys: Journeys
) -> np.ndarray:
    """When each answer reached its device: at the gateway, then the last hop without
    contention (the device's own downlink, or the shared cell)."""
    last_hop = _last_hop_s(scenario, topology)
    answer = np.full(workload.size, np.nan)
    rows = journeys.rows
    # Each request's last hop read in request order (in step), then picked by row.
    hop = last_hop[workload.group, workload.gateway][rows]
    answer[rows] = journeys.times.answer_at_gateway_s + hop
    return answer


def _last_hop_s(scenario: Scenario, topology: Topology) -> np.ndarray:
    """Seconds an answer takes from the gateway to the device, by (device group, gateway)."""
    answer_bits = scenario.network.answer_size
    last_hop = np.zeros((len(scenario.devices), len(topology.gateways)))
    if not scenario.network.reply:
        return last_hop  # the request is complete at its server: nothing comes back
    for j, gateway in enumerate(topology.gateways):
        for g, group in enumerate(scenario.devices):
            if gateway.access == "shared" and gateway.cell is not None:
                last_hop[g, j] = gateway.cell.delay + answer_bits / gateway.cell.bandwidth
            else:
                last_hop[g, j] = group.radio.delay + answer_bits / group.radio.downlink
    return last_hop


def _server_stats(
    scenario: Scenario, net: SharedStages | FastStages
) -> dict[str, dict[str, float | str]]:
    specs = {**{f.name: f for f in scenario.fog}, **{c.name: c for c in scenario.clouds}}
    stats: dict[str, dict[str, float | str]] = {}
    for name, server in net.servers.items():
        tier = "fog" if net.tiers[name] == Tier.FOG else "cloud"
        stats[name] = {"tier": tier, **server_energy_j(server, specs[name], scenario.duration)}
    return stats


def _cloud_total(
    servers: dict[str, dict[str, float | str]],
    net: SharedStages | FastStages,
    duration_s: float,
) -> dict[str, float]:
    """The clouds together, under the summary's ``cloud`` key (one cloud: its own figures)."""
    clouds = {name: s for name, s in servers.items() if s["tier"] == "cloud"}
    total: dict[str, float] = {
        key: sum(float(s[key]) for s in clouds.values()) for key in ("busy_worker_s", "energy_j")
    }
    worker_s = sum(net.servers[name].workers for name in clouds) * duration_s
    return {
        **{k: int(sum(int(s[k]) for s in clouds.values())) for k in ("submitted", "completed")},
        "dropped": int(sum(int(s["dropped"]) for s in clouds.values())),
        "peak_queue": max(int(s["peak_queue"]) for s in clouds.values()),
        "busy_worker_s": total["busy_worker_s"],
        "utilisation": total["busy_worker_s"] / worker_s if worker_s else 0.0,
        "energy_j": total["energy_j"],
    }


def _device_energy(
    scenario: Scenario,
    workload: Workload,
    device: DeviceStage,
    journeys: Journeys,
    answer_s: np.ndarray,
    resend_j: np.ndarray | None = None,
) -> DeviceEnergy:
    """Radio energy from when the radio was really busy, then each battery spent in order;
    ``resend_j``: what re-sends at handovers cost on top (mobility's retry)."""
    use = _radio_use(scenario, workload, device, journeys, answer_s)
    radio_j = radio_energy(scenario, workload.group, workload.device, use)
    if journeys.times.retries.any():
        retries = journeys.per_row(journeys.times.retries, workload.size, 0)
        radio_j += resend_energy(scenario, workload.group, use, retries)
    if resend_j is not None:
        radio_j += resend_j
    # Spent in place: nothing reads the device stage's energies after this (two columns
    # of the run's size not copied).
    parts = [device.idle_j, device.compute_j, radio_j]
    empty = battery.drain(battery_capacity_j(scenario, workload), workload.device, parts)
    return DeviceEnergy(*parts, empty | (device.drop_reason == BATTERY_EMPTY))


def _radio_use(
    scenario: Scenario,
    workload: Workload,
    device: DeviceStage,
    journeys: Journeys,
    answer_s: np.ndarray,
) -> RadioUse:
    """Sending on the device's own link or the shared cell; receiving the answer's last hop."""
    if np.isnan(journeys.times.cell_sent_s).all():  # no request sent on a shared cell
        # Read only, while the radio's energy is counted: the device's own columns.
        tx_start, tx_end = device.uplink_start_s, device.uplink_sent_s
    else:
        cell_start, cell_sent = journeys.cell_times(workload.size)
        on_cell = ~np.isnan(cell_sent)
        tx_start = np.where(on_cell, cell_start, device.uplink_start_s)
        tx_end = np.where(on_cell, cell_sent, device.uplink_sent_s)
    gateways = scenario.network.gateway_nodes
    # The answer's last hop is the device's own downlink, or the shared cell.
    last_bps = np.array([[g.radio.downlink] * len(gateways) for g in scenario.devices])
    for j, gateway in enumerate(gateways):
        if gateway.access == "shared" and gateway.cell is not None:
            last_bps[:, j] = gateway.cell.bandwidth
    answer_bits = scenario.network.answer_size
    received = (answer_s <= scenario.duration) & scenario.network.reply
    rx_end = np.where(received, answer_s, np.nan)
    rx_start = rx_end - answer_bits / last_bps[workload.group, workload.gateway]
    bits_received = np.where(received, answer_bits, 0.0)
    return RadioUse(tx_start, tx_end, device.bits, rx_start, rx_end, bits_received)


def _run_until(env: simpy.Environment, duration_s: float, progress: bool) -> None:
    if not progress:
        env.run(until=duration_s)
        return
    with tqdm(total=duration_s, unit="sim s", desc="simulating", leave=False) as bar:
        for step in range(1, PROGRESS_STEPS + 1):
            # The last stop is the duration itself, not duration * 200 / 200, which can
            # round away from it: with or without a bar, the run ends at the same instant.
            until = duration_s if step == PROGRESS_STEPS else duration_s * step / PROGRESS_STEPS
            env.run(until=until)
            bar.update(env.now - bar.n)

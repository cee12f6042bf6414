"""A run in which each device runs its planned design (``plan:`` in the scenario).

One workload, as the scenario's own run draws it. Each design's devices are its own: their
requests are routed by its checkpoint at its threshold, computed on the devices
(``fogsim.sim.device``, one design's devices at a time, since no two designs share a
device), and then all designs' requests meet in one SimPy run of the shared links and
servers, so that queueing and contention count across designs. The per-request table and
the stages are the engine's, per design, put back in request order, with a ``design``
column beside them.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import simpy

from fogsim.inference import InferenceOutcomes
from fogsim.optimize.designs import DesignSpace, policy
from fogsim.scenario.models import Scenario
from fogsim.sim import engine
from fogsim.sim.device import DeviceStage, run_devices
from fogsim.sim.records import Journeys, StageTable, check_accounting, request_columns
from fogsim.sim.rng import Streams
from fogsim.sim.routes import Kinds, Planner
from fogsim.sim.shared import SharedStages, StageTimes
from fogsim.sim.workload import Workload, generate_workload
from fogsim.topology import Topology


@dataclass
class _Part:
    """One design's requests (``rows`` of the whole workload) and what the engine made of them."""

    rows: np.ndarray
    design: int
    outcomes: InferenceOutcomes
    workload: Workload
    kinds: Kinds
    kind: np.ndarray
    decision: object
    device: DeviceStage
    journeys: Journeys
    offset: int = 0  # where its journeys' rows start in the merged journeys


def simulate_plan(
    scenario: Scenario, space: DesignSpace, planned: np.ndarray, *, progress: bool = False
) -> engine.SimResult:
    """Simulate ``scenario`` with device i running design ``planned[i]`` of ``space``."""
    streams = Streams(scenario.seed)
    workload = generate_workload(scenario, space.models[0].labels, streams)
    topology = Topology(scenario)
    design_of = planned[workload.device]
    parts = [
        _part(scenario, space, topology, workload, int(d), np.flatnonzero(design_of == d))
        for d in np.unique(design_of)
    ]
    merged, order = _merge(parts)
    env = simpy.Environment()
    net = SharedStages(env, scenario, topology, merged.rows.size, merged.width)
    env.process(net.feed(merged.ready_s, merged.plans, merged.plan, merged.bits))
    started = time.perf_counter()
    engine._run_until(env, scenario.duration, progress)
    events_s = time.perf_counter() - started
    merged.times = net.times
    for part, rows in zip(parts, _split(parts, order), strict=True):
        part.journeys.times = _subset_times(net.times, rows)

    device = _whole_device_stage(parts, workload.size)
    answer_s = engine._answer_at_device(scenario, topology, workload, merged)
    energy = engine._device_energy(scenario, workload, device, merged, answer_s)
    server_j = merged.server_energy_j(scenario, workload.size)
    columns = _columns(scenario, space, parts, answer_s, energy, server_j)
    check_accounting(columns)
    servers = engine._server_stats(scenario, net)
    return engine.SimResult(
        columns,
        net.link_stats(scenario.duration),
        engine._cloud_total(servers, net, scenario.duration),
        events_s,
        servers,
        _PlanStages(scenario, parts),
    )


def _part(
    scenario: Scenario,
    space: DesignSpace,
    topology: Topology,
    workload: Workload,
    design: int,
    rows: np.ndarray,
) -> _Part:
    outcomes = space.models[space.designs[design].model]
    mine = _subset_workload(workload, rows)
    decision = policy(space.designs[design].threshold).route(outcomes, mine.image_id)
    kinds = Kinds(outcomes)
    kind = kinds.of(decision)
    device = run_devices(scenario, mine, outcomes, kinds, kind)
    planner = Planner(topology, kinds)
    journeys = engine._plan_journeys(scenario, mine, outcomes, device, planner, kind)
    return _Part(rows, design, outcomes, mine, kinds, kind, decision, device, journeys)


def _subset_workload(workload: Workload, rows: np.ndarray) -> Workload:
    per_request = ("device", "group", "gateway", "arrival_s", "image_id")
    return dataclasses.replace(
        workload, **{name: getattr(workload, name)[rows] for name in per_request}
    )


def _merge(parts: list[_Part]) -> tuple[Journeys, np.ndarray]:
    """All designs' journeys as one, in the order requests reach the shared stages; and the
    merged position of each part's rows (parts concatenated)."""
    plans, rows, ready, plan, bits = [], [], [], [], []
    for part in parts:
        j = part.journeys
        plan.append(j.plan + len(plans))
        plans += j.plans
        rows.append(part.rows[j.rows])
        ready.append(j.ready_s)
        bits.append(j.bits)
    ready_all = np.concatenate(ready)
    order = np.argsort(ready_all, kind="stable")
    merged = Journeys(
        np.concatenate(rows)[order],
        ready_all[order],
        plans,
        np.concatenate(plan)[order],
        np.concatenate(bits)[order] if bits else np.zeros((0, 2)),
    )
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    return merged, position


def _split(parts: list[_Part], position: np.ndarray) -> list[np.ndarray]:
    """Each part's rows in the merged journeys."""
    out, start = [], 0
    for part in parts:
        size = part.journeys.rows.size
        out.append(position[start : start + size])
        start += size
    return out


def _subset_times(times: StageTimes, rows: np.ndarray) -> StageTimes:
    return StageTimes(**{f.name: getattr(times, f.name)[rows] for f in dataclasses.fields(times)})


def _whole_device_stage(parts: list[_Part], n: int) -> DeviceStage:
    """The parts' device stages scattered back over every request."""
    columns = {}
    for f in dataclasses.fields(DeviceStage):
        sample = getattr(parts[0].device, f.name)
        whole = np.full(n, None if sample.dtype == object else np.nan, dtype=sample.dtype)
        for part in parts:
            whole[part.rows] = getattr(part.device, f.name)
        columns[f.name] = whole
    return DeviceStage(**columns)


def _columns(
    scenario: Scenario,
    space: DesignSpace,
    parts: list[_Part],
    answer_s: np.ndarray,
    energy: engine.DeviceEnergy,
    server_j: dict[int, np.ndarray],
) -> dict[str, np.ndarray]:
    """The engine's per-request columns of each part, in request order, with its design."""
    blocks = []
    for part in parts:
        rows = part.rows
        part_energy = engine.DeviceEnergy(
            *(getattr(energy, f.name)[rows] for f in dataclasses.fields(engine.DeviceEnergy))
        )
        block = request_columns(
            scenario,
            part.outcomes,
            part.workload,
            part.decision,
            part.kinds,
            part.kind,
            part.device,
            part.journeys,
            answer_s[rows],
            part_energy,
            {tier: joules[rows] for tier, joules in server_j.items()},
        )
        block["request"] = rows.astype(np.int64)
        block["design"] = np.full(rows.size, space.designs[part.design].name, dtype=object)
        blocks.append(block)
    order = np.argsort(np.concatenate([p.rows for p in parts]), kind="stable")
    return {key: np.concatenate([b[key] for b in blocks])[order] for key in blocks[0]}


class _PlanStages:
    """The stages of every part, as one long table (``fogsim.sim.records.StageTable``)."""

    def __init__(self, scenario: Scenario, parts: list[_Part]) -> None:
        self._tables = [
            (p.rows, StageTable(scenario, p.workload, p.kind, p.kinds, p.device, p.journeys))
            for p in parts
        ]

    def columns(self) -> tuple[dict[str, np.ndarray], list[str]]:
        names: list[str] = []
        blocks = []
        for rows, table in self._tables:
            columns, own = table.columns()
            codes = np.array([_code(names, name) for name in own], dtype=np.int32)
            columns["request"] = rows[columns["request"]]
            columns["at"] = codes[columns["at"]] if codes.size else columns["at"]
            blocks.append(columns)
        merged = {key: np.concatenate([b[key] for b in blocks]) for key in blocks[0]}
        order = np.lexsort((merged["stage"], merged["request"]))
        return {key: value[order] for key, value in merged.items()}, names


def _code(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name)

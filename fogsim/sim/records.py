"""What a run records: the journeys through the shared stages, the per-request columns,
the long table of stages, and the accounting check that every request ends in one state."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from fogsim.inference import InferenceOutcomes
from fogsim.policies import TIERS, Decision, Tier
from fogsim.scenario.models import Scenario
from fogsim.sim.device import BATTERY_EMPTY, DeviceStage
from fogsim.sim.movement import OUT_OF_COVERAGE
from fogsim.sim.routes import Kinds, Plan
from fogsim.sim.shared import DROP_REASONS, FAILURES, RETRIES_EXHAUSTED, StageTimes
from fogsim.sim.workload import Workload

if TYPE_CHECKING:
    from fogsim.sim.engine import DeviceEnergy

STATUSES = ("answered_edge", "answered_fog", "answered_cloud", "dropped", "unfinished")
ANSWERED = STATUSES[:3]
FAILURE_FALLBACK = "failure_fallback"
STAGE_COLUMNS = ("request", "stage", "kind", "at", "bytes", "t_enqueue_s", "t_start_s", "t_end_s")


class AccountingError(RuntimeError):
    """A request did not end in exactly one state: a bug in fogsim, never a user error."""


@dataclass
class Journeys:
    """The requests that entered the shared stages (rows), their plans and their times."""

    rows: np.ndarray  # request index of each row
    ready_s: np.ndarray
    plans: list[Plan]
    plan: np.ndarray  # plan index of each row
    bits: np.ndarray  # (rows, 2): the device's payload and the fog's
    times: StageTimes = field(default=None)  # type: ignore[assignment]  # set after the run

    def only(self, keep: np.ndarray) -> Journeys:
        """The journeys of the rows ``keep`` marks, with their times."""
        times = StageTimes(*(getattr(self.times, f.name)[keep] for f in fields(StageTimes)))
        return Journeys(
            self.rows[keep], self.ready_s[keep], self.plans, self.plan[keep], self.bits[keep],
            times,
        )

    @property
    def width(self) -> int:
        """The most shared stages any plan has."""
        return max((len(plan.steps) for plan in self.plans), default=1)

    def compute_stage(self, tier: int) -> np.ndarray:
        """Per row, the index of its compute stage at ``tier``, or -1."""
        per_plan = [
            next((j for j, s in enumerate(p.steps) if s.kind == "compute" and s.tier == tier), -1)
            for p in self.plans
        ]
        return np.array(per_plan, dtype=np.int64)[self.plan] if self.plans else self.plan

    def per_request(
        self, grid: np.ndarray, stage: np.ndarray, n: int, fill: float = np.nan
    ) -> np.ndarray:
        """Spread one value per row (``grid[row, stage[row]]``) over all ``n`` requests."""
        out = np.full(n, fill, dtype=grid.dtype)
        has = stage >= 0
        out[self.rows[has]] = grid[np.flatnonzero(has), stage[has]]
        return out

    def cell_times(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per request, when its radio began and ended sending on a shared cell (NaN if not)."""
        start, sent = np.full(n, np.nan), np.full(n, np.nan)
        on_cell = ~np.isnan(self.times.cell_sent_s)
        start[self.rows[on_cell]] = self.times.start_s[on_cell, 0]
        sent[self.rows[on_cell]] = self.times.cell_sent_s[on_cell]
        return start, sent

    def server_name(self, tier: int, n: int) -> np.ndarray:
        """Per request, the server of ``tier`` on its route (empty where none)."""
        names = np.array(
            [
                next((s.name for s in p.steps if s.kind == "compute" and s.tier == tier), "")
                for p in self.plans
            ],
            dtype=object,
        )
        out = np.full(n, "", dtype=object)
        out[self.rows] = names[self.plan]
        return out

    def server_energy_j(self, scenario: Scenario, n: int) -> dict[int, np.ndarray]:
        """Per tier, each request's share of the active energy of the batches it was in."""
        power = {f.name: f.profile.power for f in scenario.fog}
        power.update({c.name: c.profile.power for c in scenario.clouds})
        energy = {Tier.FOG: np.zeros(n), Tier.CLOUD: np.zeros(n)}
        times = self.times
        for p, plan in enumerate(self.plans):
            rows = np.flatnonzero(self.plan == p)
            for j, step in enumerate(plan.steps):
                if step.kind != "compute":
                    continue
                busy = times.end_s[rows, j] - times.start_s[rows, j]
                joules = np.nan_to_num(power[step.name] * busy * times.share[rows, j])
                energy[step.tier][self.rows[rows]] += joules
        return energy

    def dropped_reason(self, n: int) -> np.ndarray:
        out = np.full(n, "", dtype=object)
        out[self.rows] = np.array(DROP_REASONS, dtype=object)[self.times.dropped]
        return out

    def per_row(self, values: np.ndarray, n: int, fill: object) -> np.ndarray:
        """Spread one value per row over all ``n`` requests (``fill`` where none)."""
        out = np.full(n, fill, dtype=values.dtype)
        out[self.rows] = values
        return out

    def failure(self, n: int) -> np.ndarray:
        """Per request, the worst a failure did to it (see ``FAILURES``; empty: nothing)."""
        out = np.full(n, "", dtype=object)
        out[self.rows] = np.array(FAILURES, dtype=object)[self.times.failure]
        return out


def request_columns(
    scenario: Scenario,
    outcomes: InferenceOutcomes,
    workload: Workload,
    decision: Decision,
    kinds: Kinds,
    kind: np.ndarray,
    device: DeviceStage,
    journeys: Journeys,
    answer_s: np.ndarray,
    energy: DeviceEnergy,
    server_j: dict[int, np.ndarray],
    lost_s: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The per-request table: who sent what, where it went, when, at what cost, and how it ended.

    ``lost_s`` (per request, NaN where not): when a moving device, out of coverage, lost the
    request in flight (``in_flight: retry``); it answers then with its last exit where it ran
    its part, else the request is dropped (reason ``out_of_coverage``)."""
    n = workload.size
    image = workload.image_id
    times = journeys.times
    tier = decision.tier.astype(np.int64)
    on_device = tier == Tier.DEVICE
    device_dropped = (device.drop_reason != None) | energy.battery_empty  # noqa: E711
    server_reason = journeys.dropped_reason(n)
    answer = np.where(on_device, device.compute_end_s, answer_s)
    n_exits = kinds.n_exits
    exit_used = decision.exit_index.astype(np.int16).copy()
    prediction = np.where(
        exit_used >= 0,
        outcomes.exit_pred[image, np.clip(exit_used, 0, n_exits - 1)],
        outcomes.cloud_pred[image],
    )
    device_exits = np.flatnonzero(kinds.exit_tier == Tier.DEVICE)
    gave_up = journeys.per_row(times.gave_up_s, n, np.nan)
    recovery = scenario.recovery
    rescued = np.zeros(n, dtype=bool)
    if recovery is not None and recovery.then == "fallback" and device_exits.size:
        # Every attempt failed: the device answers with its own last exit, where it ran
        # its part (a raw image leaves nothing on the device to answer with).
        rescued = (server_reason == RETRIES_EXHAUSTED) & ~decision.raw
        server_reason[rescued] = ""
        last = int(device_exits[-1])
        answer[rescued] = gave_up[rescued]
        prediction[rescued] = outcomes.exit_pred[image[rescued], last]
        exit_used[rescued] = last
    lost = np.zeros(n, dtype=bool) if lost_s is None else ~np.isnan(lost_s)
    lost &= ~device_dropped
    stand_in = lost & ~decision.raw & (device_exits.size > 0)
    if stand_in.any():
        last = int(device_exits[-1])
        answer[stand_in] = lost_s[stand_in]  # type: ignore[index]
        prediction[stand_in] = outcomes.exit_pred[image[stand_in], last]
        exit_used[stand_in] = last
    server_dropped = (server_reason != "") | (lost & ~stand_in)
    reason = np.where(device_dropped, device.drop_reason, "").astype(object)
    reason[server_dropped] = server_reason[server_dropped]
    reason[lost] = OUT_OF_COVERAGE
    reason[rescued] = FAILURE_FALLBACK
    # A device whose battery ran out answers nothing more, whatever else befell the request.
    reason[energy.battery_empty] = BATTERY_EMPTY
    dropped = device_dropped | server_dropped
    done = ~dropped & (answer <= scenario.duration)
    answered_tier = np.where(done, tier, -1)
    answered_tier[done & (rescued | stand_in)] = Tier.DEVICE
    late = np.zeros(n, dtype=bool)

    deadline = scenario.deadline
    if deadline is not None:
        due = workload.arrival_s + deadline.latency
        late = ~dropped & ~(answer <= due) & (due <= scenario.duration)
        # A fallback needs the device's part run whole: its features were sent on.
        ran_device_part = ~on_device & ~decision.raw & (device.compute_end_s <= due)
        fallback = late & ran_device_part & (device_exits.size > 0)
        if deadline.fallback in ("device", "edge") and fallback.any():
            last = int(device_exits[-1])
            answer[fallback] = due[fallback]
            prediction[fallback] = outcomes.exit_pred[image[fallback], last]
            exit_used[fallback] = last
            answered_tier[fallback] = Tier.DEVICE
            reason[fallback] = "deadline_fallback"
        else:
            fallback[:] = False
        unfinished = answered_tier < 0
        reason[late & ~fallback & ~unfinished & ~rescued & ~stand_in] = "late"
        reason[late & ~fallback & unfinished & ~dropped] = "late_unfinished"
    answered = answered_tier >= 0
    status = np.full(n, "unfinished", dtype=object)
    for t, name in enumerate(ANSWERED):
        status[answered_tier == t] = name
    status[dropped] = "dropped"
    answer[~answered] = np.nan
    latency = answer - workload.arrival_s
    labels = outcomes.labels[image]
    group_names = np.array([g.name for g in scenario.devices], dtype=object)
    gateway_names = np.array([g.name for g in scenario.network.gateway_nodes], dtype=object)
    tier_names = np.array([*TIERS, ""], dtype=object)
    fog_stage, cloud_stage = journeys.compute_stage(Tier.FOG), journeys.compute_stage(Tier.CLOUD)
    cloud_enqueue = journeys.per_request(times.enqueue_s, cloud_stage, n)
    cloud_start = journeys.per_request(times.start_s, cloud_stage, n)
    cloud_end = journeys.per_request(times.end_s, cloud_stage, n)
    fog_enqueue = journeys.per_request(times.enqueue_s, fog_stage, n)
    fog_start = journeys.per_request(times.start_s, fog_stage, n)
    fog_end = journeys.per_request(times.end_s, fog_stage, n)
    cell_start, _ = journeys.cell_times(n)
    # The device's radio began sending on its own link, or on the shared cell.
    uplink_start = np.where(np.isnan(cell_start), device.uplink_start_s, cell_start)
    cell_stage = np.where(np.isnan(journeys.times.cell_sent_s), -1, 0)
    cell_end = journeys.per_request(times.end_s, cell_stage, n)
    device_s = np.where(
        answered, np.fmin(device.compute_end_s, answer) - workload.arrival_s, np.nan
    )
    fog_s = _time_in(fog_enqueue, fog_end, answer, answered)
    cloud_s = _time_in(cloud_enqueue, cloud_end, answer, answered)
    fog_j, cloud_j = server_j[Tier.FOG], server_j[Tier.CLOUD]
    return {
        "request": np.arange(n, dtype=np.int64),
        "device": workload.device,
        "group": group_names[workload.group],
        "gateway": gateway_names[workload.gateway],
        "fog": journeys.server_name(Tier.FOG, n),
        "image": image,
        "path": np.array(["edge", "fog", "cloud"], dtype=object)[tier],
        "answered_at": tier_names[answered_tier],
        "status": status,
        "reason": reason,
        "late": late,
        "exit": exit_used,
        "t_arrival_s": workload.arrival_s,
        "t_edge_start_s": device.compute_start_s,
        "t_edge_end_s": device.compute_end_s,
        "t_uplink_start_s": uplink_start,
        "t_uplink_end_s": np.where(np.isnan(cell_end), device.uplink_end_s, cell_end),
        "t_fog_start_s": fog_start,
        "t_fog_end_s": fog_end,
        "t_cloud_start_s": cloud_start,
        "t_cloud_end_s": cloud_end,
        "t_answer_s": answer,
        "wait_device_s": device.compute_start_s - workload.arrival_s,
        "wait_uplink_s": uplink_start - device.compute_end_s,
        "wait_fog_s": fog_start - fog_enqueue,
        "wait_cloud_s": cloud_start - cloud_enqueue,
        "batch_size": journeys.per_request(times.batch_size, cloud_stage, n, 0).astype(np.int32),
        "bytes_sent": device.bits / 8.0,
        "latency_s": latency,
        "latency_device_s": device_s,
        "latency_network_s": latency - device_s - fog_s - cloud_s,
        "latency_fog_s": fog_s,
        "latency_cloud_s": cloud_s,
        "energy_compute_j": energy.compute_j,
        "energy_radio_j": energy.radio_j,
        "energy_idle_j": energy.idle_j,
        "energy_j": energy.compute_j + energy.radio_j + energy.idle_j,
        "energy_fog_j": fog_j,
        "energy_cloud_j": cloud_j,
        "prediction": np.where(answered, prediction, -1).astype(np.int16),
        "label": labels.astype(np.int16),
        "correct": answered & (prediction == labels),
        "retries": journeys.per_row(times.retries, n, 0),
        "failure": journeys.failure(n),
        "handovers": np.zeros(n, dtype=np.int16),  # counted by fogsim.sim.mobility
    }


def _time_in(enqueue: np.ndarray, end: np.ndarray, answer: np.ndarray, answered: np.ndarray):
    """Time an answered request spent at a server before its answer (0 where it never went)."""
    spent = np.clip(np.fmin(end, answer) - enqueue, 0.0, None)
    return np.where(answered, np.nan_to_num(spent), np.nan)


class StageTable:
    """Every stage of every request, in long format (``STAGE_COLUMNS``), built on demand."""

    def __init__(
        self,
        scenario: Scenario,
        workload: Workload,
        kind: np.ndarray,
        kinds: Kinds,
        device: DeviceStage,
        journeys: Journeys,
    ) -> None:
        self._parts = (scenario, workload, kind, kinds, device, journeys)

    def columns(self) -> tuple[dict[str, np.ndarray], list[str]]:
        """The columns, ``at`` as codes into the returned names; sorted by request, stage."""
        scenario, workload, kind, kinds, device, journeys = self._parts
        n = workload.size
        names: list[str] = [f"device:{g.name}" for g in scenario.devices]
        gateways = scenario.network.gateway_nodes
        radio_code = len(names)
        names += [f"radio:{g.name}" for g in gateways]
        blocks: list[dict[str, np.ndarray]] = []
        computed = ~np.isnan(device.compute_end_s)
        runs = np.array([bool(kinds.device_ops(k)) for k in range(kinds.count)])[kind]
        rows = np.flatnonzero(computed & runs)
        first = np.zeros(n, np.int64)
        blocks.append(
            _block(
                rows,
                first[rows],
                0,
                workload.group[rows],
                0.0,
                workload.arrival_s[rows],
                device.compute_start_s[rows],
                device.compute_end_s[rows],
            )
        )
        first[rows] += 1
        rows = np.flatnonzero(~np.isnan(device.uplink_start_s))
        blocks.append(
            _block(
                rows,
                first[rows],
                1,
                radio_code + workload.gateway[rows],
                device.bits[rows] / 8.0,
                device.compute_end_s[rows],
                device.uplink_start_s[rows],
                device.uplink_end_s[rows],
            )
        )
        first[rows] += 1
        times = journeys.times
        base = first[journeys.rows]
        for p, plan in enumerate(journeys.plans):
            plan_rows = np.flatnonzero(journeys.plan == p)
            for j, step in enumerate(plan.steps):
                entered = plan_rows[~np.isnan(times.enqueue_s[plan_rows, j])]
                if step.name not in names:
                    names.append(step.name)
                transfer = step.kind == "transfer"
                size = journeys.bits[entered, step.payload] / 8.0 if transfer else 0.0
                blocks.append(
                    _block(
                        journeys.rows[entered],
                        base[entered] + j,
                        int(transfer),
                        names.index(step.name),
                        size,
                        times.enqueue_s[entered, j],
                        times.start_s[entered, j],
                        times.end_s[entered, j],
                    )
                )
        # Column by column, each part let go once joined and each joined column once
        # sorted: at most one column is held twice (millions of stages, 60 bytes each).
        columns = {}
        for key in list(blocks[0]):
            columns[key] = np.concatenate([block.pop(key) for block in blocks])
        order = np.lexsort((columns["stage"], columns["request"]))
        for key in list(columns):
            columns[key] = columns.pop(key)[order]
        return columns, names


def _block(request, stage, transfer, at, size, enqueue, start, end) -> dict[str, np.ndarray]:
    m = request.size
    return {
        "request": request.astype(np.int64),
        "stage": np.asarray(stage, dtype=np.int16),
        "kind": np.full(m, transfer, dtype=np.int8),
        "at": np.broadcast_to(np.asarray(at, dtype=np.int32), (m,)).copy(),
        "bytes": np.broadcast_to(np.asarray(size, dtype=np.float64), (m,)).copy(),
        "t_enqueue_s": np.asarray(enqueue, dtype=np.float64),
        "t_start_s": np.asarray(start, dtype=np.float64),
        "t_end_s": np.asarray(end, dtype=np.float64),
    }


def check_accounting(columns: dict[str, np.ndarray]) -> None:
    """Every request ends in exactly one state, consistently with its other columns."""
    status = columns["status"]
    counts = {s: int((status == s).sum()) for s in STATUSES}
    if sum(counts.values()) != status.size:
        raise AccountingError(f"requests in no known state: {counts} of {status.size}")
    answered = np.isin(status, ANSWERED)
    latency = columns["latency_s"]
    if not (np.isfinite(latency[answered]).all() and (latency[answered] >= 0).all()):
        raise AccountingError("an answered request has no valid latency")
    if np.isfinite(latency[~answered]).any():
        raise AccountingError("a request that was not answered has a latency")
    at = columns["answered_at"]
    for state, tier in zip(ANSWERED, TIERS, strict=True):
        if (at[status == state] != tier).any():
            raise AccountingError(f"a request {state} says it was answered elsewhere")
    if (at[~answered] != "").any():
        raise AccountingError("a request that was not answered names a tier")
    dropped = status == "dropped"
    if (columns["reason"][dropped] == "").any():
        raise AccountingError("a dropped request has no reason")
    if columns["correct"][~answered].any():
        raise AccountingError("a request that was not answered counts as correct")
    _check_failures(columns, answered)


def _check_failures(columns: dict[str, np.ndarray], answered: np.ndarray) -> None:
    """Reasons that come from failures agree with what failures did to the request."""
    reason, failure = columns["reason"], columns["failure"]
    if (columns["retries"] < 0).any():
        raise AccountingError("a request has a negative number of retries")
    if (failure[reason == "work_lost"] != "lost").any():
        raise AccountingError("a request dropped for lost work has no lost work")
    for ended in (RETRIES_EXHAUSTED, FAILURE_FALLBACK):
        if not np.isin(failure[reason == ended], ("timed_out", "lost")).all():
            raise AccountingError(f"a request ended as {ended} without a failed attempt")
    if (columns["answered_at"][reason == FAILURE_FALLBACK] != "device").any():
        raise AccountingError("a failure fallback was not answered on the device")
    if (~answered & (reason == FAILURE_FALLBACK)).any():
        raise AccountingError("a failure fallback was not answered")

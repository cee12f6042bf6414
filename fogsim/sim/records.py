"""What a run records: the journeys through the shared stages, the per-request columns,
the long table of stages, and the accounting check that every request ends in one state."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numba
import numpy as np
import pandas as pd

from fogsim.inference import InferenceOutcomes
from fogsim.policies import TIERS, Decision, Tier
from fogsim.scenario.models import Scenario
from fogsim.sim.device import BATTERY_EMPTY, DEVICE_QUEUE_FULL, DeviceStage
from fogsim.sim.movement import OUT_OF_COVERAGE
from fogsim.sim.routes import FOG_PAYLOAD, Kinds, Plan, Step
from fogsim.sim.shared import DROP_REASONS, FAILURES, RETRIES_EXHAUSTED, StageTimes
from fogsim.sim.workload import Workload

if TYPE_CHECKING:
    from fogsim.sim.engine import DeviceEnergy

STATUSES = ("answered_edge", "answered_fog", "answered_cloud", "dropped", "unfinished")
ANSWERED = STATUSES[:3]
FAILURE_FALLBACK = "failure_fallback"
PATHS = ("edge", "fog", "cloud")  # by the policy's tier
# Every reason a request can end with, "" first and the shared stages' in their order, so
# their codes are the same; a device reason not named here is added by the run that meets it.
REASONS = (
    *DROP_REASONS,
    DEVICE_QUEUE_FULL,
    BATTERY_EMPTY,
    OUT_OF_COVERAGE,
    FAILURE_FALLBACK,
    "deadline_fallback",
    "late",
    "late_unfinished",
)
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
    bits: np.ndarray  # (rows, 2): the device's payload and the fog's (none: one column)
    times: StageTimes = field(default=None)  # type: ignore[assignment]  # set after the run

    def only(self, keep: np.ndarray) -> Journeys:
        """The journeys of the rows ``keep`` marks, with their times."""
        times = StageTimes(*(getattr(self.times, f.name)[keep] for f in fields(StageTimes)))
        return Journeys(
            self.rows[keep],
            self.ready_s[keep],
            self.plans,
            self.plan[keep],
            self.bits[keep],
            times,
        )

    def let_go_of_inputs(self) -> None:
        """Once the shared stages are run: let go of the ready times (read by the feeders
        only) and of the fog's payloads where no plan carries them (8 bytes a row each)."""
        self.ready_s = np.empty(0)
        carried = any(step.payload == FOG_PAYLOAD for plan in self.plans for step in plan.steps)
        if not carried and self.bits.shape[1] > FOG_PAYLOAD:
            self.bits = self.bits[:, :FOG_PAYLOAD].copy()

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
        return np.array(per_plan, dtype=np.int16)[self.plan] if self.plans else self.plan

    def per_request(
        self, grid: np.ndarray, stage: np.ndarray, n: int, fill: float = np.nan
    ) -> np.ndarray:
        """Spread one value per row (``grid[row, stage[row]]``) over all ``n`` requests."""
        out = np.full(n, fill, dtype=grid.dtype)
        _spread(out, self.rows, grid, stage)
        return out

    def enqueue_per_request(self, stage: np.ndarray, n: int) -> np.ndarray:
        """``per_request`` of the enqueue times (``StageTimes.enqueue_at``)."""
        out = np.full(n, np.nan)
        has = stage >= 0
        out[self.rows[has]] = self.times.enqueue_at(np.flatnonzero(has), stage[has])
        return out

    def cell_start(self, n: int) -> np.ndarray:
        """Per request, when its radio began sending on a shared cell (NaN if not)."""
        start = np.full(n, np.nan)
        on_cell = ~np.isnan(self.times.cell_sent_s)
        start[self.rows[on_cell]] = self.times.start_s[on_cell, 0]
        return start

    def cell_times(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per request, when its radio began and ended sending on a shared cell (NaN if not)."""
        start, sent = np.full(n, np.nan), np.full(n, np.nan)
        on_cell = ~np.isnan(self.times.cell_sent_s)
        start[self.rows[on_cell]] = self.times.start_s[on_cell, 0]
        sent[self.rows[on_cell]] = self.times.cell_sent_s[on_cell]
        return start, sent

    def server_names(self, tier: int) -> list[str]:
        """The servers of ``tier`` on the plans' routes, then "" (codes: ``server_code``)."""
        steps = (s for p in self.plans for s in p.steps)
        names = {s.name: None for s in steps if s.kind == "compute" and s.tier == tier}
        return [*names, ""]

    def server_code(self, tier: int, n: int) -> np.ndarray:
        """Per request, its server of ``tier`` as an index into ``server_names`` (last: none)."""
        names = self.server_names(tier)
        mine = [
            [s.name for s in p.steps if s.kind == "compute" and s.tier == tier] for p in self.plans
        ]
        per_plan = [names.index(found[0]) if found else len(names) - 1 for found in mine]
        out = np.full(n, len(names) - 1, dtype=np.int16)
        out[self.rows] = np.array(per_plan, dtype=np.int16)[self.plan]
        return out

    def server_energy_j(self, scenario: Scenario, n: int) -> dict[int, np.ndarray]:
        """Per tier, each request's share of the active energy of the batches it was in."""
        power = {f.name: f.profile.power for f in scenario.fog}
        power.update({c.name: c.profile.power for c in scenario.clouds})
        energy = {Tier.FOG: np.zeros(n), Tier.CLOUD: np.zeros(n)}
        times = self.times
        # A stage at a time, every plan at once (one pass over the rows, not one a plan);
        # each request's joules still added in its plan's order.
        for j in range(self.width if self.plans else 0):
            steps = [p.steps[j] if j < len(p.steps) else None for p in self.plans]
            for tier, joules_of in energy.items():
                computes = [s is not None and s.kind == "compute" and s.tier == tier for s in steps]
                if not any(computes):
                    continue
                watts = np.array(
                    [power[s.name] if c else 0.0 for s, c in zip(steps, computes, strict=True)]
                )
                here = np.array(computes)[self.plan]
                # Every row computes here (one server's run): its columns read whole, in step.
                rows: slice | np.ndarray = slice(None) if here.all() else np.flatnonzero(here)
                del here
                busy = times.end_s[rows, j] - times.start_s[rows, j]
                joules = np.nan_to_num(watts[self.plan[rows]] * busy * times.share[rows, j])
                joules_of[self.rows[rows]] += joules
        return energy

    def per_row(self, values: np.ndarray, n: int, fill: object) -> np.ndarray:
        """Spread one value per row over all ``n`` requests (``fill`` where none)."""
        out = np.full(n, fill, dtype=values.dtype)
        out[self.rows] = values
        return out


@numba.njit(cache=True)
def _spread(out: np.ndarray, rows: np.ndarray, grid: np.ndarray, stage: np.ndarray) -> None:
    """``out[rows[i]] = grid[i, stage[i]]`` wherever ``stage[i] >= 0``, in one pass (numpy
    would take a pass over every row for each stage, and two boolean gathers)."""
    for i in range(rows.size):
        j = stage[i]
        if j >= 0:
            out[rows[i]] = grid[i, j]


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
    """The per-request table, but for its ``request`` ids (``fogsim.sim.shares`` adds them):
    who sent what, where it went, when, at what cost, and how it ended.

    It is the last reader of much of the run, and copies none of it it need not (8 bytes a
    request each): ``answer_s`` (when each answer reached the device, NaN where none) becomes
    the ``t_answer_s`` column, written in place; the device's uplink times become the uplink
    columns where no request used both its own link and a shared cell (``_either``); and the
    device's ``bits`` and ``drop_reason`` are let go once read.
    ``lost_s`` (per request, NaN where not): when a moving device, out of coverage, lost the
    request in flight (``in_flight: retry``); it answers then with its last exit where it ran
    its part, else the request is dropped (reason ``out_of_coverage``)."""
    n = workload.size
    image = workload.image_id
    times = journeys.times
    tier = decision.tier  # int8
    on_device = tier == Tier.DEVICE
    device_dropped = (device.drop_reason != None) | energy.battery_empty  # noqa: E711
    # Reasons as codes into REASONS, whose first entries are DROP_REASONS.
    server_reason = journeys.per_row(times.dropped, n, 0)
    answer = answer_s
    np.copyto(answer, device.compute_end_s, where=on_device)
    n_exits = kinds.n_exits
    exit_used = decision.exit_index.astype(np.int16).copy()
    # Classes as int32 (the tables are per image, small): 4 bytes a request, not 8.
    exit_pred = outcomes.exit_pred.astype(np.int32)
    prediction = outcomes.cloud_pred.astype(np.int32)[image]
    has_exit = np.flatnonzero(exit_used >= 0)
    prediction[has_exit] = exit_pred[image[has_exit], np.clip(exit_used[has_exit], 0, n_exits - 1)]
    del has_exit
    device_exits = np.flatnonzero(kinds.exit_tier == Tier.DEVICE)
    recovery = scenario.recovery
    rescued = np.zeros(n, dtype=bool)
    if recovery is not None and recovery.then == "fallback" and device_exits.size:
        # Every attempt failed: the device answers with its own last exit, where it ran
        # its part (a raw image leaves nothing on the device to answer with).
        rescued = (server_reason == DROP_REASONS.index(RETRIES_EXHAUSTED)) & ~decision.raw
        server_reason[rescued] = 0
        last = int(device_exits[-1])
        answer[rescued] = journeys.per_row(times.gave_up_s, n, np.nan)[rescued]
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
    server_dropped = (server_reason != 0) | (lost & ~stand_in)
    reasons = list(REASONS)
    reason = _device_reasons(device.drop_reason, reasons)
    reason[server_dropped] = server_reason[server_dropped]
    reason[lost] = reasons.index(OUT_OF_COVERAGE)
    reason[rescued] = reasons.index(FAILURE_FALLBACK)
    # A device whose battery ran out answers nothing more, whatever else befell the request.
    reason[energy.battery_empty] = reasons.index(BATTERY_EMPTY)
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
            reason[fallback] = reasons.index("deadline_fallback")
        else:
            fallback[:] = False
        unfinished = answered_tier < 0
        reason[late & ~fallback & ~unfinished & ~rescued & ~stand_in] = reasons.index("late")
        reason[late & ~fallback & unfinished & ~dropped] = reasons.index("late_unfinished")
    answered = answered_tier >= 0
    # STATUSES: the three answered states by tier, then dropped, then unfinished.
    status = np.where(answered, answered_tier, STATUSES.index("unfinished")).astype(np.int8)
    status[dropped] = STATUSES.index("dropped")
    answer[~answered] = np.nan
    latency = answer - workload.arrival_s
    labels = outcomes.labels.astype(np.int32)[image]
    correct = answered & (prediction == labels)
    prediction = np.where(answered, prediction, -1).astype(np.int16)
    labels = labels.astype(np.int16)
    # The last reads of these masks (a byte a request each): gone before the times' columns.
    del on_device, device_dropped, rescued, lost, stand_in, server_dropped, dropped, done
    del server_reason
    gateway_names = [g.name for g in scenario.network.gateway_nodes]
    # Each temporary goes as soon as it is used: millions of requests, 8 bytes each.
    cloud_stage = journeys.compute_stage(Tier.CLOUD)
    cloud_enqueue = journeys.enqueue_per_request(cloud_stage, n)
    cloud_start = journeys.per_request(times.start_s, cloud_stage, n)
    cloud_end = journeys.per_request(times.end_s, cloud_stage, n)
    batch_size = journeys.per_request(times.batch_size, cloud_stage, n, 0).astype(np.int32)
    del cloud_stage
    fog_stage = journeys.compute_stage(Tier.FOG)
    fog_enqueue = journeys.enqueue_per_request(fog_stage, n)
    fog_start = journeys.per_request(times.start_s, fog_stage, n)
    fog_end = journeys.per_request(times.end_s, fog_stage, n)
    del fog_stage
    cell_start = journeys.cell_start(n)
    # The device's radio began sending on its own link, or on the shared cell.
    uplink_start = _either(device.uplink_start_s, cell_start)
    del cell_start
    cell_stage = np.where(np.isnan(journeys.times.cell_sent_s), -1, 0).astype(np.int8)
    cell_end = journeys.per_request(times.end_s, cell_stage, n)
    del cell_stage
    # The last reads of these: let them go before the table's last columns are made (the
    # stage table reads only the stages' times).
    times.release("batch_size", "cell_sent_s", "gave_up_s")
    uplink_end = _either(device.uplink_end_s, cell_end)
    del cell_end
    device_s = np.fmin(device.compute_end_s, answer)
    device_s -= workload.arrival_s
    device_s[~answered] = np.nan
    fog_s = _time_in(fog_enqueue, fog_end, answer, answered)
    wait_fog = fog_start - fog_enqueue
    del fog_enqueue
    cloud_s = _time_in(cloud_enqueue, cloud_end, answer, answered)
    wait_cloud = cloud_start - cloud_enqueue
    del cloud_enqueue
    # Left to right, as latency - device_s - fog_s - cloud_s: the same sums, no temporaries.
    network_s = latency - device_s
    network_s -= fog_s
    network_s -= cloud_s
    bytes_sent = device.bits / 8.0
    # The last reads of these (the stage table takes its sizes from bytes_sent).
    device.bits = device.drop_reason = np.empty(0)
    energy_j = energy.compute_j + energy.radio_j
    energy_j += energy.idle_j
    fog_j, cloud_j = server_j[Tier.FOG], server_j[Tier.CLOUD]
    return {
        "device": workload.device,
        "group": labels_of(workload.group, [g.name for g in scenario.devices]),
        # Mobility names "" the gateway of a request sent out of coverage.
        "gateway": labels_of(workload.gateway, [*gateway_names, ""]),
        "fog": labels_of(journeys.server_code(Tier.FOG, n), journeys.server_names(Tier.FOG)),
        "image": image,
        "path": labels_of(tier, list(PATHS)),
        # -1 (not answered) is the last name: ""
        "answered_at": labels_of(np.where(answered, answered_tier, len(TIERS)), [*TIERS, ""]),
        "status": labels_of(status, list(STATUSES)),
        "reason": labels_of(reason, reasons),
        "late": late,
        "exit": exit_used,
        "t_arrival_s": workload.arrival_s,
        "t_edge_start_s": device.compute_start_s,
        "t_edge_end_s": device.compute_end_s,
        "t_uplink_start_s": uplink_start,
        "t_uplink_end_s": uplink_end,
        "t_fog_start_s": fog_start,
        "t_fog_end_s": fog_end,
        "t_cloud_start_s": cloud_start,
        "t_cloud_end_s": cloud_end,
        "t_answer_s": answer,
        "wait_device_s": device.compute_start_s - workload.arrival_s,
        "wait_uplink_s": uplink_start - device.compute_end_s,
        "wait_fog_s": wait_fog,
        "wait_cloud_s": wait_cloud,
        "batch_size": batch_size,
        "bytes_sent": bytes_sent,
        "latency_s": latency,
        "latency_device_s": device_s,
        "latency_network_s": network_s,
        "latency_fog_s": fog_s,
        "latency_cloud_s": cloud_s,
        "energy_compute_j": energy.compute_j,
        "energy_radio_j": energy.radio_j,
        "energy_idle_j": energy.idle_j,
        "energy_j": energy_j,
        "energy_fog_j": fog_j,
        "energy_cloud_j": cloud_j,
        "prediction": prediction,
        "label": labels,
        "correct": correct,
        "retries": journeys.per_row(times.retries, n, 0),
        "failure": labels_of(journeys.per_row(times.failure, n, 0), list(FAILURES)),
        "handovers": np.zeros(n, dtype=np.int16),  # counted by fogsim.sim.mobility
    }


def labels_of(codes: np.ndarray, names: list[str]) -> pd.Categorical:
    """A text column as codes into ``names`` (one byte a request, not a pointer to a string).

    Every name is a category, used or not, so a column can be set to any of them later;
    ``fogsim.results.requests_frame`` keeps only the used ones.
    """
    return pd.Categorical.from_codes(codes, categories=names)


def _device_reasons(drop_reason: np.ndarray, reasons: list[str]) -> np.ndarray:
    """The devices' drop reasons (None: none) as codes into ``reasons`` ("" where none),
    adding any reason ``reasons`` does not name yet."""
    out = np.zeros(drop_reason.size, np.int8)
    rows = np.flatnonzero(drop_reason != None)  # noqa: E711 - elementwise, on an object array
    if rows.size:
        found = drop_reason[rows]
        reasons += [name for name in pd.unique(found) if name not in reasons]
        out[rows] = pd.Index(reasons).get_indexer(found)
    return out


def _either(own: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Per request, the time on its own radio link (``own``) or on the shared cell (``cell``,
    NaN where not). Written into ``own`` where no request has both, as none has but after a
    handover: the stage table reads ``own`` only where the radio link was used."""
    on_cell = ~np.isnan(cell)
    if (on_cell & ~np.isnan(own)).any():
        return np.where(on_cell, cell, own)
    np.copyto(own, cell, where=on_cell)
    return own


def _time_in(enqueue: np.ndarray, end: np.ndarray, answer: np.ndarray, answered: np.ndarray):
    """Time an answered request spent at a server before its answer (0 where it never went)."""
    spent = np.fmin(end, answer)
    spent -= enqueue
    np.clip(spent, 0.0, None, out=spent)
    np.nan_to_num(spent, copy=False)
    spent[~answered] = np.nan
    return spent


class StageTable:
    """Every stage of every request, in long format (``STAGE_COLUMNS``), built on demand.

    It holds only the arrays the table reads, and lets them go once the table is built (the
    table is then kept): the run's other arrays need not outlive the run. It is made before
    the per-request table, which then writes into the device's uplink times where they were
    not used (``request_columns``) and hands over the payloads' sizes (``take_bytes_sent``).
    """

    def __init__(
        self,
        scenario: Scenario,
        workload: Workload,
        kind: np.ndarray,
        kinds: Kinds,
        device: DeviceStage,
        journeys: Journeys,
    ) -> None:
        names = [f"device:{g.name}" for g in scenario.devices]
        names += [f"radio:{g.name}" for g in scenario.network.gateway_nodes]
        runs = np.array([bool(kinds.device_ops(k)) for k in range(kinds.count)])
        computed = ~np.isnan(device.compute_end_s) & runs[kind]
        uplinked = ~np.isnan(device.uplink_start_s)
        self._names, self._radio_code = names, len(scenario.devices)
        self._devices = (
            computed,
            uplinked,
            workload.group,
            workload.gateway,
            workload.arrival_s,
            device.compute_start_s,
            device.compute_end_s,
            device.uplink_start_s,
            device.uplink_end_s,
        )
        self._bytes_sent: np.ndarray | None = None
        times = journeys.times
        self._shared = (
            journeys.rows,
            journeys.plan,
            journeys.plans,
            journeys.bits,
            times,
        )
        self._built: tuple[dict[str, np.ndarray], list[str]] | None = None

    def take_bytes_sent(self, bytes_sent: np.ndarray) -> None:
        """The bytes each request's device sent (the per-request table's ``bytes_sent``)."""
        self._bytes_sent = bytes_sent

    def columns(self) -> tuple[dict[str, np.ndarray], list[str]]:
        """The columns, ``at`` as codes into the returned names; sorted by request, stage."""
        if self._built is None:
            self._built = self._build()
        columns, names = self._built
        return dict(columns), list(names)

    def chunks(self, size: int) -> Iterator[tuple[dict[str, np.ndarray], list[str]]]:
        """The rows of ``columns``, ``size`` at a time and in order (the last chunk may be
        shorter; a table with no rows is one empty chunk), each built when asked for: only
        one chunk's rows are held at once, beside the run's arrays, let go after the last."""
        if self._built is not None:
            yield from in_chunks(*self._built, size)
            return
        assert self._devices is not None and self._shared is not None
        names = list(self._names)
        depth = self._shared_depth(names)
        if depth is None:  # a shared stage entered without the one before it: sort
            yield from in_chunks(self._sorted(names), names, size)
            return
        layout = self._layout(depth)
        n = layout.offsets.size
        # Each request's row of the journeys (-1: none): a chunk's shared rows, in order.
        rows = self._shared[0]
        journey_of = np.full(n, -1, np.int32 if rows.size < 2**31 else np.int64)
        journey_of[rows] = np.arange(rows.size, dtype=journey_of.dtype)
        for lo in range(0, max(layout.total, 1), size):
            hi = min(lo + size, layout.total)
            # The requests whose rows the chunk holds, the first and last perhaps in part.
            first = int(np.searchsorted(layout.offsets, lo, side="right")) - 1
            last = int(np.searchsorted(layout.offsets, hi, side="left"))
            first, last = max(first, 0), max(last, first)
            journeys = journey_of[first:last]
            base = int(layout.offsets[first]) if n else 0
            span = _Span(first, last, journeys[journeys >= 0], base)
            columns = self._place(layout, span, names, keep=True)
            yield {key: value[lo - base : hi - base] for key, value in columns.items()}, names
            del columns  # before the next chunk is built: one chunk held at a time
        self._shared = self._devices = self._bytes_sent = None

    def _build(self) -> tuple[dict[str, np.ndarray], list[str]]:
        assert self._devices is not None and self._shared is not None
        names = list(self._names)
        # A request's stages are numbered from 0: its device's compute, its own uplink, then
        # the shared stages of its route, so a request with k stages has 0..k-1 and the
        # table sorted by (request, stage) puts each stage at its request's offset plus its
        # number: each part is written straight to its place, with no sort and no copies.
        depth = self._shared_depth(names)
        if depth is None:  # a shared stage entered without the one before it: sort
            return self._sorted(names), names
        layout = self._layout(depth)
        span = _Span(0, layout.offsets.size, None, 0)
        columns = self._place(layout, span, names, keep=False)
        self._shared = self._devices = self._bytes_sent = None
        return columns, names

    def _layout(self, depth: np.ndarray) -> _Layout:
        """Where each request's rows begin, with the stages it entered."""
        assert self._devices is not None and self._shared is not None
        computed, uplinked = self._devices[:2]
        rows = self._shared[0]
        first = computed.astype(np.int16) + uplinked
        counts = first.astype(np.int64)
        counts[rows] += depth
        offsets = np.cumsum(counts)
        total = int(offsets[-1]) if offsets.size else 0
        offsets -= counts
        return _Layout(depth, first, offsets, total)

    def _place(
        self, layout: _Layout, span: _Span, names: list[str], keep: bool
    ) -> dict[str, np.ndarray]:
        """The rows of ``span``'s requests; the stage times let go once read unless ``keep``."""
        end = layout.offsets[span.stop] if span.stop < layout.offsets.size else layout.total
        total = int(end) - span.base
        columns = {key: np.empty(total, STAGE_DTYPES[key]) for key in TIME_KEYS}
        self._place_times(columns, layout, span)
        if not keep:
            self._shared = (*self._shared[:4], None)  # the stage times (rows x stages)
        columns.update({key: np.empty(total, STAGE_DTYPES[key]) for key in PLACE_KEYS})
        self._place_places(columns, layout, span, names)
        return {key: columns[key] for key in STAGE_DTYPES}

    def _shared_places(
        self, layout: _Layout, span: _Span
    ) -> Iterator[tuple[int, Step, np.ndarray, np.ndarray, np.ndarray]]:
        """Per stage of each plan: its number, step, the rows of ``span`` that entered it
        (those whose depth passes it), their requests and their places in the span."""
        assert self._shared is not None
        rows, plan_of, plans = self._shared[:3]
        depth, first, offsets = layout.depth, layout.first, layout.offsets
        if span.journeys is not None:  # the span's rows by plan: one sort, not a pass a plan
            plan_here = plan_of[span.journeys]
            by_plan = np.argsort(plan_here, kind="stable")
            ends = np.cumsum(np.bincount(plan_here, minlength=len(plans)))
            del plan_here
        for p, plan in enumerate(plans):
            if span.journeys is None:
                plan_rows = np.flatnonzero(plan_of == p)
            else:
                plan_rows = span.journeys[by_plan[(ends[p - 1] if p else 0) : ends[p]]]
            for j, step in enumerate(plan.steps):
                entered = plan_rows[depth[plan_rows] > j]
                request = rows[entered]
                place = offsets[request] + first[request] + (j - span.base)
                yield j, step, entered, request, place

    def _place_times(self, columns: dict, layout: _Layout, span: _Span) -> None:
        """The span's times, written while the stage times are held."""
        assert self._devices is not None and self._shared is not None
        computed, uplinked, _, _, arrival_s = self._devices[:5]
        compute_start_s, compute_end_s, uplink_start_s, uplink_end_s = self._devices[5:]
        times = self._shared[4]
        enqueue, start, end = (columns[key] for key in TIME_KEYS)
        for j, _, entered, _, place in self._shared_places(layout, span):
            enqueue[place] = times.enqueue_at(entered, j)
            start[place] = times.start_s[entered, j]
            end[place] = times.end_s[entered, j]
        rows = span.requests_where(computed)
        place = layout.offsets[rows] - span.base
        enqueue[place], start[place] = arrival_s[rows], compute_start_s[rows]
        end[place] = compute_end_s[rows]
        rows = span.requests_where(uplinked)
        place = layout.offsets[rows] - span.base + computed[rows]
        enqueue[place], start[place] = compute_end_s[rows], uplink_start_s[rows]
        end[place] = uplink_end_s[rows]

    def _place_places(self, columns: dict, layout: _Layout, span: _Span, names: list[str]) -> None:
        """Each of the span's stages: its request, number, kind, place and bytes."""
        assert self._devices is not None and self._shared is not None
        assert self._bytes_sent is not None
        computed, uplinked, group, gateway = self._devices[:4]
        bits, first = self._shared[3], layout.first
        request, stage, kind, at, size = (columns[key] for key in PLACE_KEYS)
        for j, step, entered, rows, place in self._shared_places(layout, span):
            transfer = step.kind == "transfer"
            request[place], stage[place], kind[place] = rows, first[rows] + j, int(transfer)
            at[place] = names.index(step.name)
            size[place] = bits[entered, step.payload] / 8.0 if transfer else 0.0
        rows = span.requests_where(computed)
        place = layout.offsets[rows] - span.base
        request[place], stage[place], kind[place], size[place] = rows, 0, 0, 0.0
        at[place] = group[rows]
        rows = span.requests_where(uplinked)
        place = layout.offsets[rows] - span.base + computed[rows]
        request[place], stage[place], kind[place] = rows, computed[rows], 1
        at[place] = self._radio_code + gateway[rows]
        size[place] = self._bytes_sent[rows]

    def _sorted(self, names: list[str]) -> dict[str, np.ndarray]:
        """The table joined part by part, then sorted by request and stage."""
        blocks = [_block(**part) for part in self._parts(names)]
        # Column by column, each part let go once joined and each joined column once
        # sorted: at most one column is held twice (millions of stages, 40 bytes each).
        columns = {}
        for key in list(blocks[0]):
            columns[key] = np.concatenate([block.pop(key) for block in blocks])
        order = np.lexsort((columns["stage"], columns["request"]))
        for key in list(columns):
            columns[key] = columns.pop(key)[order]
        return columns

    def _shared_depth(self, names: list[str]) -> np.ndarray | None:
        """How many shared stages each row entered (None where some row entered a stage
        without the one before it); names the shared stages' places, in order."""
        assert self._shared is not None
        rows, plan_of, plans, _, times = self._shared
        depth = np.zeros(rows.size, np.int16)
        for p, plan in enumerate(plans):
            plan_rows = np.flatnonzero(plan_of == p)
            for j, step in enumerate(plan.steps):
                if step.name not in names:
                    names.append(step.name)
                entered = plan_rows[~np.isnan(times.enqueue_at(plan_rows, j))]
                if (depth[entered] != j).any():
                    return None
                depth[entered] += 1
        return depth

    def _parts(self, names: list[str]) -> Iterator[dict[str, np.ndarray | float | int]]:
        """The table's rows, a part at a time (a stage of a plan, the devices' computes,
        their uplinks), each let go once written; then the run's arrays are let go."""
        assert self._devices is not None and self._bytes_sent is not None
        computed, uplinked, group, gateway, arrival_s = self._devices[:5]
        compute_start_s, compute_end_s, uplink_start_s, uplink_end_s = self._devices[5:]
        first = computed.astype(np.int16) + uplinked
        yield from self._shared_parts(first, names)
        self._shared = None  # the largest arrays (a row per request and stage): let them go
        rows = np.flatnonzero(computed)
        yield _part(
            rows,
            0,
            0,
            group[rows],
            0.0,
            arrival_s[rows],
            compute_start_s[rows],
            compute_end_s[rows],
        )
        rows = np.flatnonzero(uplinked)
        yield _part(
            rows,
            computed[rows].astype(np.int16),
            1,
            self._radio_code + gateway[rows],
            self._bytes_sent[rows],
            compute_end_s[rows],
            uplink_start_s[rows],
            uplink_end_s[rows],
        )
        self._devices = self._bytes_sent = None

    def _shared_parts(
        self, first: np.ndarray, names: list[str]
    ) -> Iterator[dict[str, np.ndarray | float | int]]:
        assert self._shared is not None
        rows, plan_of, plans, bits, times = self._shared
        start_s, end_s = times.start_s, times.end_s
        base = first[rows]
        for p, plan in enumerate(plans):
            plan_rows = np.flatnonzero(plan_of == p)
            for j, step in enumerate(plan.steps):
                enqueue_s = times.enqueue_at(plan_rows, j)
                reached = ~np.isnan(enqueue_s)
                entered = plan_rows[reached]
                if step.name not in names:
                    names.append(step.name)
                transfer = step.kind == "transfer"
                size = bits[entered, step.payload] / 8.0 if transfer else 0.0
                yield _part(
                    rows[entered],
                    base[entered] + j,
                    int(transfer),
                    names.index(step.name),
                    size,
                    enqueue_s[reached],
                    start_s[entered, j],
                    end_s[entered, j],
                )


@dataclass
class _Layout:
    """Where the stage table's rows go: per journey row, how many shared stages it entered;
    per request, the number of its first shared stage and its first row."""

    depth: np.ndarray
    first: np.ndarray
    offsets: np.ndarray
    total: int


@dataclass
class _Span:
    """Consecutive requests (``start`` to ``stop``), their journey rows in request order
    (None: every row, in the journeys' order) and the row of the table they begin at."""

    start: int
    stop: int
    journeys: np.ndarray | None
    base: int

    def requests_where(self, mask: np.ndarray) -> np.ndarray:
        """The span's requests that ``mask`` (one flag a request) marks."""
        found = np.flatnonzero(mask[self.start : self.stop])
        return found + self.start if self.start else found


def in_chunks(
    columns: dict[str, np.ndarray], names: list[str], size: int
) -> Iterator[tuple[dict[str, np.ndarray], list[str]]]:
    """Built columns, ``size`` rows at a time (one empty chunk where there are none)."""
    total = len(next(iter(columns.values())))
    for lo in range(0, max(total, 1), size):
        yield {key: value[lo : lo + size] for key, value in columns.items()}, names


STAGE_DTYPES = {
    "request": np.int64,
    "stage": np.int16,
    "kind": np.int8,
    "at": np.int16,
    "bytes": np.float64,
    "t_enqueue_s": np.float64,
    "t_start_s": np.float64,
    "t_end_s": np.float64,
}


TIME_KEYS = ("t_enqueue_s", "t_start_s", "t_end_s")
PLACE_KEYS = ("request", "stage", "kind", "at", "bytes")


def _part(request, stage, transfer, at, size, enqueue, start, end) -> dict:
    """One part of the stage table: arrays, or one value for all its rows."""
    values = (request, stage, transfer, at, size, enqueue, start, end)
    return dict(zip(STAGE_DTYPES, values, strict=True))


def _block(**part) -> dict[str, np.ndarray]:
    """A part as whole columns of the table's dtypes."""
    m = part["request"].size
    return {
        key: np.broadcast_to(np.asarray(part[key], dtype=dtype), (m,)).copy()
        for key, dtype in STAGE_DTYPES.items()
    }


def check_accounting(columns: dict[str, np.ndarray]) -> None:
    """Every request ends in exactly one state, consistently with its other columns."""
    status = columns["status"]
    counts = {s: int((status == s).sum()) for s in STATUSES}
    if sum(counts.values()) != status.size:
        raise AccountingError(f"requests in no known state: {counts} of {status.size}")
    answered = _isin(status, ANSWERED)
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


def _isin(values: np.ndarray | pd.Categorical, names: tuple[str, ...]) -> np.ndarray:
    """Whether each value is one of ``names``; a categorical compares its codes, not text."""
    if isinstance(values, pd.Categorical):
        return values.isin(names)
    return np.isin(values, names)


def _check_failures(columns: dict[str, np.ndarray], answered: np.ndarray) -> None:
    """Reasons that come from failures agree with what failures did to the request."""
    reason, failure = columns["reason"], columns["failure"]
    if (columns["retries"] < 0).any():
        raise AccountingError("a request has a negative number of retries")
    if (failure[reason == "work_lost"] != "lost").any():
        raise AccountingError("a request dropped for lost work has no lost work")
    for ended in (RETRIES_EXHAUSTED, FAILURE_FALLBACK):
        if not _isin(failure[reason == ended], ("timed_out", "lost")).all():
            raise AccountingError(f"a request ended as {ended} without a failed attempt")
    if (columns["answered_at"][reason == FAILURE_FALLBACK] != "device").any():
        raise AccountingError("a failure fallback was not answered on the device")
    if (~answered & (reason == FAILURE_FALLBACK)).any():
        raise AccountingError("a failure fallback was not answered")

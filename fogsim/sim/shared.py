"""The shared stages of a run, in SimPy: cells, links, downlinks, fog servers and clouds.

Only requests that leave their device become events here, which is what keeps
large runs fast: shared resources are where requests interact. Each request
follows its plan (``fogsim.sim.routes``) stage by stage; each stage consumes
(request, ready time, work) and produces (start, end), recorded in columns.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from fogsim.policies import Tier
from fogsim.scenario.failures import Failures, Recovery
from fogsim.scenario.models import Scenario
from fogsim.scenario.models import Server as ServerSpec
from fogsim.scenario.network import LinkSpec
from fogsim.scenario.rates import VaryingRate
from fogsim.sim.failures import LOST, PAUSED, RESTARTED, Availability, Outages, with_outages
from fogsim.sim.link import Delivery, Link
from fogsim.sim.ratefn import RateFunction
from fogsim.sim.rng import Streams
from fogsim.sim.routes import Plan
from fogsim.sim.server import CLOUD_QUEUE_FULL, FOG_QUEUE_FULL, Server, ServerOutcome
from fogsim.topology import Topology

if TYPE_CHECKING:
    from fogsim.sim.handover import InFlight

WORK_LOST = "work_lost"  # its work was lost on a failed element, and no recovery
RETRIES_EXHAUSTED = "retries_exhausted"  # every attempt was lost or timed out
DROP_REASONS = ("", FOG_QUEUE_FULL, CLOUD_QUEUE_FULL, WORK_LOST, RETRIES_EXHAUSTED)
# What failures did to a request, the worst over its attempts (index: the severity).
TIMED_OUT = "timed_out"
FAILURES = ("", PAUSED, RESTARTED, TIMED_OUT, LOST)


@dataclass
class StageTimes:
    """Per shared request (a row) and stage (a column): times, NaN where never reached."""

    enqueue_s: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    batch_size: np.ndarray  # int32, computes only
    share: np.ndarray  # the request's share of its batch's work (computes only)
    cell_sent_s: np.ndarray  # per row: the device's radio sent its last bit on the cell
    answer_at_gateway_s: np.ndarray  # per row: the answer reached the gateway
    dropped: np.ndarray  # int8 per row: index into DROP_REASONS
    retries: np.ndarray  # int16 per row: attempts after the first (see Recovery)
    failure: np.ndarray  # int8 per row: index into FAILURES
    gave_up_s: np.ndarray  # per row: when its last attempt failed (NaN: it did not)

    def clear(self, row: int) -> None:
        """Forget a row's stage times: a new attempt begins (only the last one is kept)."""
        for grid in (self.enqueue_s, self.start_s, self.end_s):
            grid[row] = np.nan
        self.batch_size[row] = 0
        self.share[row] = 0.0
        self.cell_sent_s[row] = np.nan

    # After compact_enqueues: how many stages each row entered (None: enqueue_s is whole).
    # Not a field: the fields are the per-row arrays that Journeys.only and the shares copy.
    _entered = None

    def compact_enqueues(self) -> None:
        """Keep only the first stage's enqueue times where every later stage was entered
        the instant the one before it ended (the same float, checked bit for bit), as in a
        run whose requests move straight on: the rest follow from ``end_s`` and how many
        stages each row entered. Saves 8 bytes a row for each stage after the first."""
        enqueue, end = self.enqueue_s, self.end_s
        stages = enqueue.shape[1]
        if stages < 2 or stages > np.iinfo(np.int8).max:
            return
        entered = (~np.isnan(enqueue[:, 0])).astype(np.int8)
        for j in range(1, stages):
            has = ~np.isnan(enqueue[:, j])
            if (has & (entered != j)).any():
                return  # a stage entered without the one before it
            same = enqueue[:, j].view(np.int64) == end[:, j - 1].view(np.int64)
            if (has & ~same).any():
                return
            entered += has
        self.enqueue_s = enqueue[:, :1].copy()
        self._entered = entered

    def enqueue_at(self, rows: np.ndarray, stage: np.ndarray | int) -> np.ndarray:
        """When each of ``rows`` was queued at its ``stage`` (NaN where it never was)."""
        if self._entered is None:
            return self.enqueue_s[rows, stage]
        if isinstance(stage, int):  # one stage for every row: two gathers, no masks of stages
            out = self.end_s[rows, stage - 1] if stage else self.enqueue_s[rows, 0]
            out[self._entered[rows] <= stage] = np.nan
            return out
        stage = np.broadcast_to(stage, rows.shape)
        out = self.end_s[rows, np.maximum(stage - 1, 0)]
        first = stage == 0
        out[first] = self.enqueue_s[rows[first], 0]
        out[self._entered[rows] <= stage] = np.nan
        return out

    def release(self, *names: str) -> None:
        """Let the named arrays go once their last reader is done (millions of rows, up
        to a column per stage): each becomes empty, so a late reader fails, never reads
        stale values."""
        for name in names:
            grid = getattr(self, name)
            setattr(self, name, np.empty((0,) * grid.ndim, grid.dtype))

    @classmethod
    def empty(cls, rows: int, stages: int, gives_up: bool = True) -> StageTimes:
        """All NaN and zeros. Where no attempt can give up (``gives_up``: failures or
        retries), ``gave_up_s`` is a read-only view of one NaN, 8 bytes a row spared."""

        def grid() -> np.ndarray:
            return np.full((rows, stages), np.nan)

        return cls(
            grid(),
            grid(),
            grid(),
            np.zeros((rows, stages), np.int32),
            np.zeros((rows, stages)),
            np.full(rows, np.nan),
            np.full(rows, np.nan),
            np.zeros(rows, np.int8),
            np.zeros(rows, np.int16),
            np.zeros(rows, np.int8),
            np.full(rows, np.nan) if gives_up else np.broadcast_to(np.nan, (rows,)),
        )


class SharedStages:
    """The shared links and servers of one run, and the requests crossing them."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        topology: Topology,
        rows: int,
        stages: int,
    ) -> None:
        self.env = env
        self.answer_bits = scenario.network.answer_size
        self.recovery: Recovery | None = scenario.recovery
        self.resend_s: list[float] = []  # per row: the device's radio time to send again
        # Told (row, time) when an answer reaches the gateway: what an adaptive policy sees.
        self.on_answer: Callable[[int, float], None] | None = None
        # With mobility's in_flight: retry, what abandons and re-sends a moving device's
        # requests at its handovers (fogsim.sim.handover.InFlight).
        self.mobile: InFlight | None = None
        # Attempts in the order of their timeouts (one timeout for all: see watch).
        self._due: deque[_Journey] = deque()
        self._watching = False
        # Varying link rates draw from the run's seed, one named stream per link.
        streams = self.streams = Streams(scenario.seed)
        # Handovers under in_flight: retry take requests back from the links they cross.
        mobility = scenario.mobility
        back = mobility is not None and mobility.handover.in_flight == "retry"
        self.links: dict[str, Link] = {
            f"cell:{g.name}": _link(env, f"cell:{g.name}", g.cell, streams, back)
            for g in topology.gateways
            if g.access == "shared" and g.cell is not None
        }
        self.links.update(
            {name: _link(env, name, k.up, streams, back) for name, k in topology.links.items()}
        )
        self.downlinks = {
            name: _link(env, f"{name}:down", k.downlink, streams, back)
            for name, k in topology.links.items()
            if k.downlink is not None
        }
        # Without a downlink of its own, a link returns answers after its delay plus their
        # size over its bandwidth (a varying one's nominal rate), without contention.
        self.back_fixed_s = {
            name: k.delay + self.answer_bits / k.bandwidth for name, k in topology.links.items()
        }
        self.servers: dict[str, Server] = {}
        self.tiers: dict[str, int] = {}
        for spec in scenario.fog:
            self._add_server(env, spec.name, spec, FOG_QUEUE_FULL, Tier.FOG)
        for cloud in scenario.clouds:
            self._add_server(env, cloud.name, cloud, CLOUD_QUEUE_FULL, Tier.CLOUD)
        self.times = StageTimes.empty(rows, stages)
        self.payloads: list[list[float]] = []  # bits of each payload, by row (see feed)

    def _add_server(
        self, env: simpy.Environment, name: str, spec: ServerSpec, reason: str, tier: int
    ) -> None:
        overhead = spec.profile.batch_overhead
        self.servers[name] = Server(
            env,
            name,
            workers=spec.workers,
            service_time=lambda _size: overhead,
            max_batch=spec.batching.max_batch,
            max_wait_s=spec.batching.max_wait,
            queue_capacity=spec.queue_capacity,
            drop_reason=reason,
            outages=None if spec.failures is None else self._outages(spec.failures, name),
            work="resume" if spec.failures is None else spec.failures.work,
        )
        self.tiers[name] = tier

    def _outages(self, failures: Failures, name: str) -> Callable[[int], Outages]:
        streams = self.streams
        return lambda worker: failures.outages(streams.stream(f"failures/server/{name}/{worker}"))

    def feed(
        self,
        ready_s: np.ndarray,
        plans: list[Plan],
        plan_of_row: np.ndarray,
        payload_bits: np.ndarray,
        resend_s: np.ndarray | None = None,
    ) -> Generator[simpy.Event, Any, None]:
        """Release each row into its first shared stage when it is ready (rows sorted by
        ready time). One feeder keeps only the requests in flight in the event queue.

        ``resend_s`` (per row) is how long the device's own radio takes to send the request
        again before a retry reaches the shared stages (0 on a shared cell, which is one).
        """
        env = self.env
        if self.recovery is not None:
            self.resend_s = [0.0] * len(ready_s) if resend_s is None else resend_s.tolist()
        routes = self.bind(plans, payload_bits)
        for row, (at, plan) in enumerate(zip(ready_s.tolist(), plan_of_row.tolist(), strict=True)):
            if at > env.now:
                yield env.timeout(at - env.now)
            self.enter(routes[plan], row)

    def bind(self, plans: list[Plan], payload_bits: np.ndarray) -> list[_Route]:
        """The plans bound to this run's links and servers, and the rows' payloads."""
        # Each payload as one list of floats: a list per request would cost far more memory.
        self.payloads = [payload_bits[:, 0].tolist()]
        uses_fog = any(step.payload for plan in plans for step in plan.steps)
        self.payloads.append(payload_bits[:, 1].tolist() if uses_fog else [])
        return [_Route(self, plan) for plan in plans]

    def enter(self, route: _Route, row: int) -> None:
        """Row ``row`` reaches its first shared stage now."""
        journey = _Journey(self, route, row)
        if self.mobile is None or self.mobile.track(journey):
            journey.start()

    def watch(self, journey: _Journey) -> None:
        """Time the attempt out at its ``due_s`` unless it is over by then.

        Every attempt has the same timeout, so they fall due in the order they began:
        one pending timer, for the oldest attempt still running, serves them all (a timer
        per attempt would cost an event each, though nearly all are answered in time).
        """
        self._due.append(journey)
        if not self._watching:
            self._arm()

    def _arm(self) -> None:
        due = self._due
        while due and due[0].over:
            due.popleft()
        self._watching = bool(due)
        if due:
            at = due[0].due_s
            self.env.timeout(max(0.0, at - self.env.now), at).callbacks.append(self._expire)

    def _expire(self, timer: simpy.Event) -> None:
        # Compare with the time the timer aimed at too: now + (at - now) can round below it.
        now = max(self.env.now, timer.value)
        due = self._due
        while due and (due[0].over or due[0].due_s <= now):
            journey = due.popleft()
            if not journey.over:
                journey.time_out()
        self._arm()

    def link_stats(self, duration_s: float) -> dict[str, dict[str, float]]:
        """Utilisation and traffic of every shared link (and downlink) over the run."""
        stats = {}
        for link in [*self.links.values(), *self.downlinks.values()]:
            stats[link.name] = {
                "bandwidth_bps": link.bandwidth_bps,
                "bits_carried": link.bits_carried,
                "transfers": link.transfers_done,
                "utilisation": link.busy_time_s / duration_s if duration_s > 0 else 0.0,
                "peak_concurrency": link.peak_concurrency,
            }
        return stats


def _link(
    env: simpy.Environment, name: str, spec: LinkSpec, streams: Streams, retractable: bool
) -> Link:
    rate, up = None, None
    changes = iter([(0.0, float(spec.bandwidth))])
    if isinstance(spec.bandwidth, VaryingRate):
        changes = spec.bandwidth.profile.changes(streams.stream(f"link-rate/{name}"))
    if spec.failures is not None:
        # A link down carries 0 bit/s (see sim.failures); its availability says when it
        # fails, for the transfers that restart or are lost then.
        outages = spec.failures.outages(streams.stream(f"failures/link/{name}"))
        schedule, own = itertools.tee(outages)
        changes = with_outages(changes, schedule)
        up = Availability(own)
    if isinstance(spec.bandwidth, VaryingRate) or spec.failures is not None:
        rate = RateFunction(changes)
    work = "resume" if spec.failures is None else spec.failures.work
    return Link(env, name, spec.bandwidth, spec.delay, spec.sharing, rate, up, work, retractable)


class _Route:
    """A plan bound to the run's resources: what each stage calls, resolved once."""

    __slots__ = ("stages", "count", "back", "back_fixed_s", "on_cell", "times", "env")

    def __init__(self, net: SharedStages, plan: Plan) -> None:
        self.times = net.times
        self.env = net.env
        self.on_cell = bool(plan.steps) and plan.steps[0].name.startswith("cell:")
        self.stages = [
            (step.kind == "compute", net.servers.get(step.name) or net.links[step.name], step)
            for step in plan.steps
        ]
        # The way back: contended downlinks, each after the fixed time of the links before it.
        back: list[tuple[float, Link]] = []
        fixed = 0.0
        for name in plan.back:
            if name in net.downlinks:
                back.append((fixed, net.downlinks[name]))
                fixed = 0.0
            else:
                fixed += net.back_fixed_s[name]
        self.back = back
        self.back_fixed_s = fixed
        self.count = len(self.stages)


class _Journey:
    """One attempt of a request on its way through its shared stages and back to its gateway.

    A chain of callbacks rather than a process per request: each stage's completion
    starts the next one, so a request costs only its own events. With the scenario's
    ``recovery`` an attempt that has no answer back by its timeout is over: it finishes
    the stage it is in, unheeded, and a new attempt of the request follows its back-off.
    A withdrawn attempt (its device handed over, ``in_flight: retry``) stops where it is.
    """

    __slots__ = (
        "net", "route", "row", "stage", "back", "due_s", "over",
        "pending", "resource", "withdrawn", "since", "answered_s",
    )  # fmt: skip

    def __init__(self, net: SharedStages, route: _Route, row: int) -> None:
        self.net = net
        self.route = route
        self.row = row
        self.stage = 0
        self.back = 0
        self.due_s = math.inf
        self.over = False  # answered, dropped or timed out: later callbacks change nothing
        self.pending: simpy.Event | None = None  # what it waits for now, and where
        self.resource: Link | Server | None = None
        self.withdrawn = False  # taken back from the shared stages (see withdraw)
        self.since = math.nan  # when its device began sending it (mobility's retry)
        self.answered_s = math.inf  # when its answer reached the gateway

    def start(self) -> None:
        """Begin the attempt (with recovery: and its timeout)."""
        recovery = self.net.recovery
        if recovery is not None:
            self.due_s = self.net.env.now + recovery.timeout
            self.net.watch(self)
        self.enter()

    def enter(self) -> None:
        """Queue at the current stage, or start the way back after the last one."""
        route, stage = self.route, self.stage
        if stage == route.count:
            if route.back:
                self.return_answer(None)
            else:
                self.answer(route.env.now + route.back_fixed_s)
            return
        compute, resource, step = route.stages[stage]
        route.times.enqueue_s[self.row, stage] = route.env.now
        if compute:
            pending = resource.submit(self.row, step.work_s)
            pending.callbacks.append(self.served)
        else:
            bits = self.net.payloads[step.payload][self.row]
            pending = resource.transmit(bits)
            pending.callbacks.append(self.delivered)
        self.pending, self.resource = pending, resource

    def delivered(self, delivery: Delivery) -> None:
        if self.over:
            return
        route, row, stage = self.route, self.row, self.stage
        times = route.times
        times.start_s[row, stage] = delivery.started_s
        times.end_s[row, stage] = route.env.now
        if delivery.hit:
            self.hit(delivery.hit)
            if delivery.hit == LOST:
                return
        if stage == 0 and route.on_cell:
            times.cell_sent_s[row] = delivery.value
        self.stage += 1
        self.enter()

    def served(self, event: simpy.Event) -> None:
        if self.over:
            return
        outcome: ServerOutcome = event.value
        times, row = self.route.times, self.row
        if outcome.dropped is not None:
            times.dropped[row] = DROP_REASONS.index(outcome.dropped)
            self.over = True
            return
        times.start_s[row, self.stage] = outcome.start_s
        times.end_s[row, self.stage] = outcome.end_s
        times.batch_size[row, self.stage] = outcome.batch_size
        times.share[row, self.stage] = outcome.share
        if outcome.hit:
            self.hit(outcome.hit)
            if outcome.hit == LOST:
                return
        self.stage += 1
        self.enter()

    def hit(self, what: str) -> None:
        """A failure paused, restarted or lost this attempt's work; a loss without
        recovery drops the request (with recovery, its timeout will notice)."""
        times, row = self.route.times, self.row
        times.failure[row] = max(times.failure[row], FAILURES.index(what))
        if what == LOST and self.net.recovery is None:
            times.dropped[row] = DROP_REASONS.index(WORK_LOST)
            times.gave_up_s[row] = self.net.env.now
            self.over = True

    def answer(self, at_s: float) -> None:
        """The answer reaches the gateway at ``at_s``: the request's, if before the timeout."""
        if at_s > self.due_s:
            return  # the attempt's timeout comes first and gives up on it
        self.over = True
        self.answered_s = at_s
        self.route.times.answer_at_gateway_s[self.row] = at_s
        if self.net.mobile is not None:
            self.net.mobile.answered(self)
        if self.net.on_answer is not None:
            self.net.on_answer(self.row, at_s)

    def time_out(self) -> None:
        """No answer in time: try again after the back-off, or give up."""
        if self.over:
            return
        self.over = True
        net, times, row = self.net, self.route.times, self.row
        recovery = net.recovery
        assert recovery is not None
        times.failure[row] = max(times.failure[row], FAILURES.index(TIMED_OUT))
        retry = int(times.retries[row])
        if retry >= recovery.retries:
            times.dropped[row] = DROP_REASONS.index(RETRIES_EXHAUSTED)
            times.gave_up_s[row] = net.env.now
            return
        times.retries[row] = retry + 1
        mobile = net.mobile
        if mobile is not None and mobile.moves(row):
            # The device sends again after its back-off, through its gateway then.
            timer = net.env.timeout(recovery.wait_s(retry))
            timer.callbacks.append(lambda _e: mobile.send_again(row, net.env.now, False))
            return
        timer = net.env.timeout(recovery.wait_s(retry) + net.resend_s[row])
        timer.callbacks.append(self._again)

    def _again(self, _event: simpy.Event) -> None:
        self.route.times.clear(self.row)
        _Journey(self.net, self.route, self.row).start()

    def withdraw(self) -> None:
        """Take the attempt back from the stage it is in: it consumes nothing more there."""
        self.over = self.withdrawn = True
        if self.pending is not None and self.resource is not None:
            self.resource.withdraw(self.pending)

    def return_answer(self, delivery: Delivery | None) -> None:
        """Cross the contended downlinks in turn; the rest of the way back takes fixed time."""
        if self.over:
            return
        if delivery is not None and delivery.hit:
            self.hit(delivery.hit)
            if delivery.hit == LOST:
                return
        back = self.route.back
        if self.back == len(back):
            self.answer(self.net.env.now + self.route.back_fixed_s)
            return
        fixed_s, link = back[self.back]
        self.back += 1
        if fixed_s > 0:
            timer = self.net.env.timeout(fixed_s)
            timer.callbacks.append(lambda _e: self._send_back(link))
        else:
            self._send_back(link)

    def _send_back(self, link: Link) -> None:
        if self.withdrawn:
            return
        pending = link.transmit(self.net.answer_bits)
        pending.callbacks.append(self.return_answer)
        self.pending, self.resource = pending, link


def server_energy_j(server: Server, spec: ServerSpec, duration_s: float) -> dict[str, float]:
    """A server's counters and energy: each worker at full power while it runs a batch,
    at idle power otherwise, over the whole run."""
    profile = spec.profile
    worker_s = server.workers * duration_s
    busy_s = server.busy_time_s
    return {
        "submitted": server.submitted,
        "completed": server.completed,
        "dropped": server.dropped,
        "peak_queue": server.peak_queue,
        "busy_worker_s": busy_s,
        "utilisation": busy_s / worker_s if worker_s > 0 else math.nan,
        "energy_j": profile.power * busy_s + profile.idle_power * (worker_s - busy_s),
    }

"""The shared stages solved one resource at a time, in topological order of the routes.

A stand-in for ``SharedStages`` after its run: it fills the same ``StageTimes`` and
the same counters from the same journeys. Each resource (cell, link, downlink,
server) is solved once over all its arrivals, which are the outputs of the stages
before it: the routes must be feed-forward. Arrivals are ordered as SimPy would
process them: by time, then, for one instant, in the order their source scheduled
them. Two sources at one instant (or a source and the resource's own event) have
an order only SimPy's event ids know: the run is then refused (``NotExact``).
"""

from __future__ import annotations

from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

import numba
import numpy as np

from fogsim.policies import Tier
from fogsim.scenario.models import Scenario
from fogsim.scenario.models import Server as ServerSpec
from fogsim.sim.fast.links import LinkSolution, solve_link
from fogsim.sim.fast.servers import ServerCounters, ServerSolution, solve_server
from fogsim.sim.fast.support import NotExact
from fogsim.sim.records import Journeys
from fogsim.sim.routes import Plan
from fogsim.sim.server import CLOUD_QUEUE_FULL, FOG_QUEUE_FULL
from fogsim.sim.shared import DROP_REASONS, StageTimes
from fogsim.topology import Topology


@dataclass(frozen=True, slots=True)
class _Link:
    name: str
    bandwidth_bps: float
    delay_s: float
    sharing: str


@dataclass(frozen=True, slots=True)
class _Server:
    name: str
    spec: ServerSpec
    drop_code: int


@dataclass(frozen=True, slots=True)
class _Route:
    """A plan as resource indices: its shared stages, then the contended downlinks of the
    way back, each after the fixed time (``before_s``) of the links before it."""

    stages: tuple[int, ...]
    forward: int  # how many of ``stages`` are the plan's own (the rest are downlinks)
    before_s: tuple[float, ...]  # per stage: fixed time before it (0 for forward stages)
    back_fixed_s: float  # after the last stage, to the gateway


@numba.njit(cache=True)
def _feeder_times(ready_s: np.ndarray) -> np.ndarray:
    """When ``SharedStages.feed`` releases each row: its clock moves by ``ready - now``."""
    out = np.empty(ready_s.size)
    now = 0.0
    for i in range(ready_s.size):
        if ready_s[i] > now:
            now = now + (ready_s[i] - now)
        out[i] = now
    return out


class FastStages:
    """The shared links and servers of one run, solved without events."""

    def __init__(self, scenario: Scenario, topology: Topology, journeys: Journeys) -> None:
        self.until_s = float(scenario.duration)
        self.answer_bits = float(scenario.network.answer_size)
        self.resources: list[_Link | _Server] = []
        self.index: dict[str, int] = {}
        for g in topology.gateways:
            if g.access == "shared" and g.cell is not None:
                self._add(_Link(f"cell:{g.name}", g.cell.bandwidth, g.cell.delay, g.cell.sharing))
        for name, k in topology.links.items():
            self._add(_Link(name, k.bandwidth, k.delay, k.sharing))
        self.downlinks = {
            name: self._add(
                _Link(f"{name}:down", k.downlink.bandwidth, k.downlink.delay, k.downlink.sharing)
            )
            for name, k in topology.links.items()
            if k.downlink is not None
        }
        self.back_fixed_s = {
            name: k.delay + self.answer_bits / k.bandwidth for name, k in topology.links.items()
        }
        self.tiers: dict[str, int] = {}
        for spec in scenario.fog:
            self._add(_Server(spec.name, spec, DROP_REASONS.index(FOG_QUEUE_FULL)))
            self.tiers[spec.name] = Tier.FOG
        for spec in scenario.clouds:
            self._add(_Server(spec.name, spec, DROP_REASONS.index(CLOUD_QUEUE_FULL)))
            self.tiers[spec.name] = Tier.CLOUD
        self.journeys = journeys
        self.routes = [self._route(plan) for plan in journeys.plans]
        self.times = StageTimes.empty(journeys.rows.size, journeys.width)
        self.servers: dict[str, ServerCounters] = {}
        self._links: dict[str, LinkSolution | None] = {}

    def _add(self, resource: _Link | _Server) -> int:
        self.index[resource.name] = len(self.resources)
        self.resources.append(resource)
        return len(self.resources) - 1

    def _route(self, plan: Plan) -> _Route:
        stages = [self.index[step.name] for step in plan.steps]
        before = [0.0] * len(stages)
        fixed = 0.0
        for name in plan.back:  # as in shared._Route: the same sums in the same order
            if name in self.downlinks:
                stages.append(self.downlinks[name])
                before.append(fixed)
                fixed = 0.0
            else:
                fixed += self.back_fixed_s[name]
        return _Route(tuple(stages), len(plan.steps), tuple(before), fixed)

    def solve(self) -> None:
        """Fill ``times`` and the counters, resource by resource; NotExact if it cannot."""
        journeys, until = self.journeys, self.until_s
        rows = journeys.rows.size
        depth = max((len(r.stages) for r in self.routes), default=0) + 1
        # Per row and stage: when it reaches the stage (NaN: never, before the end of the
        # run), and its place in the order its stage's resource scheduled its completion.
        self._arrive = np.full((rows, depth), np.nan)
        self._seq = np.zeros((rows, depth), np.int64)
        self._plan_rows = _rows_by_plan(journeys.plan, len(journeys.plans))
        entered = _feeder_times(journeys.ready_s)
        entered[~(entered < until)] = np.nan
        self._arrive[:, 0] = entered
        self._seq[:, 0] = np.arange(rows)
        for p, route in enumerate(self.routes):
            if not route.stages:  # nothing shared: the answer starts back at once
                these = self._plan_rows[p]
                self.times.answer_at_gateway_s[these] = entered[these] + route.back_fixed_s
        uses: dict[int, list[tuple[int, int]]] = {}
        for p, route in enumerate(self.routes):
            for k, r in enumerate(route.stages):
                uses.setdefault(r, []).append((p, k))
        for r in _topological(self.routes, len(self.resources)):
            if r in uses:
                self._solve_resource(r, uses[r])
        self._record_enqueues()
        # In the scenario's order, as SharedStages keeps them; an idle server counted zero.
        idle = {s.name: ServerCounters(s.spec.workers, 0, 0, 0, 0, 0.0) for s in self._servers()}
        self.servers = {name: self.servers.get(name, idle[name]) for name in idle}

    def _servers(self) -> list[_Server]:
        return [r for r in self.resources if isinstance(r, _Server)]

    def _solve_resource(self, r: int, uses: list[tuple[int, int]]) -> None:
        resource = self.resources[r]
        rows, stage, plan, use, arrive = self._arrivals(r, uses)
        plans = self.journeys.plans
        if isinstance(resource, _Link):
            # A plan's own stage carries its payload; a downlink on the way back, the answer.
            payload = np.array(
                [plans[p].steps[k].payload if k < self.routes[p].forward else -1 for p, k in uses]
            )[use]
            bits = self.journeys.bits[rows, np.maximum(payload, 0)]
            bits[payload < 0] = self.answer_bits
            solution = solve_link(
                arrive,
                bits,
                resource.bandwidth_bps,
                resource.delay_s,
                resource.sharing,
                self.until_s,
            )
            if solution is None:
                raise NotExact(f"two events at one instant at link {resource.name!r}")
            self._links[resource.name] = solution
            self._record_link(resource, solution, rows, stage, plan)
        else:
            spec = resource.spec
            work_s = np.array([plans[p].steps[k].work_s for p, k in uses])[use]
            server = solve_server(
                arrive,
                work_s,
                workers=spec.workers,
                max_batch=spec.batching.max_batch,
                max_wait_s=spec.batching.max_wait,
                queue_capacity=spec.queue_capacity,
                overhead_s=spec.profile.batch_overhead,
                until_s=self.until_s,
            )
            if server is None:
                raise NotExact(f"two events at one instant at server {resource.name!r}")
            self.servers[resource.name] = server.counters
            self._record_server(resource, server, rows, stage, plan)

    def _arrivals(self, r: int, uses: list[tuple[int, int]]):
        """The rows reaching resource ``r`` ordered as SimPy processes them: their stage,
        plan, index into ``uses`` and arrival time."""
        parts_rows, parts_src, parts_seq, counts = [], [], [], []
        timer_base = len(self.resources)
        for p, k in uses:
            candidates = self._plan_rows[p]
            reached = candidates[self._arrive[candidates, k] < self.until_s]
            route = self.routes[p]
            if k == 0:
                src = -1  # the feeder, which releases rows in row order
            else:
                src = route.stages[k - 1] + (timer_base if route.before_s[k] > 0 else 0)
            parts_rows.append(reached)
            parts_src.append(np.full(reached.size, src, np.int64))
            parts_seq.append(self._seq[reached, max(k - 1, 0)])
            counts.append(reached.size)
        rows = np.concatenate(parts_rows)
        use = np.repeat(np.arange(len(uses)), counts)
        stage = np.array([k for _, k in uses], np.int64)[use]
        plan = np.array([p for p, _ in uses], np.int64)[use]
        arrive = self._arrive[rows, stage]
        src = np.concatenate(parts_src)
        order = np.lexsort((np.concatenate(parts_seq), src, arrive))
        arrive, src = arrive[order], src[order]
        if ((arrive[1:] == arrive[:-1]) & (src[1:] != src[:-1])).any():
            name = self.resources[r].name
            raise NotExact(f"arrivals from two places at one instant at {name!r}")
        return rows[order], stage[order], plan[order], use[order], np.ascontiguousarray(arrive)

    def _record_link(self, link: _Link, sol: LinkSolution, rows, stage, plan) -> None:
        through = sol.delivered_s < self.until_s
        seq = np.empty(rows.size, np.int64)
        seq[sol.order] = np.arange(sol.order.size)
        forward = stage < np.array([r.forward for r in self.routes])[plan]
        mine = through & forward
        times = self.times
        times.start_s[rows[mine], stage[mine]] = sol.start_s[mine]
        times.end_s[rows[mine], stage[mine]] = sol.delivered_s[mine]
        if link.name.startswith("cell:"):
            first = mine & (stage == 0)
            times.cell_sent_s[rows[first]] = sol.sent_s[first]
        self._advance(
            rows[through], stage[through], plan[through], sol.delivered_s[through], seq[through]
        )

    def _record_server(self, server: _Server, sol: ServerSolution, rows, stage, plan) -> None:
        done = ~np.isnan(sol.end_s)
        seq = np.empty(rows.size, np.int64)
        seq[sol.order] = np.arange(sol.order.size)
        times = self.times
        r, k = rows[done], stage[done]
        times.start_s[r, k] = sol.start_s[done]
        times.end_s[r, k] = sol.end_s[done]
        times.batch_size[r, k] = sol.batch_size[done]
        times.share[r, k] = sol.share[done]
        times.dropped[rows[sol.dropped]] = server.drop_code
        self._advance(r, k, plan[done], sol.end_s[done], seq[done])

    def _advance(self, rows, stage, plan, done_s, seq) -> None:
        """Rows that finished ``stage`` at ``done_s``: on to the next stage, or the answer
        starts its fixed way back to the gateway."""
        self._seq[rows, stage] = seq
        length = np.array([len(r.stages) for r in self.routes], np.int64)[plan]
        last = stage + 1 == length
        back = np.array([r.back_fixed_s for r in self.routes])[plan]
        self.times.answer_at_gateway_s[rows[last]] = done_s[last] + back[last]
        go = ~last
        rows, nxt, plan, done_s = rows[go], stage[go] + 1, plan[go], done_s[go]
        before = np.zeros(rows.size)
        for p, route in enumerate(self.routes):
            if any(route.before_s):
                mine = plan == p
                before[mine] = np.array(route.before_s)[nxt[mine]]
        # A timer of ``before`` fires at ``now + before``; without one the next stage is
        # entered at once, at the same instant.
        at = np.where(before > 0, done_s + before, done_s)
        at[~(at < self.until_s)] = np.nan
        self._arrive[rows, nxt] = at

    def _record_enqueues(self) -> None:
        forward = np.array([r.forward for r in self.routes], np.int64)[self.journeys.plan]
        width = self.times.enqueue_s.shape[1]
        for k in range(width):
            mine = k < forward
            self.times.enqueue_s[mine, k] = self._arrive[mine, k]

    def link_stats(self, duration_s: float) -> dict[str, dict[str, float]]:
        """Utilisation and traffic of every shared link, as ``SharedStages.link_stats``."""
        stats = {}
        for resource in self.resources:
            if not isinstance(resource, _Link):
                continue
            sol = self._links.get(resource.name)
            busy = sol.busy_s if sol else 0.0
            stats[resource.name] = {
                "bandwidth_bps": float(resource.bandwidth_bps),
                "bits_carried": sol.bits_carried if sol else 0.0,
                "transfers": sol.transfers if sol else 0,
                "utilisation": busy / duration_s if duration_s > 0 else 0.0,
                "peak_concurrency": sol.peak_concurrency if sol else 0,
            }
        return stats


def _rows_by_plan(plan: np.ndarray, count: int) -> list[np.ndarray]:
    order = np.argsort(plan, kind="stable")
    bounds = np.searchsorted(plan[order], np.arange(count + 1))
    return [order[bounds[p] : bounds[p + 1]] for p in range(count)]


def _topological(routes: list[_Route], count: int) -> list[int]:
    """Resources in an order where each comes after every resource feeding it."""
    graph: dict[int, set[int]] = {r: set() for r in range(count)}
    for route in routes:
        for before, after in zip(route.stages, route.stages[1:], strict=False):
            graph[after].add(before)
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError:
        raise NotExact("the routes are not feed-forward (a resource feeds itself)") from None

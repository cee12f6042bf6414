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
from fogsim.sim.fast.links import solve_link
from fogsim.sim.fast.servers import ServerCounters, solve_server
from fogsim.sim.fast.support import NotExact
from fogsim.sim.fast.tables import (
    index_dtype,
    record_link,
    record_server,
    route_outputs,
    stage_dtype,
    take_inputs,
)
from fogsim.sim.ordering import stable_argsort
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
        # No failures or retries here (support.why_not_fast): no attempt gives up.
        self.times = StageTimes.empty(journeys.rows.size, journeys.width, gives_up=False)
        self.servers: dict[str, ServerCounters] = {}
        # Per link, its totals (bits, transfers, busy seconds, peak concurrency): its
        # per-arrival times are let go once recorded, as they would outlive the run.
        self._links: dict[str, tuple[float, int, float, int]] = {}

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
        journeys, routes = self.journeys, self.routes
        depth = max((len(r.stages) for r in routes), default=0) + 1
        # Per plan and stage: its resource (-1 past the last), its payload (-1: the answer)
        # or work, and the fixed time before it (downlinks on the way back).
        self._resource = np.full((len(routes), depth), -1, np.int64)
        self._payload = np.full((len(routes), depth), -1, np.int64)
        self._work = np.zeros((len(routes), depth))
        self._before = np.zeros((len(routes), depth))
        for p, (route, plan) in enumerate(zip(routes, journeys.plans, strict=True)):
            self._resource[p, : len(route.stages)] = route.stages
            self._before[p, : len(route.stages)] = route.before_s
            for k, step in enumerate(plan.steps):
                self._payload[p, k] = step.payload
                self._work[p, k] = step.work_s
        self._forward = np.array([r.forward for r in routes], np.int64)
        self._back_fixed = np.array([r.back_fixed_s for r in routes])
        # Each row's next stage, and rows as indices: both in their narrowest exact dtype.
        self._stage = np.zeros(journeys.rows.size, stage_dtype(depth))
        # What each resource's sources sent it: (source id, rows, arrival times), each in
        # the order the source scheduled them.
        self._inbox: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        feeder = len(self.resources) * 2  # a source id apart from every resource's
        entered = _feeder_times(journeys.ready_s)
        rows = np.flatnonzero(entered < self.until_s)  # the feeder releases them in row order
        rows = rows.astype(index_dtype(journeys.rows.size), copy=False)
        self._send(feeder, rows, entered[rows])
        del entered, rows  # 12 bytes a request, not needed past the feeder
        for r in _topological(routes, len(self.resources)):
            if r in self._inbox:
                self._solve_resource(r)
        del self._stage  # a row's next stage: only the solving reads it
        # In the scenario's order, as SharedStages keeps them; an idle server counted zero.
        idle = {s.name: ServerCounters(s.spec.workers, 0, 0, 0, 0, 0.0) for s in self._servers()}
        self.servers = {name: self.servers.get(name, idle[name]) for name in idle}

    def _servers(self) -> list[_Server]:
        return [r for r in self.resources if isinstance(r, _Server)]

    def _send(self, source: int, rows: np.ndarray, done_s: np.ndarray) -> None:
        """Rows that left ``source`` at ``done_s`` (in the order it scheduled them): on to
        their next stage's inbox, or the answer starts its fixed way back."""
        _, at, source_id, offsets, order = route_outputs(
            rows,
            done_s,
            self.journeys.plan,
            self._stage,
            self._resource,
            self._before,
            self._back_fixed,
            self.times.answer_at_gateway_s,
            self.until_s,
            source,
            len(self.resources),
        )
        for d in np.flatnonzero(np.diff(offsets)):
            part = order[offsets[d] : offsets[d + 1]]
            self._inbox.setdefault(int(d), []).append((source_id[part], rows[part], at[part]))

    def _arrivals(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows reaching resource ``r`` and their arrival times, ordered as SimPy
        processes them: by time, then each source's own order (a merge of sorted runs)."""
        parts = self._inbox.pop(r)
        source = np.concatenate([part[0] for part in parts])
        rows = np.concatenate([part[1] for part in parts])
        arrive = np.concatenate([part[2] for part in parts])
        del parts  # each copy let go as soon as the next is made: the peak is the busiest link's
        order = stable_argsort(arrive)
        arrive = arrive[order]
        source = source[order]
        rows = rows[order]
        del order
        if ((arrive[1:] == arrive[:-1]) & (source[1:] != source[:-1])).any():
            name = self.resources[r].name
            raise NotExact(f"arrivals from two places at one instant at {name!r}")
        return rows, arrive

    def _solve_resource(self, r: int) -> None:
        resource = self.resources[r]
        rows, arrive = self._arrivals(r)
        journeys, times, until = self.journeys, self.times, self.until_s
        link = isinstance(resource, _Link)
        stage, amount = take_inputs(
            rows,
            arrive,
            journeys.plan,
            self._stage,
            self._forward,
            link,
            self._payload,
            self._work,
            journeys.bits,
            self.answer_bits,
            times.enqueue_s,
        )
        if link:
            sol = solve_link(
                arrive, amount, resource.bandwidth_bps, resource.delay_s, resource.sharing, until
            )
            if sol is None:
                raise NotExact(f"two events at one instant at link {resource.name!r}")
            self._links[resource.name] = (
                sol.bits_carried,
                sol.transfers,
                sol.busy_s,
                sol.peak_concurrency,
            )
            out_rows, out_s = record_link(
                rows, stage, journeys.plan, self._forward, sol.start_s, sol.sent_s,
                sol.delivered_s, sol.order, until, resource.name.startswith("cell:"),
                times.start_s, times.end_s, times.cell_sent_s, self._stage,
            )  # fmt: skip
            del sol
        else:
            spec = resource.spec
            server = solve_server(
                arrive,
                amount,
                workers=spec.workers,
                max_batch=spec.batching.max_batch,
                max_wait_s=spec.batching.max_wait,
                queue_capacity=spec.queue_capacity,
                overhead_s=spec.profile.batch_overhead,
                until_s=until,
            )
            if server is None:
                raise NotExact(f"two events at one instant at server {resource.name!r}")
            self.servers[resource.name] = server.counters
            out_rows, out_s = record_server(
                rows, stage, server.start_s, server.end_s, server.batch_size, server.share,
                server.dropped, resource.drop_code, server.order,
                times.start_s, times.end_s, times.batch_size, times.share, times.dropped,
                self._stage,
            )  # fmt: skip
            del server
        del rows, arrive, stage, amount  # the arrivals' copies are let go before the outputs'
        self._send(r, out_rows, out_s)

    def link_stats(self, duration_s: float) -> dict[str, dict[str, float]]:
        """Utilisation and traffic of every shared link, as ``SharedStages.link_stats``."""
        stats = {}
        for resource in self.resources:
            if not isinstance(resource, _Link):
                continue
            bits, transfers, busy, peak = self._links.get(resource.name, (0.0, 0, 0.0, 0))
            stats[resource.name] = {
                "bandwidth_bps": float(resource.bandwidth_bps),
                "bits_carried": bits,
                "transfers": transfers,
                "utilisation": busy / duration_s if duration_s > 0 else 0.0,
                "peak_concurrency": peak,
            }
        return stats


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

"""The shared part of the fog, in SimPy: shared cells, backhauls, the cloud link, the cloud.

Only requests that leave their device become events here, which is what
keeps large runs fast without approximating anything: shared resources are
where requests interact, and every interaction is simulated exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import simpy

from fogsim.scenario.models import LinkSpec, Scenario
from fogsim.sim.cloud import CloudOutcome, CloudServer
from fogsim.sim.link import Link
from fogsim.topology import route_to_cloud, shared_links


@dataclass
class FogTimes:
    """Per-request times in the shared fog; NaN where a request never got there."""

    cell_end_s: np.ndarray
    backhaul_end_s: np.ndarray
    cloud_link_end_s: np.ndarray
    cloud_enqueue_s: np.ndarray
    cloud_start_s: np.ndarray
    cloud_end_s: np.ndarray
    batch_size: np.ndarray
    cloud_dropped: np.ndarray  # bool

    @classmethod
    def empty(cls, n: int) -> FogTimes:
        nan = lambda: np.full(n, np.nan)  # noqa: E731
        return cls(
            nan(), nan(), nan(), nan(), nan(), nan(), np.zeros(n, np.int32), np.zeros(n, bool)
        )


class Fog:
    """The shared links and the cloud server of one run, and the requests crossing them."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        graph: nx.DiGraph,
        cloud_macs_per_request: float,
        n_requests: int,
    ) -> None:
        self.env = env
        self.links = {name: _link(env, name, spec) for name, spec in shared_links(graph).items()}
        self.cells = {
            i: _link(env, f"cell:{g.name}", g.cell)
            for i, g in enumerate(scenario.network.gateways)
            if g.access == "shared" and g.cell is not None
        }
        self.routes = [
            [self.links[name] for name in route_to_cloud(graph, g.name)]
            for g in scenario.network.gateways
        ]
        profile = scenario.cloud.profile
        self.cloud = CloudServer(
            env,
            "cloud",
            workers=scenario.cloud.workers,
            service_time=_service_time(
                profile.batch_overhead, cloud_macs_per_request / profile.throughput
            ),
            max_batch=scenario.cloud.batching.max_batch,
            max_wait_s=scenario.cloud.batching.max_wait,
            queue_capacity=scenario.cloud.queue_capacity,
        )
        self.times = FogTimes.empty(n_requests)

    def carry(self, request: int, gateway: int, bits: float) -> Generator[simpy.Event, Any, None]:
        """One request from its gateway (or its shared cell) to the cloud and through it."""
        times = self.times
        cell = self.cells.get(gateway)
        if cell is not None:
            yield cell.transmit(bits)
            times.cell_end_s[request] = self.env.now
        route = self.routes[gateway]
        yield route[0].transmit(bits)
        times.backhaul_end_s[request] = self.env.now
        for link in route[1:]:
            yield link.transmit(bits)
        times.cloud_link_end_s[request] = self.env.now
        outcome: CloudOutcome = yield self.cloud.submit(request)
        times.cloud_enqueue_s[request] = outcome.enqueued_s
        times.cloud_start_s[request] = outcome.start_s
        times.cloud_end_s[request] = outcome.end_s
        times.batch_size[request] = outcome.batch_size
        times.cloud_dropped[request] = outcome.dropped is not None

    def feed(
        self, ready_s: np.ndarray, requests: np.ndarray, gateways: np.ndarray, bits: np.ndarray
    ) -> Generator[simpy.Event, Any, None]:
        """Release each request into the fog when it is ready, in time order.

        One feeder instead of a process per request waiting from time zero keeps
        only the requests in flight alive.
        """
        env = self.env
        for at, request, gateway, size in zip(
            ready_s.tolist(), requests.tolist(), gateways.tolist(), bits.tolist(), strict=True
        ):
            if at > env.now:
                yield env.timeout(at - env.now)
            env.process(self.carry(request, gateway, size))

    def link_stats(self, duration_s: float) -> dict[str, dict[str, float]]:
        """Utilisation and traffic of every shared link over the run."""
        stats = {}
        for link in [*self.cells.values(), *self.links.values()]:
            stats[link.name] = {
                "bandwidth_bps": link.bandwidth_bps,
                "bits_carried": link.bits_carried,
                "transfers": link.transfers_done,
                "utilisation": link.busy_time_s / duration_s if duration_s > 0 else 0.0,
                "peak_concurrency": link.peak_concurrency,
            }
        return stats


def _link(env: simpy.Environment, name: str, spec: LinkSpec) -> Link:
    return Link(env, name, spec.bandwidth, spec.delay, spec.sharing)


def _service_time(overhead_s: float, per_item_s: float) -> Callable[[int], float]:
    def service_time(batch_size: int) -> float:
        return overhead_s + batch_size * per_item_s

    return service_time

"""The shared part of the fog, in SimPy: shared cells, backhauls, the cloud link, the cloud.

Only requests that leave their device become events here, which is what
keeps large runs fast: shared resources are where requests interact, and every
interaction on the way to the cloud is simulated exactly (answers return
without contention; see the engine).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, NamedTuple

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

    cell_tx_start_s: np.ndarray  # the device's radio began sending on the shared cell
    cell_tx_end_s: np.ndarray  # ...and sent its last bit
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
        columns = {name: np.full(n, np.nan) for name in cls.__dataclass_fields__}
        columns.update(batch_size=np.zeros(n, np.int32), cloud_dropped=np.zeros(n, bool))
        return cls(**columns)


class Hop(NamedTuple):
    """One link on the way to the cloud, and the columns recording each request's passage."""

    link: Link
    arrived_s: np.ndarray  # when the last bit reached the far end
    sent: tuple[np.ndarray, np.ndarray] | None = None  # (started, ended) sending, if recorded


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
        # Per gateway, its hops in order. On a shared cell the device's own radio sends,
        # so the cell's sending times are kept: they decide the radio's energy.
        times = self.times = FogTimes.empty(n_requests)
        self.hops: list[list[Hop]] = []
        for index, gateway in enumerate(scenario.network.gateways):
            route = [self.links[name] for name in route_to_cloud(graph, gateway.name)]
            hops = [Hop(route[0], times.backhaul_end_s)]
            hops += [Hop(link, times.cloud_link_end_s) for link in route[1:]]
            if index in self.cells:
                sent = (times.cell_tx_start_s, times.cell_tx_end_s)
                hops.insert(0, Hop(self.cells[index], times.cell_end_s, sent))
            self.hops.append(hops)
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

    def carry(self, request: int, gateway: int, bits: float) -> None:
        """Send one request from its gateway (or its shared cell) to the cloud and through it.

        A chain of callbacks rather than a process per request: each hop's
        delivery starts the next one, so a request costs only its own events.
        """
        _Journey(self, request, bits, self.hops[gateway]).advance(None)

    def feed(
        self, ready_s: np.ndarray, requests: np.ndarray, gateways: np.ndarray, bits: np.ndarray
    ) -> Generator[simpy.Event, Any, None]:
        """Release each request into the fog when it is ready, in time order.

        One feeder instead of an event per request waiting from time zero keeps
        only the requests in flight in the event queue.
        """
        env = self.env
        for at, request, gateway, size in zip(
            ready_s.tolist(), requests.tolist(), gateways.tolist(), bits.tolist(), strict=True
        ):
            if at > env.now:
                yield env.timeout(at - env.now)
            self.carry(request, gateway, size)

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


class _Journey:
    """One request on its way through the shared hops and the cloud."""

    __slots__ = ("fog", "request", "bits", "hops", "next_hop")

    def __init__(self, fog: Fog, request: int, bits: float, hops: list[Hop]) -> None:
        self.fog = fog
        self.request = request
        self.bits = bits
        self.hops = hops
        self.next_hop = 0

    def advance(self, delivered: simpy.Event | None) -> None:
        """Called when the previous hop delivered: record it, then take the next hop or queue."""
        if delivered is not None:
            hop = self.hops[self.next_hop - 1]
            hop.arrived_s[self.request] = self.fog.env.now
            if hop.sent is not None:
                hop.sent[0][self.request] = delivered.started_s  # type: ignore[attr-defined]
                hop.sent[1][self.request] = delivered.value
        if self.next_hop < len(self.hops):
            link = self.hops[self.next_hop].link
            self.next_hop += 1
            link.transmit(self.bits).callbacks.append(self.advance)
        else:
            self.fog.cloud.submit(self.request).callbacks.append(self.served)

    def served(self, event: simpy.Event) -> None:
        outcome: CloudOutcome = event.value
        times, request = self.fog.times, self.request
        times.cloud_enqueue_s[request] = outcome.enqueued_s
        times.cloud_start_s[request] = outcome.start_s
        times.cloud_end_s[request] = outcome.end_s
        times.batch_size[request] = outcome.batch_size
        times.cloud_dropped[request] = outcome.dropped is not None

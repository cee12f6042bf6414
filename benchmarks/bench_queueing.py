"""Throughput of the queues: a processor-sharing link, the cloud server, vectorised FIFO.

Run: ``.venv/bin/python benchmarks/bench_queueing.py [--transfers N] [--repeats R]``.
Prints the median over repeats of transfers (or items) per second of wall time,
including the feeder that releases them, and the SimPy events per item.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import simpy

from fogsim.sim.fifo import solve_fifo
from fogsim.sim.link import Link
from fogsim.sim.server import CloudServer


def feed(env: simpy.Environment, arrivals: np.ndarray, send: Callable[[int], object]) -> None:
    """Release item ``i`` at ``arrivals[i]`` with one feeder process, as the engine does."""

    def run():
        for i, at in enumerate(arrivals.tolist()):
            if at > env.now:
                yield env.timeout(at - env.now)
            send(i)

    env.process(run())


def events_scheduled(env: simpy.Environment) -> int:
    # SimPy numbers every scheduled event; the next number is the count so far.
    return next(env._eid)


def bench_ps_link(n: int, load: float, seed: int) -> tuple[float, float, str]:
    """PS link at ``load``: transfers/s, events per transfer, and its peak concurrency."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / load, n))
    sizes = rng.exponential(1e6, n)
    env = simpy.Environment()
    link = Link(env, "backhaul", 1e6, 0.01, "ps")
    feed(env, arrivals, lambda i: link.transmit(sizes[i]))
    start = time.perf_counter()
    env.run()
    elapsed = time.perf_counter() - start
    assert link.transfers_done == n
    return n / elapsed, events_scheduled(env) / n, f"peak concurrency {link.peak_concurrency}"


def bench_cloud(n: int, workers: int, max_batch: int, seed: int) -> tuple[float, float, str]:
    """Cloud at 90% load with dynamic batching: items/s, events per item, mean batch."""
    rng = np.random.default_rng(seed)
    per_item = 0.01
    arrivals = np.cumsum(rng.exponential(per_item / (0.9 * workers), n))
    env = simpy.Environment()
    server = CloudServer(
        env, "cloud", workers, lambda b: 0.002 + per_item * b * 0.8, max_batch, 0.005
    )
    feed(env, arrivals, lambda i: server.submit(i))
    start = time.perf_counter()
    env.run()
    elapsed = time.perf_counter() - start
    assert server.completed == n
    return n / elapsed, events_scheduled(env) / n, f"mean batch {n / server.batches:.2f}"


def bench_fifo(n: int, servers: int, seed: int) -> tuple[float, float, str]:
    """Vectorised FIFO queues (no events): requests/s over ``servers`` independent queues."""
    rng = np.random.default_rng(seed)
    server = np.sort(rng.integers(0, servers, n))
    arrival = rng.random(n) * 1000.0
    arrival = arrival[np.lexsort((arrival, server))]
    service = rng.exponential(1000.0 * servers / n * 0.8, n)
    start = time.perf_counter()
    solve_fifo(server, arrival, service)
    elapsed = time.perf_counter() - start
    return n / elapsed, 0.0, f"{servers:,} servers"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transfers", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cases: dict[str, Callable[[int], tuple[float, float, str]]] = {
        "ps link, load 0.5": lambda seed: bench_ps_link(args.transfers, 0.5, seed),
        "ps link, load 0.98 (many concurrent flows)": lambda seed: bench_ps_link(
            args.transfers, 0.98, seed
        ),
        "cloud, 4 workers, max_batch 1": lambda seed: bench_cloud(args.transfers, 4, 1, seed),
        "cloud, 4 workers, max_batch 16": lambda seed: bench_cloud(args.transfers, 4, 16, seed),
        "vectorised fifo, 1M requests": lambda seed: bench_fifo(1_000_000, 10_000, seed),
    }
    for name, case in cases.items():
        runs = [case(seed) for seed in range(args.repeats)]
        rate = statistics.median(r[0] for r in runs)
        print(f"{name:45s} {rate:>10,.0f} items/s  {runs[0][1]:.2f} events/item  ({runs[0][2]})")


if __name__ == "__main__":
    main()

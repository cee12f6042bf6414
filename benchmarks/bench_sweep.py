"""Sweep speed-up on Dask: the same sweep with 2 local worker processes against 1.

The sweep is a grid on the city (by default 4 backhaul bandwidths x 4 device counts,
16 points, each a few seconds of simulation), in one run of this script. Each repeat
runs the whole sweep into a fresh directory on an already started and warmed-up cluster
(start-up and first imports are fixed costs, timed separately); the network's outcomes
are cached on disk, as in a real sweep. Prints the median wall time of each, the
speed-up, and the load average the machine was under.

    .venv/bin/python benchmarks/bench_sweep.py [--repeats 3] [--duration "3 min"]
        [--grid 'network.gateways[0].backhaul.bandwidth=50Mbps,100Mbps' ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from distributed import Client

from fogsim.runner import outcomes_for
from fogsim.scenario import load_scenario
from fogsim.sweeping import sweep
from fogsim.sweeping.execute import dask_client

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios/city.yaml"
GRID = [
    "network.gateways[0].backhaul.bandwidth=50Mbps,100Mbps,200Mbps,400Mbps",
    "devices[0].count=1000,2000,4000,8000",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", default="3 min", help="simulated time per point")
    parser.add_argument("--scenario", type=Path, default=SCENARIO)
    parser.add_argument("--grid", action="append", help="PATH=V1,V2 (default: 4 x 4 on city)")
    args = parser.parse_args()
    grid = args.grid or GRID
    overrides = [f"duration={args.duration}"]
    outcomes_for(load_scenario(args.scenario, overrides))  # fill the cache outside the timing
    points = 1
    for axis in grid:
        points *= len(axis.split("=", 1)[1].split(","))
    print(f"{points} points: {' x '.join(grid)}, {args.duration} each")
    print(f"load average before: {_load()}  (cores: {len(os.sched_getaffinity(0))})")
    medians = {}
    for workers in (1, 2):
        started = time.perf_counter()
        # The same local cluster that `fogsim sweep` starts, sized to ``workers``.
        with dask_client(None, None, workers) as client:
            startup_s = time.perf_counter() - started
            # Untimed: each worker imports torch and the simulator once, whatever the sweep.
            warm = [f"{axis.split('=')[0]}={axis.split('=')[1].split(',')[0]}" for axis in grid]
            _timed_sweep(client, args.scenario, ["duration=10 s"], warm, seeds=workers)
            times = [
                _timed_sweep(client, args.scenario, overrides, grid) for _ in range(args.repeats)
            ]
        medians[workers] = statistics.median(times)
        runs = ", ".join(f"{t:.1f}" for t in times)
        print(
            f"{workers} worker(s): median {medians[workers]:.1f} s over {points} points "
            f"(runs: {runs} s; cluster start {startup_s:.1f} s, not counted); "
            f"load average now: {_load()}",
            flush=True,
        )
    print(f"speed-up, 2 workers over 1: {medians[1] / medians[2]:.2f}x")
    print(f"load average after: {_load()}")


def _timed_sweep(
    client: Client, scenario: Path, overrides: list[str], grid: list[str], seeds: int = 1
) -> float:
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        sweep(
            scenario,
            grid,
            seeds=list(range(1, seeds + 1)),
            overrides=overrides,
            out_dir=Path(directory) / "sweep",
            client=client,
        )
        return time.perf_counter() - started


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()

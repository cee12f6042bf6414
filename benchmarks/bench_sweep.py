"""Sweep speed-up on Dask: the same sweep with 2 local worker processes against 1.

Each repeat runs the whole sweep into a fresh directory on an already started and
warmed-up cluster (start-up and first imports are fixed costs, timed separately);
the network's outcomes are cached on disk, as in a real sweep. Prints the median
wall time of each, the speed-up, and the load average the machine was under.

    .venv/bin/python benchmarks/bench_sweep.py [--repeats 3] [--points 8] [--devices 1000]
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
SCENARIO = ROOT / "scenarios/campus.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--points", type=int, default=8, help="grid points (seeds)")
    parser.add_argument("--devices", type=int, default=1000, help="cameras per point")
    parser.add_argument("--duration", default="60 s", help="simulated time per point")
    args = parser.parse_args()
    overrides = [f"devices[0].count={args.devices}", f"duration={args.duration}"]
    outcomes_for(load_scenario(SCENARIO, overrides))  # fill the cache outside the timing
    print(f"load average before: {_load()}")
    medians = {}
    for workers in (1, 2):
        started = time.perf_counter()
        # The same local cluster that `fogsim sweep` starts, sized to ``workers``.
        with dask_client(None, None, workers) as client:
            startup_s = time.perf_counter() - started
            # Untimed: each worker imports torch and the simulator once, whatever the sweep.
            _timed_sweep(client, overrides, workers)
            times = [_timed_sweep(client, overrides, args.points) for _ in range(args.repeats)]
        medians[workers] = statistics.median(times)
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(
            f"{workers} worker(s): median {medians[workers]:.2f} s over {args.points} points "
            f"(runs: {runs} s; cluster start {startup_s:.1f} s, not counted)"
        )
    print(f"speed-up, 2 workers over 1: {medians[1] / medians[2]:.2f}x")
    print(f"load average after: {_load()}  (cores: {len(os.sched_getaffinity(0))})")


def _timed_sweep(client: Client, overrides: list[str], points: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        sweep(
            SCENARIO,
            seeds=list(range(1, points + 1)),
            overrides=overrides,
            out_dir=Path(directory) / "sweep",
            client=client,
        )
        return time.perf_counter() - started


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()

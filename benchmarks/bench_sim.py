"""Simulation speed at city scale: 10,000 devices and at least 1,000,000 requests; the
three-tier scenario (5,000 devices, 26 fog servers, a three-part network) at about 1,000,000;
and the YAFS offload workload (``scenarios/peer-offload.yaml``, 1,000,000 requests).

Prints simulated requests per second (median of several repeats, simulation
only: the network's per-image outcomes are computed once and cached, as in a
real run) for each policy on each engine, the fast engine's speed-up over SimPy
in the same run, and the process's peak memory. With ``--end-to-end``, it then times
``fogsim run`` of the cloud_only city for 30 simulated minutes, each in a process of its
own: start-up, simulation, the run directory and its figures, wall-clock seconds and peak
memory (the inference cache already filled).

    .venv/bin/python benchmarks/bench_sim.py [--repeats 3] [--engines simpy,fast] [--end-to-end]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from fogsim.runner import outcomes_for
from fogsim.scenario import load_scenario
from fogsim.sim.engine import simulate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", default="1400 s", help="simulated time (city: ~1M requests)")
    parser.add_argument("--checkpoint", help="override the city scenario's checkpoint")
    parser.add_argument("--three-tier-duration", default="1100 s", help="three-tier: ~1M requests")
    parser.add_argument("--engines", default="simpy,fast", help="comma-separated: simpy, fast")
    parser.add_argument("--end-to-end", action="store_true", help="also time `fogsim run`")
    parser.add_argument("--only-end-to-end", action="store_true", help="time `fogsim run` only")
    args = parser.parse_args()
    if not args.only_end_to_end:
        simulation_only(args)
    if args.end_to_end or args.only_end_to_end:
        end_to_end(args.repeats)


def simulation_only(args: argparse.Namespace) -> None:
    engines = args.engines.split(",")
    overrides = [f"duration={args.duration}"]
    if args.checkpoint:
        overrides.append(f"model.checkpoint={Path(args.checkpoint).resolve()}")
    print(
        f"{'scenario':<12} {'policy':<12} {'engine':<6} {'devices':>8} {'requests':>10} "
        f"{'offloaded':>10} {'median s':>9} {'requests/s':>11} {'vs simpy':>9}"
    )
    runs = [("city", policy, overrides) for policy in ("early_exit", "edge_only", "cloud_only")]
    three = [f"duration={args.three_tier_duration}"]
    runs += [("three-tier", policy, three) for policy in ("early_exit", "fog_only")]
    # The YAFS offload workload at its own size (1M requests), under its own policy
    # (cloud_only with a 1,000-byte payload): None keeps the scenario's policy.
    runs.append(("peer-offload", None, []))
    for name, policy, changes in runs:
        chosen = [f"policy={{name: {policy}}}"] if policy else []
        scenario = load_scenario(ROOT / f"scenarios/{name}.yaml", [*changes, *chosen])
        policy = scenario.policy.name
        outcomes = outcomes_for(scenario)
        simulate(scenario, outcomes, engine="fast")  # compile (or load) the fast engine first
        medians: dict[str, float] = {}
        for engine in engines:
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                result = simulate(scenario, outcomes, engine=engine)
                times.append(time.perf_counter() - started)
            n = result.columns["request"].size
            offloaded = int((result.columns["bytes_sent"] > 0).sum())
            median = medians[engine] = statistics.median(times)
            ratio = f"{medians['simpy'] / median:>8.1f}x" if "simpy" in medians else ""
            print(
                f"{name:<12} {policy:<12} {engine:<6} {scenario.device_count:>8} {n:>10,} "
                f"{offloaded:>10,} {median:>9.2f} {n / median:>11,.0f} {ratio:>9}",
                flush=True,
            )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS of this process, torch included): {peak_mib:,.0f} MiB")


END_TO_END = ["--set", "policy={name: cloud_only}", "--set", "duration=1800 s", "-q"]


def end_to_end(repeats: int) -> None:
    """``fogsim run`` of the cloud_only city for 30 minutes: wall seconds and peak memory
    of each run's own process (os.wait4 reports each child's maximum RSS)."""
    command = [sys.executable, "-m", "fogsim", "run", str(ROOT / "scenarios/city.yaml")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    walls, peaks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            out = ["-o", str(Path(tmp) / f"run{i}")]
            started = time.perf_counter()
            child = subprocess.Popen(
                [*command, *END_TO_END, *out], env=env, stdout=subprocess.DEVNULL
            )
            _, status, usage = os.wait4(child.pid, 0)
            walls.append(time.perf_counter() - started)
            peaks.append(usage.ru_maxrss * 1024)
            if status != 0:
                raise SystemExit(f"fogsim run failed (status {status})")
        requests = len(pd.read_parquet(Path(tmp) / "run0/requests.parquet", columns=["request"]))
    wall, peak = statistics.median(walls), statistics.median(peaks)
    print(
        f"fogsim run, city cloud_only, 30 min: {requests:,} requests in {wall:.1f} s wall "
        f"(median of {repeats}): {requests / wall:,.0f} requests/s; peak {peak / 2**20:,.0f} MiB, "
        f"{peak / requests:,.0f} B/request"
    )


if __name__ == "__main__":
    main()

"""Simulation speed at city scale: 10,000 devices and at least 1,000,000 requests; and the
three-tier scenario (5,000 devices, 26 fog servers, a three-part network) at about 1,000,000.

Prints simulated requests per second (median of several repeats, simulation
only: the network's per-image outcomes are computed once and cached, as in a
real run) for each policy on each engine, the fast engine's speed-up over SimPy
in the same run, and the process's peak memory.

    .venv/bin/python benchmarks/bench_sim.py [--repeats 3] [--engines simpy,fast]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

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
    args = parser.parse_args()
    engines = args.engines.split(",")
    overrides = [f"duration={args.duration}"]
    if args.checkpoint:
        overrides.append(f"model.checkpoint={Path(args.checkpoint).resolve()}")
    print(
        f"{'scenario':<11} {'policy':<12} {'engine':<6} {'devices':>8} {'requests':>10} "
        f"{'offloaded':>10} {'median s':>9} {'requests/s':>11} {'vs simpy':>9}"
    )
    runs = [("city", policy, overrides) for policy in ("early_exit", "edge_only", "cloud_only")]
    three = [f"duration={args.three_tier_duration}"]
    runs += [("three-tier", policy, three) for policy in ("early_exit", "fog_only")]
    for name, policy, changes in runs:
        scenario = load_scenario(
            ROOT / f"scenarios/{name}.yaml", [*changes, f"policy={{name: {policy}}}"]
        )
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
                f"{name:<11} {policy:<12} {engine:<6} {scenario.device_count:>8} {n:>10,} "
                f"{offloaded:>10,} {median:>9.2f} {n / median:>11,.0f} {ratio:>9}",
                flush=True,
            )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS of this process, torch included): {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()

"""Speed of a world that changes: scenarios/bad-day.yaml (10,000 devices, about 475,000
requests) against the same scenario without its dynamics, and with each one alone.

"Without dynamics": the north backhaul at a plain 1 Gbps, no fog outage, no recovery,
and the fixed early_exit policy. The issue's target: bad-day within 2x of that. Prints
the median simulation time of several repeats (the network's outcomes are computed once
and cached, as in a real run) and each variant's ratio to the static one.

    .venv/bin/python benchmarks/bench_dynamics.py [--repeats 3] [--duration '5 min']
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from fogsim.runner import outcomes_for
from fogsim.scenario import load_scenario
from fogsim.sim.engine import simulate

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios/bad-day.yaml"
STEADY_LINK = "network.links[8].bandwidth=1 Gbps"  # north-backhaul, without its step
NO_OUTAGE = "fog[4].failures=null"  # fog-gw-05
NO_RECOVERY = "recovery=null"
FIXED = "policy={name: early_exit}"
VARIANTS = {
    "static": [STEADY_LINK, NO_OUTAGE, NO_RECOVERY, FIXED],
    "link rate only": [NO_OUTAGE, NO_RECOVERY, FIXED],
    "outage + recovery only": [STEADY_LINK, FIXED],
    "adaptive only": [STEADY_LINK, NO_OUTAGE, NO_RECOVERY],
    "bad-day": [],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", default=None, help="simulated time (default: bad-day's)")
    args = parser.parse_args()
    extra = [] if args.duration is None else [f"duration={args.duration}"]
    print(f"{'variant':<24} {'requests':>10} {'retries':>8} {'median s':>9} {'x static':>9}")
    static_s = None
    for name, overrides in VARIANTS.items():
        scenario = load_scenario(SCENARIO, [*overrides, *extra])
        outcomes = outcomes_for(scenario)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            result = simulate(scenario, outcomes)
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        static_s = static_s or median
        columns = result.columns
        print(
            f"{name:<24} {columns['request'].size:>10,} {int(columns['retries'].sum()):>8,} "
            f"{median:>9.2f} {median / static_s:>9.2f}"
        )


if __name__ == "__main__":
    main()

"""How the cost of a run grows with the number of devices: the city scenario with its device
groups scaled to 10,000, 100,000 and 1,000,000 devices (the mix of groups kept), each size
in a process of its own so that its peak memory is its own.

Prints, per size and engine: requests, seconds of simulation (outcomes computed once and
cached, as in a real run), requests per second, the process's peak memory and that peak
per request. Sizes that would not fit are left to the caller: pass --devices.

    .venv/bin/python benchmarks/bench_scale.py [--devices 10000,100000] [--duration "1400 s"]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITY_DEVICES = 10_000

CHILD = """
import json, resource, sys, time
from fogsim.runner import outcomes_for
from fogsim.scenario import load_scenario
from fogsim.sim.engine import simulate
path, engine, overrides = sys.argv[1], sys.argv[2], sys.argv[3:]
scenario = load_scenario(path, overrides)
outcomes = outcomes_for(scenario)
started = time.perf_counter()
result = simulate(scenario, outcomes, engine=engine)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"requests": int(result.columns["request"].size), "seconds": seconds,
                  "peak_bytes": peak, "engine": result.engine}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="10000,100000,1000000")
    parser.add_argument("--duration", default="1400 s", help="simulated time at every size")
    parser.add_argument("--policy", default="cloud_only")
    parser.add_argument("--engines", default="fast", help="comma-separated: simpy, fast, auto")
    args = parser.parse_args()
    path = ROOT / "scenarios/city.yaml"
    from fogsim.scenario import load_scenario

    groups = [group.count for group in load_scenario(path).devices]
    print(
        f"{'devices':>9} {'engine':<6} {'requests':>12} {'seconds':>8} {'requests/s':>11} "
        f"{'peak MiB':>9} {'B/request':>10}"
    )
    for devices in (int(d) for d in args.devices.split(",")):
        scale = devices / CITY_DEVICES
        overrides = [f"duration={args.duration}", f"policy={{name: {args.policy}}}"]
        overrides += [f"devices[{i}].count={round(n * scale)}" for i, n in enumerate(groups)]
        for engine in args.engines.split(","):
            run = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), engine, *overrides],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            if run.returncode != 0:
                reason = (run.stderr.strip().splitlines() or ["no message"])[-1]
                print(f"{devices:>9,} {engine:<6} failed: {reason}", flush=True)
                continue
            row = json.loads(run.stdout.strip().splitlines()[-1])
            n, seconds, peak = row["requests"], row["seconds"], row["peak_bytes"]
            print(
                f"{devices:>9,} {row['engine']:<6} {n:>12,} {seconds:>8.2f} {n / seconds:>11,.0f} "
                f"{peak / 2**20:>9,.0f} {peak / max(n, 1):>10,.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()

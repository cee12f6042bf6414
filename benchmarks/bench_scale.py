"""How the cost of a run grows with the number of devices: the city scenario with its device
groups scaled to 10,000, 100,000 and 1,000,000 devices (the mix of groups kept), each size
in a process of its own so that its peak memory is its own.

Prints, per size and engine: the simulated duration, requests, seconds of simulation
(outcomes computed once and cached, as in a real run), requests per second, the
process's peak memory and that peak per request. Like ``fogsim run``, each child first
keeps glibc's mmap threshold fixed (``fogsim.heap``), so freed arrays leave its peak.

A guard keeps each size within memory: where fogsim's own estimate (as `fogsim validate`
gives it) is over ``--max-memory`` (default: half the memory available now), that size
runs for a shorter simulated time that fits, and says so; a size that does not fit even
for ``MIN_DURATION_S`` is skipped. A child that runs past ``--timeout`` is stopped.

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
MIN_DURATION_S = 10.0

# The child sets up its heap as the CLI does (fogsim.heap), so its peak is a run's.
CHILD = """
import json, resource, sys, time
from fogsim.heap import return_freed_memory
return_freed_memory()
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
    parser.add_argument("--max-memory", help="e.g. 8GB (default: half the memory available)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per child")
    args = parser.parse_args()
    path = ROOT / "scenarios/city.yaml"
    from fogsim.scenario import footprint, load_scenario

    limit = footprint.default_limit()
    if args.max_memory:
        limit = footprint.parse_memory(args.max_memory)
    groups = [group.count for group in load_scenario(path).devices]
    print(f"memory limit per size: {footprint.format_bytes(limit)}; load {_load()}")
    print(
        f"{'devices':>9} {'engine':<6} {'sim s':>6} {'requests':>12} {'seconds':>8} "
        f"{'requests/s':>11} {'peak MiB':>9} {'B/request':>10}"
    )
    for devices in (int(d) for d in args.devices.split(",")):
        scale = devices / CITY_DEVICES
        counts = [f"devices[{i}].count={round(n * scale)}" for i, n in enumerate(groups)]
        overrides = [f"policy={{name: {args.policy}}}", *counts]
        duration = _fitting_duration(path, overrides, args.duration, limit)
        if duration is None:
            print(f"{devices:>9,} skipped: over the memory limit even for {MIN_DURATION_S:g} s")
            continue
        overrides.append(f"duration={duration:g} s")
        for engine in args.engines.split(","):
            _run_size(path, engine, overrides, devices, duration, args.timeout)
    print(f"load average after: {_load()}")


def _fitting_duration(
    path: Path, overrides: list[str], duration: str, limit: float
) -> float | None:
    """The longest simulated time, up to ``duration``, whose estimated peak fits ``limit``."""
    from fogsim.scenario import footprint, load_scenario

    scenario = load_scenario(path, [*overrides, f"duration={duration}"])
    estimate = footprint.estimate(scenario).bytes
    if estimate <= limit:
        return scenario.duration
    # The peak grows with requests, so with duration, on top of a part per device.
    per_device = scenario.device_count * footprint.BYTES_PER_DEVICE
    share = (limit - per_device) / max(estimate - per_device, 1.0)
    fitted = float(int(scenario.duration * share))
    return fitted if fitted >= MIN_DURATION_S else None


def _run_size(
    path: Path, engine: str, overrides: list[str], devices: int, duration: float, timeout: float
) -> None:
    try:
        run = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), engine, *overrides],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        print(f"{devices:>9,} {engine:<6} stopped after {timeout:g} s", flush=True)
        return
    if run.returncode != 0:
        reason = (run.stderr.strip().splitlines() or [f"exit code {run.returncode}"])[-1]
        print(f"{devices:>9,} {engine:<6} failed: {reason}", flush=True)
        return
    row = json.loads(run.stdout.strip().splitlines()[-1])
    n, seconds, peak = row["requests"], row["seconds"], row["peak_bytes"]
    print(
        f"{devices:>9,} {row['engine']:<6} {duration:>6g} {n:>12,} {seconds:>8.2f} "
        f"{n / seconds:>11,.0f} {peak / 2**20:>9,.0f} {peak / max(n, 1):>10,.0f}",
        flush=True,
    )


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()

"""The YAFS offload workload, side by side: fogsim (``scenarios/peer-offload.yaml``)
against per-message peers of the same workload, in one run of this script.

YAFS itself is not installable here (it is not on PyPI: ``pip download yafs`` finds no
version), so the peers are those that are:
- ``simpy``: ``benchmarks/peers/simpy_offload.py``, a plain per-message SimPy model
  built the way YAFS builds one (a process per message, links and server as
  ``simpy.Resource``); a reference implementation of the same model, not YAFS;
- ``ciw``: ``benchmarks/peers/ciw_offload.py``, the shared part of the workload in Ciw
  (each device's own uplink queue left out: see that file).

Each run is a fresh process, so its peak memory is its own; the repeats of all runs are
interleaved, so that they share the machine's load. Prints, per run: requests, CPU
seconds (``time.process_time`` around the simulation: building the model, simulating
and recording; imports and, for fogsim, the cached network outcomes excluded), wall
seconds, requests per CPU-second, the process's peak RSS (imports included: fogsim's
hold torch), the mean latency (the models agree), medians of ``--repeats``; then
fogsim's requests per CPU-second over each peer's. fogsim also runs at the full size
(10,000 devices for 100 s, 1M requests); with ``--full-peers`` the SimPy reference too.

    .venv/bin/python benchmarks/bench_peer.py [--repeats 3] [--duration 10] [--ciw-duration 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios/peer-offload.yaml"
FULL_S = 100.0  # the scenario's own duration

FOGSIM = """
import json, resource, sys, time
from fogsim.runner import outcomes_for
from fogsim.scenario import load_scenario
from fogsim.sim.engine import simulate
path, engine, duration = sys.argv[1], sys.argv[2], sys.argv[3]
scenario = load_scenario(path, [f"duration={duration} s"])
outcomes = outcomes_for(scenario)
cpu, wall = time.process_time(), time.perf_counter()
result = simulate(scenario, outcomes, engine=engine)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
latency = result.columns["latency_s"]
finished = latency[latency == latency]
print(json.dumps({"requests": int(result.columns["request"].size), "cpu_s": cpu,
                  "wall_s": wall, "engine": result.engine,
                  "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "mean_latency_s": float(finished.mean())}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="simulated s, side by side")
    parser.add_argument("--ciw-duration", type=float, default=2.0, help="simulated s for Ciw")
    parser.add_argument("--full-peers", action="store_true", help="the SimPy peer at 100 s too")
    args = parser.parse_args()
    runs = {
        f"fogsim fast, {args.duration:g} s": _fogsim("fast", args.duration),
        f"fogsim simpy, {args.duration:g} s": _fogsim("simpy", args.duration),
        f"simpy peer, {args.duration:g} s": _peer("simpy_offload.py", args.duration),
        f"ciw peer, {args.ciw_duration:g} s": _peer("ciw_offload.py", args.ciw_duration),
        f"fogsim fast, {FULL_S:g} s": _fogsim("fast", FULL_S),
    }
    if args.full_peers:
        runs[f"simpy peer, {FULL_S:g} s"] = _peer("simpy_offload.py", FULL_S)
    _run(["-c", FOGSIM, str(SCENARIO), "fast", "1"])  # fill the outcome cache, compile
    print(f"load average before: {_load()}  (cores: {len(os.sched_getaffinity(0))})")
    rows: dict[str, list[dict]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, command in runs.items():
            rows[name].append(_run(command))
    print(
        f"{'run':<22} {'requests':>10} {'CPU s':>8} {'wall s':>8} {'req/CPU-s':>10} "
        f"{'peak MiB':>9} {'mean latency':>13}"
    )
    rate = {}
    for name, results in rows.items():
        keys = [key for key in results[0] if key != "engine"]
        m = {key: statistics.median(r[key] for r in results) for key in keys}
        rate[name] = statistics.median(r["requests"] / r["cpu_s"] for r in results)
        print(
            f"{name:<22} {m['requests']:>10,.0f} {m['cpu_s']:>8.2f} {m['wall_s']:>8.2f} "
            f"{rate[name]:>10,.0f} {m['peak_bytes'] / 2**20:>9,.0f} "
            f"{m['mean_latency_s'] * 1e3:>10.3f} ms"
        )
    print(f"load average after: {_load()}")
    fast = next(name for name in runs if name.startswith("fogsim fast"))
    full = f"fogsim fast, {FULL_S:g} s"
    for name in runs:
        if "peer" in name:
            print(
                f"fogsim fast over {name}: {rate[fast] / rate[name]:.1f}x per CPU-second "
                f"(at the full size: {rate[full] / rate[name]:.1f}x)"
            )


def _fogsim(engine: str, duration: float) -> list[str]:
    return ["-c", FOGSIM, str(SCENARIO), engine, f"{duration:g}"]


def _peer(script: str, duration: float) -> list[str]:
    return [str(ROOT / "benchmarks/peers" / script), "--duration", f"{duration:g}"]


def _run(command: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{command[:2]} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()

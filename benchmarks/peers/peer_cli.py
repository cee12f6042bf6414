"""The command line both peer models share: run the workload once and print its figures
(requests, finished, mean latency, CPU and wall seconds, peak RSS) as one JSON line."""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable


def main(run: Callable[[int, int, float, int], dict], description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--gateways", type=int, default=200)
    parser.add_argument("--duration", type=float, default=100.0, help="simulated seconds")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    cpu, wall = time.process_time(), time.perf_counter()
    row = run(args.devices, args.gateways, args.duration, args.seed)
    row["cpu_s"] = time.process_time() - cpu
    row["wall_s"] = time.perf_counter() - wall
    row["peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(row))

"""What both peer models share: the workload, which is ``scenarios/peer-offload.yaml``'s,
and the command line that runs it once and prints its figures (requests, finished, mean
latency, CPU and wall seconds, peak RSS) as one JSON line."""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    """The YAFS offload workload, as ``scenarios/peer-offload.yaml`` states it: each device
    on its own uplink, ``devices / gateways`` devices per FIFO backhaul, one FIFO server."""

    devices: int = 10_000
    gateways: int = 200
    duration_s: float = 100.0
    seed: int = 16
    payload_bytes: int = 1000
    rate_per_s: float = 1.0
    uplink_bps: float = 10e6
    uplink_delay_s: float = 5e-3
    backhaul_bps: float = 100e6
    backhaul_delay_s: float = 10e-3
    service_s: float = 0.05e-3

    @property
    def bits(self) -> int:
        return self.payload_bytes * 8


def main(run: Callable[[Workload], dict], description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    default = Workload()
    parser.add_argument("--devices", type=int, default=default.devices)
    parser.add_argument("--gateways", type=int, default=default.gateways)
    parser.add_argument(
        "--duration", type=float, default=default.duration_s, help="simulated seconds"
    )
    parser.add_argument("--seed", type=int, default=default.seed)
    args = parser.parse_args()
    workload = Workload(args.devices, args.gateways, args.duration, args.seed)
    cpu, wall = time.process_time(), time.perf_counter()
    row = run(workload)
    row["cpu_s"] = time.process_time() - cpu
    row["wall_s"] = time.perf_counter() - wall
    row["peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(row))

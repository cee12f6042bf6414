"""Speed of `fogsim profile` and `fogsim partition`, and how well the derivation model
predicts times at another thread count here.

1. Profiling ResNet-50 here (trace, warm-up, repeats, bytes at every precision, calibration).
2. A three-tier search over a network of 200 rows with 50 cut points (1,275 partitions).
3. The derivation model: a network profiled at 1 thread, its times predicted at N threads
   from the two calibrations, against the profile measured at N threads.

    python benchmarks/bench_partition.py [--repeats 10] [--threads 2] [--model resnet20]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from fogsim.partition import networks, profiler, timemodel
from fogsim.partition.network import network_from_data
from fogsim.partition.search import Rows, rank

NET = {
    "device": "rpi4",
    "fog": "edge-server",
    "cloud": "t4",
    "hops": [
        {"bandwidth": "1.6 Mbps", "delay": "66.7 ms"},
        {"bandwidth": "50 Mbps", "delay": "20 ms"},
    ],
    "direct": {"bandwidth": "1.6 Mbps", "delay": "100 ms"},
    "radio": "wifi",
}


def profile_seconds(model: str, repeats: int) -> tuple[float, profiler.Profile]:
    start = time.perf_counter()
    result = profiler.profile(networks.build(model), repeats=repeats, progress=False)
    return time.perf_counter() - start, result


def search_seconds(rows: int = 200, cuts: int = 50, runs: int = 20) -> float:
    """Median seconds of one ranked search (all partitions costed and sorted)."""
    rng = np.random.default_rng(0)
    points = np.sort(rng.choice(np.arange(1, rows), cuts - 2, replace=False))
    problem = Rows(
        seconds={t: np.r_[0, rng.exponential(1e-3, rows)] for t in ("device", "fog", "cloud")},
        output_bytes=rng.integers(10**3, 10**6, rows + 1),
        cut_points=np.r_[0, points, rows],
    )
    net = network_from_data(NET)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        rank(problem, net)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def thread_prediction(model: str, threads: int, repeats: int) -> dict[str, float]:
    """Profile at 1 thread and at ``threads``; predict the second from the first."""
    torch.set_num_threads(1)
    _, one = profile_seconds(model, repeats)
    torch.set_num_threads(threads)
    _, many = profile_seconds(model, repeats)
    predicted = timemodel.derive(
        one.table, timemodel.measured_rates(one.meta), timemodel.measured_rates(many.meta)
    )
    measured = many.table["time_s"].to_numpy()
    heavy = one.table["macs"].to_numpy() > 0
    return {
        "model": model,
        "threads": threads,
        "measured_1_thread_s": float(one.table["time_s"].sum()),
        "measured_s": float(measured.sum()),
        "predicted_s": float(predicted.sum()),
        "total_error": float(predicted.sum() / measured.sum() - 1),
        "median_row_error_macs_rows": float(
            np.median(np.abs(predicted[heavy] / measured[heavy] - 1))
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="resnet20")
    args = parser.parse_args()
    seconds, result = profile_seconds("resnet50", args.repeats)
    report = {
        "machine": result.meta["machine"],
        "profile_resnet50_s": seconds,
        "resnet50_forward_here_s": float(result.table["time_s"].sum()),
        "search_50_cut_points_s": search_seconds(),
        "derivation_across_threads": thread_prediction(args.model, args.threads, args.repeats),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

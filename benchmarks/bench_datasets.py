"""Median load time of the datasets scenarios use: cold (decoding) and warm (decoded cache).

Run: .venv/bin/python benchmarks/bench_datasets.py [--runs 5] [--splits test train]
Only image zips have a decoded cache, so IDX datasets show one figure for both.
"""

from __future__ import annotations

import argparse
import statistics
import time

from fogsim.data import load_dataset, resolve_dataset

DATASETS = ("fashion-mnist", "cifar10")


def median_load_s(name: str, split: str, runs: int, cache_decoded: bool) -> float:
    """Median wall time of RUNS loads of SPLIT of NAME."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        load_dataset(name, split=split, cache_decoded=cache_decoded)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--splits", nargs="+", default=["test"], choices=["train", "test"])
    args = parser.parse_args()
    print(f"{'dataset':<15}{'split':<7}{'images':>8}{'cold s':>9}{'warm s':>9}  source")
    for name in DATASETS:
        for split in args.splits:
            source = resolve_dataset(name, split=split)
            count = len(load_dataset(name, split=split))  # also primes the decoded cache
            cold = median_load_s(name, split, args.runs, cache_decoded=False)
            warm = median_load_s(name, split, args.runs, cache_decoded=True)
            print(f"{name:<15}{split:<7}{count:>8,}{cold:>9.3f}{warm:>9.3f}  {source}")


if __name__ == "__main__":
    main()

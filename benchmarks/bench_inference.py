"""Inference speed on this machine's CPU: edge-part images/s of each shipped network, and a
cold versus cached `run_inference` over the whole test split. Prints medians.

    python benchmarks/bench_inference.py [--repeats 3] [--batch-size 256] [models/*.pt ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from fogsim.data import load_dataset
from fogsim.inference import run_inference
from fogsim.nn.checkpoint import load_checkpoint
from fogsim.nn.evaluate import to_input


def edge_images_per_s(model: torch.nn.Module, images: torch.Tensor, batch_size: int) -> float:
    """Images per second through the edge part (trunk, exit heads, split quantizer), batched."""
    start = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, len(images), batch_size):
            model.edge(images[s : s + batch_size])
    return len(images) / (time.perf_counter() - start)


def bench(path: Path, repeats: int, batch_size: int) -> None:
    ckpt = load_checkpoint(path)
    model = ckpt.build()
    dataset = load_dataset(ckpt.card["dataset"], split="test")
    x = to_input(dataset.images)
    edge_images_per_s(model, x[:batch_size], batch_size)  # warm-up: allocator, kernels
    rates = [edge_images_per_s(model, x, batch_size) for _ in range(repeats)]
    cold, cached = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            for times in (cold, cached):
                start = time.perf_counter()
                run_inference(path, dataset, cache_dir=Path(tmp), progress=False)
                times.append(time.perf_counter() - start)
    print(
        f"{path.name:22s} edge {statistics.median(rates):9.0f} img/s | run_inference over "
        f"{len(x)} images: cold {statistics.median(cold):7.2f} s, "
        f"cached {1e3 * statistics.median(cached):7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    paths = args.checkpoints or sorted(Path(__file__).parents[1].glob("models/*.pt"))
    print(f"torch {torch.__version__}, {args.threads} thread(s), medians of {args.repeats} runs")
    for path in paths:
        bench(path, args.repeats, args.batch_size)


if __name__ == "__main__":
    main()

"""Training time per epoch on this machine's CPU for RCT, QAT and plain fp32 training of the
Fashion-MNIST small CNN (fmnist-rct.yaml, fmnist-qat.yaml): the median seconds of one step
(forward, joint exit loss, backward, update) times the steps of an epoch of 55,000 images.
SGD with Nesterov momentum 0.9 as both recipes train (RCT's kept as int8); --momentum 0 for
plain SGD.

    python benchmarks/bench_rct.py [--repeats 10] [--batch-size 128] [--threads 1] [--momentum 0.9]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from fogsim.nn.rct import Bitwidth, LowPrecisionTraining
from fogsim.nn.train import joint_loss
from fogsim.nn.zoo import create_model

EPOCH_IMAGES = 55_000  # Fashion-MNIST's train split less the 5,000 held out


def step_seconds(method: str, batch_size: int, repeats: int, momentum: float) -> float:
    """Median seconds of one training step on random Fashion-MNIST-sized images."""
    torch.manual_seed(0)
    model = create_model("smallcnn").to(memory_format=torch.channels_last)
    low = None
    if method != "fp32":
        low = LowPrecisionTraining(model, method, Bitwidth(), momentum=momentum > 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=momentum, nesterov=momentum > 0)
    x = torch.rand(batch_size, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,))
    times = []
    for i in range(repeats + 2):  # the first two warm up the allocator and kernels
        start = time.perf_counter()
        exit_logits, final = model(x)
        loss = joint_loss(exit_logits, final, y, (0.3,))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if low is not None:
            low.step(0.05, 5e-4, momentum)
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--momentum", type=float, default=0.9)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = math.ceil(EPOCH_IMAGES / args.batch_size)
    fp32 = None
    for method in ("fp32", "qat", "rct"):
        s = step_seconds(method, args.batch_size, args.repeats, args.momentum)
        fp32 = fp32 or s
        print(
            f"{method:>4}: {s * 1e3:7.1f} ms/step, {s * steps:6.1f} s/epoch "
            f"({steps} steps of {args.batch_size}; {s / fp32:.2f}x fp32)"
        )


if __name__ == "__main__":
    main()

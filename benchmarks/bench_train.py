"""Training speed on this machine's CPU: images/s of one ResNet-20 training step (forward,
joint exit loss, backward, optimizer step) at each edge precision, plain fp32 against the
channels-last + bf16 autocast that `autocast: bf16` recipes use. Prints medians and the
speed-up, taken in the same run. With ``--compile``, also the fast step with the model
under ``torch.compile`` (inductor), and how long its first step (the compilation) took.

    python benchmarks/bench_train.py [--repeats 10] [--batch-size 128] [--threads 2] [--compile]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import torch

from fogsim.heap import reuse_freed_memory
from fogsim.nn import bf16
from fogsim.nn.train import joint_loss
from fogsim.nn.zoo import create_model


def step_seconds(
    precision: str, fast: bool, batch_size: int, repeats: int, compiled: bool = False
) -> tuple[float, float]:
    """Median seconds of one training step on random CIFAR-sized images, and the seconds
    of the first step (with ``compiled``, the compilation)."""
    torch.manual_seed(0)
    model = create_model(
        "resnet20", weight_precision=precision, act_precision=precision, exit_head="conv"
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.rand(batch_size, 3, 32, 32), torch.randint(0, 10, (batch_size,))
    if fast:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if compiled else model
    times = []
    for i in range(repeats + 2):  # the first two warm up the allocator and kernels
        start = time.perf_counter()
        cast = torch.autocast("cpu", dtype=torch.bfloat16) if fast else contextlib.nullcontext()
        with cast:
            exit_logits, final = forward(x)
            loss = joint_loss(exit_logits, final, y, (0.5,))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i == 0:
            first = time.perf_counter() - start
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times), first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--compile", action="store_true", help="also time the fast step under torch.compile"
    )
    args = parser.parse_args()
    reuse_freed_memory()  # the heap as `fogsim train` sets it up (fogsim.heap)
    # Before any conv: where bf16 crashes oneDNN's AMX kernels, this caps it or says so.
    if not bf16.prepare():
        print("bf16 autocast crashes on this CPU: nothing to compare fp32 with")
        return
    torch.set_num_threads(args.threads)
    print(f"ResNet-20 (conv exit), batch {args.batch_size}, {args.threads} threads")
    for precision in ("fp32", "int4", "binary"):
        plain, _ = step_seconds(precision, False, args.batch_size, args.repeats)
        fast, _ = step_seconds(precision, True, args.batch_size, args.repeats)
        rate = args.batch_size / plain, args.batch_size / fast
        print(
            f"{precision:7s} fp32 {rate[0]:6.0f} img/s | channels-last + bf16 {rate[1]:6.0f} "
            f"img/s ({plain / fast:.2f}x); a 45,000-image epoch {45_000 / rate[1]:.0f} s"
        )
        if args.compile:
            compiled, first = step_seconds(precision, True, args.batch_size, args.repeats, True)
            print(
                f"        + torch.compile {args.batch_size / compiled:6.0f} img/s "
                f"({fast / compiled:.2f}x the fast step), first step {first:.0f} s"
            )


if __name__ == "__main__":
    main()

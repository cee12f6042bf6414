"""RCT, QAT and fp32 fine-tuning of a shipped hybrid's device part, side by side: accuracy on
the test split at an exit threshold chosen on held-out training images, and what each training
costs (fogsim.nn.training_cost), with Huang et al.'s claims beside them.

    python benchmarks/bench_rct_finetune.py [--checkpoint models/cifar10-int4.pt]
        [--images 2000] [--epochs 2] [--lr 0.0001] [--bits 16] [--threads 1] [--json OUT.json]

Every method fine-tunes the same device part (stem, edge blocks, device exit) of the same
checkpoint on the same images, in the same order, for the same epochs, with plain SGD on the
device exit's loss; the cloud part and the BatchNorm statistics stay as shipped
(fogsim.nn.adapt.fine_tune). The images are a seeded subset of the checkpoint's own training
images, never its held-out ones, which choose each fine-tuned network's exit threshold as
training does; the test split only reports. The network keeps its own quantizers (an int4
edge still runs int4 forward passes); the methods differ in how the weights are kept and
updated: fp32, an fp32 master fake-quantized to ``--bits`` (QAT), or integers only, starting at
``--bits`` (RCT). The cost is counted for the GEMMs at the training precisions (fp32; or each
layer's weight bits against 8-bit activations and errors).
"""

from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from fogsim.data.loader import load_dataset
from fogsim.nn.adapt import FineTune, fine_tune, fine_tune_cost
from fogsim.nn.checkpoint import load_checkpoint
from fogsim.nn.evaluate import choose_threshold, hybrid_metrics, predict
from fogsim.nn.rct import Bitwidth
from fogsim.nn.setup import split_train_holdout

METHODS = ("fp32", "qat", "rct")
COST_KEYS = (
    "peak_param_bytes",
    "peak_grad_bytes",
    "peak_optimizer_bytes",
    "gemm_energy_j",
    "param_movement_energy_j",
)
# Huang et al. 2021 (RCT), against fp32 training and QAT.
GEMM_SAVING, MEMORY_SAVING, MOVEMENT_OF_QAT, ACCURACY_POINTS = 0.86, 0.46, 0.5, 1.5


def _splits(ckpt: Any, train: Any, images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The fine-tuning images (a seeded subset of the checkpoint's training images) and the
    checkpoint's held-out images, from its recipe's holdout and seed."""
    recipe = ckpt.card["recipe"]
    spec = SimpleNamespace(holdout=int(recipe["holdout"]), seed=int(recipe["seed"]))
    spec.train_subset = recipe.get("train_subset")
    train_idx, hold_idx = split_train_holdout(len(train.labels), spec)  # type: ignore[arg-type]
    if images > len(train_idx):
        raise SystemExit(f"--images {images}: the checkpoint trained on {len(train_idx)}")
    pick = np.random.default_rng(seed).choice(train_idx, images, replace=False)
    return np.sort(pick), hold_idx


def _accuracy(
    model: Any, ckpt: Any, train: Any, test: Any, hold_idx: np.ndarray, limit: int | None
) -> dict:
    """Test metrics at the threshold chosen on the held-out images (the card's rule and
    accuracy drop); ``limit``: only the first images of each (a quick check of the script)."""
    rule = ckpt.card["default_rule"]
    drop = float(ckpt.card["recipe"]["max_accuracy_drop"])
    hold_idx = hold_idx[:limit]
    hold = predict(model, train.images[hold_idx], train.labels[hold_idx])
    threshold = choose_threshold(hold, rule, drop, len(test.classes))
    m = hybrid_metrics(predict(model, test.images[:limit], test.labels[:limit]), rule, threshold)
    return {
        "threshold": threshold,
        "edge_exit_accuracy": m["accuracy"]["edge"],
        "exit_rate": m["exit_rate"],
        "hybrid_accuracy": m["accuracy"]["hybrid"],
        "cloud_accuracy": m["accuracy"]["cloud"],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    ckpt = load_checkpoint(args.checkpoint)
    name = ckpt.card["dataset"]
    train, test = load_dataset(name, split="train"), load_dataset(name, split="test")
    tune_idx, hold_idx = _splits(ckpt, train, args.images, args.seed)
    # The shipped network's figures are its card's: the same test split and held-out choice.
    card = ckpt.card["test_metrics"]
    rows: dict[str, Any] = {
        "shipped": {
            "threshold": card["threshold"],
            "edge_exit_accuracy": card["accuracy"]["edge"],
            "exit_rate": card["exit_rate"],
            "hybrid_accuracy": card["accuracy"]["hybrid"],
            "cloud_accuracy": card["accuracy"]["cloud"],
        }
    }
    for method in METHODS:
        # QAT trains at a fixed bitwidth; RCT starts at it and adjusts within min..max.
        bitwidth = Bitwidth(start=args.bits, min=2, max=max(args.bits, args.max_bits))
        how = FineTune(
            args.epochs,
            args.batch_size,
            args.lr,
            args.weight_decay,
            args.seed,
            method,
            bitwidth,
            keep_bn_stats=not args.update_bn_stats,
        )
        model = ckpt.build()
        start = time.perf_counter()
        log = fine_tune(model, train.images[tune_idx], train.labels[tune_idx], how)
        seconds = time.perf_counter() - start
        cost = fine_tune_cost(model, len(tune_idx), how, log, None)
        rows[method] = {
            **_accuracy(model, ckpt, train, test, hold_idx, args.eval_images),
            **{k: cost[k] for k in COST_KEYS},
            "train_seconds": seconds,
            "bits_per_epoch": [{k: int(v["bits"]) for k, v in e.items()} for e in log],
        }
        print(f"{method}: fine-tuned in {seconds:.0f} s", flush=True)
    return {
        "checkpoint": str(args.checkpoint),
        "checkpoint_sha256": ckpt.sha256,
        "budget": {
            "images": len(tune_idx),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "weight_decay": args.weight_decay,
            "seed": args.seed,
            "bits": args.bits,
            "max_bits": args.max_bits,
            "bn_stats": "updated" if args.update_bn_stats else "kept",
            "threads": args.threads,
            "eval_images": args.eval_images or "all",
        },
        "methods": rows,
    }


def _claims(r: dict[str, Any]) -> list[str]:
    fp32, qat, rct = (r["methods"][m] for m in METHODS)
    gemm = 1 - rct["gemm_energy_j"] / fp32["gemm_energy_j"]
    memory = 1 - rct["peak_param_bytes"] / fp32["peak_param_bytes"]
    moved = rct["param_movement_energy_j"] / qat["param_movement_energy_j"]
    edge = 100 * (qat["edge_exit_accuracy"] - rct["edge_exit_accuracy"])
    hybrid = 100 * (qat["hybrid_accuracy"] - rct["hybrid_accuracy"])

    def verdict(ok: bool) -> str:
        return "holds" if ok else "DOES NOT HOLD"

    return [
        f"GEMM energy: RCT {gemm:.1%} less than fp32 (claim >= {GEMM_SAVING:.0%}): "
        f"{verdict(gemm >= GEMM_SAVING)}",
        f"parameter memory: RCT {memory:.1%} less than fp32 (claim >= {MEMORY_SAVING:.0%}): "
        f"{verdict(memory >= MEMORY_SAVING)}",
        f"parameter movement: RCT {moved:.0%} of QAT's (claim about {MOVEMENT_OF_QAT:.0%}): "
        f"{'at most half' if moved <= MOVEMENT_OF_QAT else 'more than half'}",
        f"accuracy: QAT minus RCT {edge:+.2f} points at the edge exit, {hybrid:+.2f} hybrid "
        f"(claim within {ACCURACY_POINTS}): {verdict(max(edge, hybrid) <= ACCURACY_POINTS)}",
    ]


def _table(r: dict[str, Any]) -> str:
    lines = [
        "| | edge exit acc | exit rate | hybrid acc | cloud acc | peak param bytes "
        "| + grad + optimiser | GEMM energy J | param movement J | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, m in r["methods"].items():
        if method == "shipped":
            cost = "| | | |"
        else:
            peak = m["peak_param_bytes"] + m["peak_grad_bytes"] + m["peak_optimizer_bytes"]
            cost = (
                f"{m['peak_param_bytes']:,} | {peak:,} | {m['gemm_energy_j']:.4g} | "
                f"{m['param_movement_energy_j']:.4g} | {m['train_seconds']:.0f}"
            )
        lines.append(
            f"| {method} | {m['edge_exit_accuracy']:.2%} | {m['exit_rate']:.1%} | "
            f"{m['hybrid_accuracy']:.2%} | {m['cloud_accuracy']:.2%} | {cost} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="models/cifar10-int4.pt")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.0001)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--bits", type=int, default=16, help="QAT's bits, RCT's first")
    parser.add_argument("--max-bits", type=int, default=16, help="RCT's most bits")
    parser.add_argument(
        "--update-bn-stats",
        action="store_true",
        help="re-estimate BatchNorm running statistics on the fine-tuning batches",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eval-images",
        type=int,
        help="only a seeded sample of this many held-out and test images (a quick check)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = run(args)
    print(json.dumps(result["budget"]))
    print(_table(result))
    print("\n".join(_claims(result)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

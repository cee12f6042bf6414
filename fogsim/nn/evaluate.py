"""Outputs of a HybridNet over a set of images, and the metrics of an exit policy on them."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from fogsim.nn.hybrid import TIERS, HybridNet, exits_early, softmax_entropy

Thresholds = float | Sequence[float]
"""One threshold for every exit, or one per exit."""


@dataclass(frozen=True)
class ExitOutputs:
    """Per-image outputs at every exit and at the final (cloud) output."""

    labels: np.ndarray  # int64 (N,)
    exit_entropy: np.ndarray  # float32 (N, E)
    exit_maxprob: np.ndarray  # float32 (N, E)
    exit_pred: np.ndarray  # int64 (N, E)
    cloud_pred: np.ndarray  # int64 (N,)


def to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC images to float NCHW in [0, 1] (the network normalises them itself)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255


def predict(
    model: HybridNet,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int = 512,
    on_features: Callable[[torch.Tensor], None] | None = None,
    on_fog_features: Callable[[torch.Tensor], None] | None = None,
    progress: bool = False,
) -> ExitOutputs:
    """Run the device, fog and cloud parts batch by batch; hand each batch's features on, as
    the device sends them (``on_features``) and as the fog sends them (``on_fog_features``,
    three-part networks only)."""
    model.eval()
    device = model.input_mean.device
    ent, maxp, epred, cpred = [], [], [], []
    starts = range(0, len(images), batch_size)
    with torch.inference_mode():
        for s in tqdm(starts, desc="inference", unit="batch", disable=not progress):
            features, logits = model.edge(to_input(images[s : s + batch_size]).to(device))
            if on_features is not None:
                on_features(features.cpu())
            if model.fog_split is not None:
                features, fog_logits = model.fog(features)
                logits = logits + fog_logits
                if on_fog_features is not None:
                    on_fog_features(features.cpu())
            cpred.append(model.cloud(features).argmax(-1).cpu())
            logits = [t.cpu() for t in logits]
            stacked = torch.stack(logits, 1) if logits else torch.zeros(len(features), 0, 1)
            ent.append(softmax_entropy(stacked))
            maxp.append(torch.softmax(stacked, -1).amax(-1))
            epred.append(stacked.argmax(-1))
    return ExitOutputs(
        labels=np.asarray(labels, dtype=np.int64),
        exit_entropy=torch.cat(ent).numpy().astype(np.float32),
        exit_maxprob=torch.cat(maxp).numpy().astype(np.float32),
        exit_pred=torch.cat(epred).numpy().astype(np.int64),
        cloud_pred=torch.cat(cpred).numpy().astype(np.int64),
    )


def per_exit(threshold: Thresholds, n_exits: int) -> tuple[float, ...]:
    """One threshold per exit: a single one repeated, or a sequence of exactly ``n_exits``."""
    if isinstance(threshold, numbers.Real):
        return (float(threshold),) * n_exits
    values = tuple(float(t) for t in threshold)
    if len(values) != n_exits:
        raise ValueError(f"{len(values)} thresholds for {n_exits} exits; give one per exit")
    return values


def exit_index(out: ExitOutputs, rule: str, threshold: Thresholds) -> np.ndarray:
    """The first exit each image leaves at under the rule, or -1 where it goes to the cloud."""
    n_exits = out.exit_entropy.shape[1]
    # Compared at float32, the outputs' precision, as a single scalar threshold is.
    limit = (
        threshold
        if isinstance(threshold, numbers.Real)
        else torch.tensor(per_exit(threshold, n_exits), dtype=torch.float32)
    )
    fires = exits_early(
        torch.from_numpy(out.exit_entropy), torch.from_numpy(out.exit_maxprob), rule, limit
    ).numpy()
    first = fires.argmax(axis=1) if fires.shape[1] else np.zeros(len(fires), dtype=np.int64)
    return np.where(fires.any(axis=1), first, -1)


def hybrid_metrics(out: ExitOutputs, rule: str, threshold: Thresholds) -> dict[str, object]:
    """Exit rate and the accuracies of each exit alone, the cloud path, and the hybrid.
    ``edge`` is the last exit's accuracy alone (the device's, on a two-part network)."""
    n_exits = out.exit_pred.shape[1]
    thresholds = per_exit(threshold, n_exits)
    idx = exit_index(out, rule, threshold)
    rows = np.arange(len(idx))
    hybrid_pred = np.where(idx >= 0, out.exit_pred[rows, np.maximum(idx, 0)], out.cloud_pred)
    per_exit_acc = [float((out.exit_pred[:, e] == out.labels).mean()) for e in range(n_exits)]
    return {
        "rule": rule,
        # One number where every exit has the same threshold; null where they differ.
        "threshold": _common(threshold, thresholds),
        "thresholds": list(thresholds),
        "exit_rate": float((idx >= 0).mean()),
        "exit_rate_per_exit": [float((idx == e).mean()) for e in range(n_exits)],
        "accuracy": {
            "edge": per_exit_acc[-1] if per_exit_acc else None,
            "edge_per_exit": per_exit_acc,
            "cloud": float((out.cloud_pred == out.labels).mean()),
            "hybrid": float((hybrid_pred == out.labels).mean()),
        },
    }


def _common(threshold: Thresholds, thresholds: tuple[float, ...]) -> float | None:
    if isinstance(threshold, numbers.Real):
        return float(threshold)
    return thresholds[0] if len(set(thresholds)) == 1 else None


def tier_metrics(
    out: ExitOutputs, rule: str, threshold: Thresholds, exit_tiers: Sequence[str]
) -> dict[str, dict[str, object]]:
    """Per tier (device, fog, cloud): its exits, the share of images answered there
    (``exit_rate``; the three sum to 1), the accuracy of those answers (None where it
    answers none), and the accuracy of its last exit, or the final output, on every image."""
    idx = exit_index(out, rule, threshold)
    rows = np.arange(len(idx))
    answer = np.where(idx >= 0, out.exit_pred[rows, np.maximum(idx, 0)], out.cloud_pred)
    tier_of = np.array([*exit_tiers, "cloud"])[np.where(idx >= 0, idx, len(exit_tiers))]
    report: dict[str, dict[str, object]] = {}
    for tier in TIERS:
        exits = [e for e, t in enumerate(exit_tiers) if t == tier]
        here = tier_of == tier
        if tier == "cloud":
            alone = out.cloud_pred
        else:
            alone = out.exit_pred[:, exits[-1]] if exits else None
        report[tier] = {
            "exits": exits,
            "exit_rate": float(here.mean()) if len(here) else 0.0,
            "accuracy": float((answer[here] == out.labels[here]).mean()) if here.any() else None,
            "accuracy_alone": None if alone is None else float((alone == out.labels).mean()),
        }
    return report


def threshold_grid(rule: str, num_classes: int, points: int = 41) -> np.ndarray:
    """Thresholds spanning the rule's whole range (entropy 0..ln C, max-probability 1/C..1)."""
    if rule == "entropy":
        return np.linspace(0.0, math.log(num_classes), points)
    return np.linspace(1.0 / num_classes, 1.0, points)


def choose_threshold(
    out: ExitOutputs, rule: str, max_accuracy_drop: float, num_classes: int
) -> float:
    """The threshold, shared by every exit, exiting the most images whose hybrid accuracy
    stays within ``max_accuracy_drop`` of the cloud path. Call it on held-out training data
    only."""
    cloud = float((out.cloud_pred == out.labels).mean())
    best_rate, best = -1.0, threshold_grid(rule, num_classes, 401)[0]
    for t in threshold_grid(rule, num_classes, 401):
        m = hybrid_metrics(out, rule, float(t))
        if m["accuracy"]["hybrid"] >= cloud - max_accuracy_drop and m["exit_rate"] > best_rate:
            best_rate, best = m["exit_rate"], t
    return float(best)


def choose_thresholds(
    out: ExitOutputs, rule: str, max_accuracy_drop: float, num_classes: int
) -> tuple[float, ...]:
    """One threshold per exit, the hybrid accuracy within ``max_accuracy_drop`` of the cloud
    path, exiting the most images and the earliest: each image scores the number of exits
    after the one that answers it, plus one (0 in the cloud). Coordinate ascent from the
    shared ``choose_threshold``, one exit at a time over the same grid; with one exit it is
    that threshold. Call it on held-out training data only."""
    n_exits = out.exit_pred.shape[1]
    cloud = float((out.cloud_pred == out.labels).mean())
    grid = [float(t) for t in threshold_grid(rule, num_classes, 401)]
    best = list(per_exit(choose_threshold(out, rule, max_accuracy_drop, num_classes), n_exits))
    best_score = _score(out, rule, best)
    improved = True
    while improved:
        improved = False
        for e in range(n_exits):
            for t in grid:
                trial = [*best[:e], t, *best[e + 1 :]]
                m = hybrid_metrics(out, rule, trial)
                if m["accuracy"]["hybrid"] < cloud - max_accuracy_drop:
                    continue
                score = _score(out, rule, trial)
                # Strictly better only: the loop ends, and ties keep the earlier choice.
                if score > best_score + 1e-12:
                    best, best_score, improved = trial, score, True
    return tuple(best)


def _score(out: ExitOutputs, rule: str, thresholds: Sequence[float]) -> float:
    idx = exit_index(out, rule, thresholds)
    return float(np.where(idx >= 0, out.exit_pred.shape[1] - idx, 0).mean())

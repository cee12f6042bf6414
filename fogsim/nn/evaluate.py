"""Outputs of a HybridNet over a set of images, and the metrics of an exit policy on them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from fogsim.nn.hybrid import HybridNet, exits_early, softmax_entropy


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
    progress: bool = False,
) -> ExitOutputs:
    """Run the edge then the cloud part batch by batch; hand each batch's split tensor on."""
    model.eval()
    device = model.input_mean.device
    ent, maxp, epred, cpred = [], [], [], []
    starts = range(0, len(images), batch_size)
    with torch.inference_mode():
        for s in tqdm(starts, desc="inference", unit="batch", disable=not progress):
            features, logits = model.edge(to_input(images[s : s + batch_size]).to(device))
            if on_features is not None:
                on_features(features.cpu())
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


def exit_index(out: ExitOutputs, rule: str, threshold: float) -> np.ndarray:
    """The first exit each image leaves at under the rule, or -1 where it goes to the cloud."""
    fires = exits_early(
        torch.from_numpy(out.exit_entropy), torch.from_numpy(out.exit_maxprob), rule, threshold
    ).numpy()
    first = fires.argmax(axis=1) if fires.shape[1] else np.zeros(len(fires), dtype=np.int64)
    return np.where(fires.any(axis=1), first, -1)


def hybrid_metrics(out: ExitOutputs, rule: str, threshold: float) -> dict[str, object]:
    """Exit rate and the accuracies of each edge exit alone, the cloud path, and the hybrid."""
    idx = exit_index(out, rule, threshold)
    rows = np.arange(len(idx))
    hybrid_pred = np.where(idx >= 0, out.exit_pred[rows, np.maximum(idx, 0)], out.cloud_pred)
    per_exit = [
        float((out.exit_pred[:, e] == out.labels).mean()) for e in range(out.exit_pred.shape[1])
    ]
    return {
        "rule": rule,
        "threshold": float(threshold),
        "exit_rate": float((idx >= 0).mean()),
        "exit_rate_per_exit": [float((idx == e).mean()) for e in range(out.exit_pred.shape[1])],
        "accuracy": {
            "edge": per_exit[-1] if per_exit else None,
            "edge_per_exit": per_exit,
            "cloud": float((out.cloud_pred == out.labels).mean()),
            "hybrid": float((hybrid_pred == out.labels).mean()),
        },
    }


def threshold_grid(rule: str, num_classes: int, points: int = 41) -> np.ndarray:
    """Thresholds spanning the rule's whole range (entropy 0..ln C, max-probability 1/C..1)."""
    if rule == "entropy":
        return np.linspace(0.0, math.log(num_classes), points)
    return np.linspace(1.0 / num_classes, 1.0, points)


def choose_threshold(
    out: ExitOutputs, rule: str, max_accuracy_drop: float, num_classes: int
) -> float:
    """The threshold exiting the most images whose hybrid accuracy stays within
    ``max_accuracy_drop`` of the cloud path. Call it on held-out training data only."""
    cloud = float((out.cloud_pred == out.labels).mean())
    best_rate, best = -1.0, threshold_grid(rule, num_classes, 401)[0]
    for t in threshold_grid(rule, num_classes, 401):
        m = hybrid_metrics(out, rule, float(t))
        if m["accuracy"]["hybrid"] >= cloud - max_accuracy_drop and m["exit_rate"] > best_rate:
            best_rate, best = m["exit_rate"], t
    return float(best)

"""On-device adaptation: RCT fine-tuning of a HybridNet's device part, and what it costs.

Only the device part learns (its stem, its blocks and the exit heads on the device), on the
loss of its exits: the device has its own images and labels but not the cloud part. The
cloud part is left as it is, so the features the device sends keep their shape and the cloud
reads them as before (what changes in them shows in the cloud's real predictions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fogsim.nn.evaluate import to_input
from fogsim.nn.hybrid import HybridNet
from fogsim.nn.ops import part_of
from fogsim.nn.rct import Bitwidth, LowPrecisionTraining
from fogsim.nn.training_cost import Schedule, network_layers, training_cost

DEVICE = "device"


@dataclass(frozen=True)
class FineTune:
    """How the device part is fine-tuned: plain SGD on RCT's integer weights (``method``
    ``rct``), on an fp32 master copy (``qat``) or on fp32 weights (``fp32``)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int
    method: str = "rct"
    bitwidth: Bitwidth | None = None  # None: Bitwidth()
    # Freeze BatchNorm: normalise by the shipped running statistics, in training as in
    # inference, and leave them as they are (rather than re-estimating them from batches of a
    # few dozen images, and training on batch statistics that inference does not use).
    keep_bn_stats: bool = False


def device_modules(model: HybridNet) -> nn.ModuleDict:
    """The device part's top-level modules, by their names in ``model``."""
    parts = {"stem": model.stem}
    parts.update({f"blocks_{i}": model.blocks[i] for i in range(model.split)})
    for i, (head, tier) in enumerate(zip(model.exits, model.exit_tiers, strict=True)):
        if tier == DEVICE:
            parts[f"exits_{i}"] = head
    return nn.ModuleDict(parts)


def fine_tune(
    model: HybridNet, images: np.ndarray, labels: np.ndarray, how: FineTune
) -> list[dict[str, dict[str, float]]]:
    """Fine-tune ``model``'s device part in place on ``images`` (uint8 N x H x W x C) and
    ``labels``; return the per-layer bitwidth log, one entry per epoch (none for fp32).
    Deterministic for ``how.seed``: the batch order and the stochastic rounding draw from it
    alone."""
    if DEVICE not in model.exit_tiers:
        raise ValueError("the network has no exit on the device, so the device cannot adapt")
    part = device_modules(model)
    x_all = to_input(images)
    y_all = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    log: list[dict[str, dict[str, float]]] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(how.seed)
        gen = torch.Generator().manual_seed(how.seed)
        model.eval()
        part.train()
        for p in model.parameters():
            p.requires_grad_(False)
        for p in part.parameters():
            p.requires_grad_(True)
        if how.keep_bn_stats:
            for m in part.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        low = None
        if how.method != "fp32":
            low = LowPrecisionTraining(part, how.method, how.bitwidth or Bitwidth())
        trained = [p for p in part.parameters() if p.requires_grad]
        opt = torch.optim.SGD(trained, lr=how.lr, weight_decay=how.weight_decay)
        for epoch in range(how.epochs):
            for idx in torch.randperm(len(y_all), generator=gen).split(how.batch_size):
                _, logits = model.edge(x_all[idx])
                device_logits = [
                    out
                    for out, tier in zip(logits, model.exit_tiers, strict=False)
                    if tier == DEVICE
                ]
                loss = sum(F.cross_entropy(out, y_all[idx]) for out in device_logits)
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[union-attr]
                opt.step()
                if low is not None:
                    low.step(how.lr, how.weight_decay)
            if low is not None:
                log.append(low.end_epoch(adjust=epoch + 1 < how.epochs))
        if low is not None:
            low.finish()
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    return log


def fine_tune_cost(
    model: HybridNet, samples: int, how: FineTune, log: list[dict[str, Any]], table: str | None
) -> dict[str, Any]:
    """Op counts and counted energy of the fine-tuning (``fogsim.nn.training_cost``): three
    GEMMs per layer, image and epoch at each layer's bitwidth; parameter bytes moved."""
    layers, _ = network_layers(model)
    ours = [layer for layer in layers if part_of(layer.name, model) == DEVICE]
    names = {f"{_key(layer.name)}": layer.name for layer in ours}
    bits = [{names[k]: int(v["bits"]) for k, v in entry.items()} for entry in log]
    other = sum(
        p.numel() for n, p in model.named_parameters() if part_of(n, model) == DEVICE
    ) - sum(layer.weights for layer in ours)
    schedule = Schedule(how.epochs, samples, how.batch_size)
    cost = training_cost(ours, other, how.method, bits, schedule, table)
    cost["training_macs"] = 3 * sum(layer.macs for layer in ours) * samples * how.epochs
    return cost


def _key(name: str) -> str:
    """A layer's name in ``device_modules`` from its name in the HybridNet."""
    top, _, rest = name.partition(".")
    if top in ("blocks", "exits"):
        index, _, rest = rest.partition(".")
        return f"{top}_{index}.{rest}" if rest else f"{top}_{index}"
    return name

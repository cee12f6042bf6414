"""Op accounting of a HybridNet: MACs and parameter bytes by part and precision.

A MAC is one multiply-accumulate at its precision; a binary MAC is one
XNOR-popcount bit-op. BatchNorm, pooling and residual adds are not counted: at
inference BN folds into the conv or a threshold, and the rest is a few percent
of the conv MACs.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from fogsim.nn.hybrid import HybridNet
from fogsim.nn.quant import BITS


@dataclass(frozen=True)
class PartOps:
    """Compute and storage of one part (edge or cloud)."""

    macs: dict[str, int]
    param_bytes: dict[str, int]


@dataclass(frozen=True)
class OpReport:
    """Op counts of a HybridNet, and the size of what the edge sends to the cloud."""

    edge: PartOps
    cloud: PartOps
    edge_to_exit: tuple[dict[str, int], ...]
    full_macs: dict[str, int]
    feature_shape: tuple[int, ...]
    feature_bytes: int


def _macs_of(module: nn.Module, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return out[0].numel() * (module.in_channels // module.groups) * kh * kw
    return module.in_features * module.out_features


def _layer_macs(model: HybridNet) -> tuple[dict[str, tuple[str, int]], torch.Tensor]:
    """MACs and op precision of every conv/linear layer, by qualified name, for one image."""
    found: dict[str, tuple[str, int]] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):

            def hook(m: nn.Module, _inp: object, out: torch.Tensor, name: str = name) -> None:
                found[name] = (getattr(m, "op_precision", "fp32"), _macs_of(m, out))

            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            features, _ = model.edge(torch.zeros(1, *model.input_shape))
            model.cloud(features)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return found, features


def _part_of(name: str, split: int) -> str:
    top = name.split(".")[0]
    if top == "blocks":
        return "edge" if int(name.split(".")[1]) < split else "cloud"
    return "cloud" if top == "final" else "edge"


def _sum(layers: dict[str, tuple[str, int]], keep: object) -> dict[str, int]:
    total: Counter[str] = Counter()
    for name, (precision, macs) in layers.items():
        if keep(name):
            total[precision] += macs
    return dict(total)


def _in_trunk(name: str, n_blocks: int) -> bool:
    top = name.split(".")[0]
    return top == "stem" or (top == "blocks" and int(name.split(".")[1]) < n_blocks)


def _param_bytes(model: HybridNet, part: str) -> dict[str, int]:
    bits: Counter[str] = Counter()
    quantized = {
        f"{n}.weight": m.weight_precision
        for n, m in model.named_modules()
        if hasattr(m, "weight_precision")
    }
    for name, p in model.named_parameters():
        if _part_of(name, model.split) == part:
            bits[quantized.get(name, "fp32")] += p.numel() * BITS[quantized.get(name, "fp32")]
    for name, b in model.named_buffers():
        # BN running statistics are stored with the model; input normalisation folds into the stem.
        if (
            b.is_floating_point()
            and not name.startswith("input_")
            and _part_of(name, model.split) == part
        ):
            bits["fp32"] += b.numel() * 32
    return {precision: math.ceil(n / 8) for precision, n in bits.items()}


def count_ops(model: HybridNet) -> OpReport:
    """Count MACs by precision per part, per exit, and for the whole exit-free path."""
    layers, features = _layer_macs(model)
    split = model.split
    edge = _sum(layers, lambda n: _part_of(n, split) == "edge")
    cloud = _sum(layers, lambda n: _part_of(n, split) == "cloud")
    to_exit = tuple(
        _sum(
            layers,
            lambda n, e=e, point=point: (
                _in_trunk(n, point) or (n.startswith("exits.") and int(n.split(".")[1]) <= e)
            ),
        )
        for e, point in enumerate(model.exit_points)
    )
    full = _sum(layers, lambda n: not n.startswith("exits."))
    shape = tuple(features.shape[1:])
    return OpReport(
        edge=PartOps(edge, _param_bytes(model, "edge")),
        cloud=PartOps(cloud, _param_bytes(model, "cloud")),
        edge_to_exit=to_exit,
        full_macs=full,
        feature_shape=shape,
        feature_bytes=math.ceil(math.prod(shape) * BITS[model.edge_act_precision] / 8),
    )

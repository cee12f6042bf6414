"""Op accounting of a HybridNet: MACs and parameter bytes by part and precision.

A MAC is one multiply-accumulate at its precision; a binary MAC is one
XNOR-popcount bit-op. BatchNorm, pooling and residual adds are not counted: at
inference BN folds into the conv or a threshold, and the rest is a few percent
of the conv MACs.

Parts are named by the tier that runs them: ``device``, ``fog`` (three-part networks
only; empty otherwise) and ``cloud``. The ``edge`` fields are the device part's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from fogsim.nn.hybrid import HybridNet
from fogsim.nn.quant import BITS


@dataclass(frozen=True)
class PartOps:
    """Compute and storage of one part (device, fog or cloud)."""

    macs: dict[str, int]
    param_bytes: dict[str, int]


@dataclass(frozen=True)
class Boundary:
    """The features one part sends to the next, at the sender's activation precision."""

    sender: str
    receiver: str
    precision: str
    shape: tuple[int, ...]
    bytes: int  # bit-packed, before compression


@dataclass(frozen=True)
class OpReport:
    """Op counts of a HybridNet by part, per exit, and the features crossing each boundary."""

    edge: PartOps  # the device part
    fog: PartOps  # empty on a two-part network
    cloud: PartOps
    edge_to_exit: tuple[dict[str, int], ...]  # device MACs to reach each exit
    fog_to_exit: tuple[dict[str, int], ...]  # fog MACs to reach each exit ({} on the device)
    exit_tiers: tuple[str, ...]
    full_macs: dict[str, int]  # input to final output, no exit heads (the cloud_only path)
    boundaries: tuple[Boundary, ...]  # device->cloud, or device->fog and fog->cloud
    # Memory traffic (_traffic_bytes) and conv/linear layer count of the device part,
    # whole and to reach each exit: what the device roofline (fogsim.sim.roofline) reads.
    edge_bytes: int = 0
    edge_bytes_to_exit: tuple[int, ...] = ()
    edge_layers: int = 0
    edge_layers_to_exit: tuple[int, ...] = ()

    @property
    def parts(self) -> dict[str, PartOps]:
        """The parts by tier name; a two-part network's fog part is empty."""
        return {"device": self.edge, "fog": self.fog, "cloud": self.cloud}

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of the features the device sends (one image)."""
        return self.boundaries[0].shape

    @property
    def feature_bytes(self) -> int:
        """Bytes of the features the device sends, bit-packed at its activation precision."""
        return self.boundaries[0].bytes


def _macs_of(module: nn.Module, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return out[0].numel() * (module.in_channels // module.groups) * kh * kw
    return module.in_features * module.out_features


def _traffic_bytes(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Bytes a layer moves for one image: its weights at their bitwidth, and its input and
    output activations at the layer's op precision (biases and BN statistics not counted)."""
    act_bits = BITS[getattr(module, "op_precision", "fp32")]
    weight_bits = BITS[getattr(module, "weight_precision", "fp32")]
    bits = module.weight.numel() * weight_bits + (inp[0].numel() + out[0].numel()) * act_bits
    return math.ceil(bits / 8)


def _layer_macs(
    model: HybridNet, traffic: dict[str, int] | None = None
) -> tuple[dict[str, tuple[str, int]], list[torch.Tensor]]:
    """MACs and op precision of every conv/linear layer, by qualified name, for one image;
    and the features sent at each boundary. ``traffic``, when given, receives each layer's
    memory traffic in bytes (``_traffic_bytes``)."""
    found: dict[str, tuple[str, int]] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):

            def hook(m: nn.Module, _inp: object, out: torch.Tensor, name: str = name) -> None:
                found[name] = (getattr(m, "op_precision", "fp32"), _macs_of(m, out))
                if traffic is not None:
                    traffic[name] = _traffic_bytes(m, _inp[0], out)  # type: ignore[index]

            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            sent, _ = model.edge(torch.zeros(1, *model.input_shape))
            features = [sent]
            if model.fog_split is not None:
                sent, _ = model.fog(sent)
                features.append(sent)
            model.cloud(sent)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return found, features


def part_of(name: str, model: HybridNet) -> str:
    """The tier that holds the parameter, buffer or layer ``name`` of ``model``."""
    top, _, rest = name.partition(".")
    index = int(rest.split(".")[0]) if top in ("blocks", "exits") else 0
    if top == "blocks":
        if index < model.split:
            return "device"
        return "fog" if index < model.cloud_start else "cloud"
    if top == "exits":
        return model.exit_tiers[index]
    if top == "final":
        return "cloud"
    return "fog" if top == "fog_quant" else "device"


def _sum(layers: dict[str, tuple[str, int]], keep: Callable[[str], bool]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for name, (precision, macs) in layers.items():
        if keep(name):
            total[precision] += macs
    return dict(total)


def _reaches(name: str, head: int, point: int) -> bool:
    """Whether reaching exit ``head`` (after block ``point``) runs layer ``name``: the stem,
    the blocks up to the point, and every exit head up to this one."""
    top, _, rest = name.partition(".")
    if top == "blocks":
        return int(rest.split(".")[0]) < point
    if top == "exits":
        return int(rest.split(".")[0]) <= head
    return top == "stem"


def _param_bytes(model: HybridNet, part: str) -> dict[str, int]:
    bits: Counter[str] = Counter()
    quantized = {
        f"{n}.weight": m.weight_precision
        for n, m in model.named_modules()
        if hasattr(m, "weight_precision")
    }
    for name, p in model.named_parameters():
        if part_of(name, model) == part:
            bits[quantized.get(name, "fp32")] += p.numel() * BITS[quantized.get(name, "fp32")]
    for name, b in model.named_buffers():
        # BN running statistics are stored with the model; input normalisation folds into the stem.
        if b.is_floating_point() and not name.startswith("input_") and part_of(name, model) == part:
            bits["fp32"] += b.numel() * 32
    return {precision: math.ceil(n / 8) for precision, n in bits.items()}


def _boundaries(model: HybridNet, features: list[torch.Tensor]) -> tuple[Boundary, ...]:
    tiers = model.tiers
    precisions = (model.edge_act_precision, model.fog_act_precision)
    return tuple(
        Boundary(
            tiers[i],
            tiers[i + 1],
            precisions[i],
            tuple(f.shape[1:]),
            math.ceil(f[0].numel() * BITS[precisions[i]] / 8),
        )
        for i, f in enumerate(features)
    )


def all_fp32(ops: dict[str, int]) -> dict[str, int]:
    """The same MACs, all at fp32: the network run at full precision."""
    return {"fp32": int(sum(ops.values()))}


def count_ops(model: HybridNet) -> OpReport:
    """Count MACs by precision per part, per exit and tier, and for the whole exit-free path."""
    traffic: dict[str, int] = {}
    layers, features = _layer_macs(model, traffic)

    def in_part(part: str) -> Callable[[str], bool]:
        return lambda name: part_of(name, model) == part

    def to_exit(part: str) -> tuple[dict[str, int], ...]:
        # A fog exit reaches through the whole device part, every device exit head included.
        return tuple(
            _sum(layers, lambda n, e=e, p=p: _reaches(n, e, p) and part_of(n, model) == part)
            for e, p in enumerate(model.exit_points)
        )

    def on_device_to(e: int, p: int) -> list[str]:
        return [n for n in layers if _reaches(n, e, p) and part_of(n, model) == "device"]

    device_layers = [n for n in layers if part_of(n, model) == "device"]
    to_exits = [on_device_to(e, p) for e, p in enumerate(model.exit_points)]
    parts = {
        part: PartOps(_sum(layers, in_part(part)), _param_bytes(model, part))
        for part in ("device", "fog", "cloud")
    }
    return OpReport(
        edge=parts["device"],
        fog=parts["fog"],
        cloud=parts["cloud"],
        edge_to_exit=to_exit("device"),
        fog_to_exit=to_exit("fog"),
        exit_tiers=model.exit_tiers,
        full_macs=_sum(layers, lambda n: not n.startswith("exits.")),
        boundaries=_boundaries(model, features),
        edge_bytes=sum(traffic[n] for n in device_layers),
        edge_bytes_to_exit=tuple(sum(traffic[n] for n in names) for names in to_exits),
        edge_layers=len(device_layers),
        edge_layers_to_exit=tuple(len(names) for names in to_exits),
    )

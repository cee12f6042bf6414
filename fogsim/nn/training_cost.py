"""What a training run costs: peak bytes of parameters, gradients and optimiser state, GEMM
energy and parameter-movement energy, for fp32, QAT and RCT training (``fogsim.nn.rct``).

Counted from op counts and the sourced table (profiles/energy_per_op.yaml), not measured:

- GEMMs: every conv and linear layer runs three per image and step, each with the layer's MACs:
  the forward pass (weights x activations), the input gradient (weights x errors) and the
  weight gradient (errors x activations). fp32 training runs them in fp32; QAT and RCT at the
  layer's weight bits against 8-bit activations and errors. A MAC of a b-bit by an a-bit
  operand costs the int8 MAC x (b a / 64): a multiplier's energy scales with the product of
  its operand widths (the table's own derivation of int4 and int2; used up to RCT's widest,
  16-bit weights, as Horowitz's int32 multiply, 3.1 pJ, is 15.5 times the int8 one's 0.2).
  The first layer's input gradient, which nobody needs, is counted too (alike for every method).
- Parameter movement, per step, from DRAM: fp32 reads its weights for the forward and the
  backward pass and reads and writes them in the update (4 accesses of 4 bytes a weight). QAT
  reads its fp32 master to quantize it, writes the int8 copy, reads that copy in the forward
  and backward pass, and reads and writes the master in the update (3 of 4 bytes, 3 of 1).
  RCT does what fp32 does on its integer weights (4 of 1 byte, or of 2 for a layer above 8
  bits, stored as int16), in each epoch at that epoch's bits. Integer weights move with their
  fp32 per-channel scales. BatchNorm parameters and biases (fp32 in every method) move as
  fp32's weights do, and optimiser state is read and written once per step.
- Optimiser state: SGD's momentum is one fp32 value per fp32 parameter it updates (fp32's and
  QAT's weights, every method's BatchNorm parameters and biases), Adam's two. RCT with momentum
  keeps its integer weights' momentum as int8 with one fp32 scale a channel (``fogsim.nn.rct``):
  1 byte a weight and 4 a channel, at every weight bitwidth, read and written once per step.
- Frozen parts (a recipe's ``freeze:``, fp32 training only): their layers run the forward
  GEMM alone, their parameters are read once a step (the forward pass) and are stored, but
  have no gradients and no optimiser state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from fogsim.energy import _tables, default_table, energy_per_mac
from fogsim.nn.ops import _layer_macs
from fogsim.nn.rct import ACT_BITS, quantized_layers
from fogsim.units import ENERGY_PER_BIT

FP32_BITS = 32
MEMORY = "dram"
# Accesses of each stored form of a weight in one step (see the module docstring).
_ACCESSES = {
    "fp32": {"fp32": 4, "int": 0},
    "qat": {"fp32": 3, "int": 3},
    "rct": {"fp32": 0, "int": 4},
}
CONTRACT_KEYS = ("method", "peak_param_bytes", "gemm_energy_j", "param_movement_energy_j")


@dataclass(frozen=True)
class Layer:
    """A conv or linear layer: its weights, output channels (one scale each when quantized)
    and MACs per image."""

    name: str
    weights: int
    channels: int
    macs: int


@dataclass(frozen=True)
class Schedule:
    """How much training a run does, and what its optimiser keeps."""

    epochs: int
    images_per_epoch: int
    batch_size: int
    optimizer: str = "sgd"
    momentum: float = 0.0

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.images_per_epoch / self.batch_size)


def network_layers(model: nn.Module) -> tuple[list[Layer], int]:
    """The conv and linear layers of a plain (unwrapped) network, and the number of its other
    parameters (BatchNorm, biases)."""
    macs, _ = _layer_macs(model)
    layers = [
        Layer(name, m.weight.numel(), m.weight.shape[0], macs[name][1])
        for name, m in quantized_layers(model)
    ]
    other = sum(p.numel() for p in model.parameters()) - sum(layer.weights for layer in layers)
    return layers, other


def mac_energy_j(weight_bits: int, act_bits: int, table: str | None = None) -> float:
    """Joules of one MAC of a ``weight_bits`` by an ``act_bits`` operand."""
    per_mac = energy_per_mac(table)
    if max(weight_bits, act_bits) > 16:
        return per_mac["fp32"]
    return per_mac["int8"] * weight_bits * act_bits / 64


def memory_energy_per_bit(table: str | None = None, memory: str = MEMORY) -> tuple[float, str]:
    """Joules per bit moved to or from ``memory`` (dram, sram), and the figure's source."""
    entry = _tables()["tables"][table or default_table()]["memory_access_per_bit"][memory]
    return ENERGY_PER_BIT.parse(entry["value"]), str(entry["source"])


def _integer_bytes(layer: Layer, bits: int) -> int:
    """Bytes of a layer's integer weights at ``bits`` (int8, int16 above 8) and its scales."""
    return layer.weights * (1 if bits <= 8 else 2) + 4 * layer.channels


def _optimizer_values(schedule: Schedule) -> int:
    """State values the optimiser keeps per fp32 parameter it updates."""
    if schedule.optimizer == "adam":
        return 2
    return 1 if schedule.momentum > 0 else 0


def _optimizer_bytes(layers: list[Layer], other_params: int, method: str, s: Schedule) -> int:
    """Bytes of optimiser state: fp32 for every fp32 parameter, int8 plus a scale a channel
    for RCT's integer weights."""
    values = _optimizer_values(s)
    if method != "rct":
        return 4 * values * (other_params + sum(layer.weights for layer in layers))
    int8_momentum = sum(layer.weights + 4 * layer.channels for layer in layers)
    return 4 * values * other_params + (int8_momentum if values else 0)


def training_cost(
    layers: list[Layer],
    other_params: int,
    method: str,
    bits_per_epoch: list[dict[str, int]] | None,
    schedule: Schedule,
    table: str | None = None,
    frozen: tuple[list[Layer], int] = ([], 0),
) -> dict[str, Any]:
    """Peak bytes and energy of training ``layers`` with ``method`` (fp32, qat, rct); each
    layer's weight bits in each epoch come from ``bits_per_epoch`` (ignored for fp32).
    ``frozen``: the layers and the number of other parameters held fixed (fp32 only), which
    run forward only."""
    if method != "fp32" and (not bits_per_epoch or len(bits_per_epoch) < schedule.epochs):
        raise ValueError(f"{method} training needs each layer's bits in each of its epochs")
    frozen_layers, frozen_other = frozen
    if method != "fp32" and (frozen_layers or frozen_other):
        raise ValueError(f"{method} training trains every layer; nothing can be frozen")
    frozen_params = sum(layer.weights for layer in frozen_layers) + frozen_other
    forward_j = sum(layer.macs for layer in frozen_layers) * mac_energy_j(
        FP32_BITS, FP32_BITS, table
    )
    weights = sum(layer.weights for layer in layers)
    optimizer_bytes = _optimizer_bytes(layers, other_params, method, schedule)
    fp32_step = 4 * 4 * other_params + 2 * optimizer_bytes
    per_bit, _ = memory_energy_per_bit(table)
    gemm, moved, peak = 0.0, 0, 0
    for epoch in range(schedule.epochs):
        bits = bits_per_epoch[epoch] if bits_per_epoch else {}
        # The integer form: int8 (int16 above 8 bits) weights and one fp32 scale a channel.
        int_form = sum(_integer_bytes(layer, bits.get(layer.name, 8)) for layer in layers)
        stored = {"fp32": 4 * weights, "int": int_form}
        kept = {"fp32": ("fp32",), "qat": ("fp32", "int"), "rct": ("int",)}[method]
        peak = max(peak, sum(stored[form] for form in kept) + 4 * (other_params + frozen_params))
        per_step = sum(n * stored[form] for form, n in _ACCESSES[method].items()) + fp32_step
        moved += (per_step + 4 * frozen_params) * schedule.steps_per_epoch
        gemm += forward_j * schedule.images_per_epoch
        for layer in layers:
            if method == "fp32":
                per_image = 3 * mac_energy_j(FP32_BITS, FP32_BITS, table)
            else:
                per_image = 2 * mac_energy_j(bits[layer.name], ACT_BITS, table)
                per_image += mac_energy_j(ACT_BITS, ACT_BITS, table)
            gemm += layer.macs * per_image * schedule.images_per_epoch
    steps = schedule.steps_per_epoch * schedule.epochs
    return {
        "method": method,
        "peak_param_bytes": peak,
        "peak_grad_bytes": 4 * (weights + other_params),
        "peak_optimizer_bytes": optimizer_bytes,
        "gemm_energy_j": gemm,
        "param_movement_energy_j": moved * 8 * per_bit,
        "param_bytes_moved": moved,
        "steps": steps,
    }


def training_report(
    model: nn.Module,
    method: str,
    log: list[dict[str, dict[str, float]]],
    schedule: Schedule,
    table: str | None = None,
    is_frozen: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """The card's ``training`` object: the run's cost, fp32 training's of the same network and
    schedule (counted, not trained), and each layer's bitwidth and Gavg in every epoch.
    ``is_frozen(name)``: whether the parameter or layer ``name`` was held fixed."""
    layers, other = network_layers(model)
    frozen: tuple[list[Layer], int] = ([], 0)
    if is_frozen is not None:
        held = [layer for layer in layers if is_frozen(layer.name)]
        layers = [layer for layer in layers if not is_frozen(layer.name)]
        held_all = sum(p.numel() for n, p in model.named_parameters() if is_frozen(n))
        frozen = (held, held_all - sum(layer.weights for layer in held))
        other -= frozen[1]
    bits = [{name: int(v["bits"]) for name, v in entry.items()} for entry in log] or None
    own = training_cost(layers, other, method, bits, schedule, table, frozen)
    fp32 = training_cost(layers, other, "fp32", None, schedule, table, frozen)
    _, source = memory_energy_per_bit(table)
    report = {
        **own,
        **{f"fp32_{k}": v for k, v in fp32.items() if k not in ("method", "steps")},
        "energy_table": table or default_table(),
        "memory": f"{MEMORY}: {source}",
        "fp32_figures": "counted from the op counts for the same network and schedule, "
        "not from a trained network",
    }
    if log:
        report["bits_per_epoch"] = {n: [int(e[n]["bits"]) for e in log] for n in log[0]}
        report["gavg_per_epoch"] = {n: [float(e[n]["gavg"]) for e in log] for n in log[0]}
    return report


def training_from_card(card: dict[str, Any], model: nn.Module) -> dict[str, Any] | None:
    """``fogsim eval``'s ``training`` object: the card's, or, for a card from before training
    was costed, fp32 training counted from its recipe (None without epochs, images or batch
    size to count from)."""
    keys = (*CONTRACT_KEYS, *(f"fp32_{k}" for k in CONTRACT_KEYS[1:]))
    if isinstance(card.get("training"), dict):
        return {k: card["training"][k] for k in keys}
    recipe = card.get("recipe") or {}
    try:
        schedule = Schedule(
            epochs=int(card["epochs"]),
            images_per_epoch=int(card["train_images"]),
            batch_size=int(recipe["batch_size"]),
            optimizer=str(recipe.get("optimizer", "sgd")),
            momentum=float(recipe.get("momentum", 0.0)),
        )
    except (KeyError, TypeError, ValueError):
        return None
    report = training_report(model, "fp32", [], schedule)
    return {k: report[k] for k in keys}

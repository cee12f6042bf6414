"""Resource-constrained training (RCT, Huang et al. 2021) and its QAT baseline.

Both wrap every conv and linear layer of a network for the length of a training run and
quantize the operands of its GEMMs: weights to the layer's bitwidth (symmetric, one scale per
output channel), input activations to 8 bits (round to nearest, straight-through gradient)
and the errors flowing back to 8 bits (stochastic rounding).

- ``rct`` keeps each layer's weights only as integers (int8 up to 8 bits, int16 above) and
  its scales: no fp32 master copy. The gradient of a step is computed as usual (fp32, on the
  weights dequantized for that step's GEMMs) and applied to the integers with stochastic
  rounding. Plain SGD keeps no optimiser state. At the end of each epoch a layer whose mean
  update is a small fraction of its grid step (its updates vanish at that resolution) gains a
  bit, and one whose updates span many steps loses one: the paper's Gavg rule. Above 8 bits a
  layer is stored as int16 (up to 16 bits).
- ``rct`` with momentum, an extension beyond the paper (whose RCT keeps no fp32 state): each
  layer keeps its momentum as int8 with one fp32 scale per output channel: 8-bit optimiser
  state after Dettmers, Lewis, Shleifer and Zettlemoyer 2021, "8-bit Optimizers via Block-wise
  Quantization" (arXiv:2110.02861, ICLR 2022), with an output channel as the block and a
  linear int8 grid where they use a non-linear (dynamic) 8-bit code. The step is Nesterov's, as
  ``fogsim train``'s SGD with momentum (and so QAT's): with g = gradient + weight decay x w,
  the buffer becomes momentum x buffer + g and the weights move by -lr (g + momentum x buffer).
  The buffer is rewritten whole every step, so each write takes its channel's scale from the
  channel's largest value (no overflow, and the finest grid that holds it: their block-wise
  absmax) and rounds stochastically, so that the stored buffer is unbiased. Its fp32 value,
  like the gradient, lives only inside the step. Gavg is then measured on the step taken,
  lr (g + momentum x buffer), rather than on lr x gradient: with momentum 0.9 it is about ten
  times the gradient's, and it is the step that vanishes or not at a layer's resolution.
- ``qat`` keeps an fp32 master copy, fake-quantized at a fixed bitwidth in the forward pass;
  the torch optimizer updates the master copy.

BatchNorm parameters and biases stay fp32 in both (a few hundred values per layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

LAYERS = (nn.Conv2d, nn.Linear)
METHODS = ("rct", "qat")
ACT_BITS = 8
"""Bits of the activations and errors in the training GEMMs of ``rct`` and ``qat``."""
STORAGE = torch.int8
"""RCT stores every weight of up to 8 bits as one int8 ..."""
WIDE_STORAGE = torch.int16
"""... and of 9 to 16 bits as one int16: a layer whose updates vanish at 8 bits (late in
training, or fine-tuning) climbs above 8; the paper's >= 46% parameter-memory saving against
fp32 leaves room for about 16 bits a weight."""
MAX_BITS = 16
HEADROOM = 1.0
"""RCT's first grid spans a channel's largest initial weight; a
channel that outgrows it doubles its step (in step())."""
MOMENTUM_STORAGE = torch.int8
MOMENTUM_BITS = 8
"""RCT's momentum: one int8 a weight and one fp32 scale a channel, at every weight bitwidth."""


@dataclass(frozen=True)
class Bitwidth:
    """RCT's per-layer bitwidth: where it starts, its bounds, and the Gavg thresholds (mean
    |lr x gradient| over the layer's grid step) below which a layer gains a bit and above
    which it loses one. QAT uses ``start`` only."""

    start: int = 8
    min: int = 2
    max: int = 8
    grow_below: float = 0.05
    shrink_above: float = 0.2


def storage(bits: int) -> torch.dtype:
    """The integer type that holds a ``bits``-bit RCT weight."""
    if not 2 <= bits <= MAX_BITS:
        raise ValueError(f"RCT weights have 2..{MAX_BITS} bits, not {bits}")
    return STORAGE if bits <= 8 else WIDE_STORAGE


def qmax(bits: int) -> int:
    """The largest integer of a symmetric ``bits``-bit grid."""
    return 2 ** (bits - 1) - 1


def stochastic_round(x: Tensor) -> Tensor:
    """Round down or up with the probabilities that make the expected value ``x``."""
    return torch.floor(x + torch.rand_like(x))


def _channel_max(w: Tensor) -> Tensor:
    return w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True)


def fake_quantize(w: Tensor, bits: int) -> Tensor:
    """QAT's weights: each output channel on a ``bits``-bit grid scaled to its largest value,
    round to nearest; the gradient passes straight through."""
    scale = (_channel_max(w) / qmax(bits)).clamp_min(1e-12)
    q = torch.round(w / scale).clamp(-qmax(bits), qmax(bits)) * scale
    return w + (q - w).detach()


def quantize_activation8(x: Tensor) -> Tensor:
    """8-bit activations with one scale per tensor, round to nearest, straight-through."""
    scale = (x.detach().abs().amax() / qmax(ACT_BITS)).clamp_min(1e-12)
    return x + (torch.round(x / scale) * scale - x).detach()


def quantize_momentum(buf: Tensor) -> tuple[Tensor, Tensor]:
    """RCT's stored momentum: int8 values and one scale per output channel (its largest
    value over qmax), stochastically rounded so that their product is ``buf`` in expectation."""
    scale = (_channel_max(buf) / qmax(MOMENTUM_BITS)).clamp_min(1e-30)
    q = stochastic_round(buf / scale).clamp(-qmax(MOMENTUM_BITS), qmax(MOMENTUM_BITS))
    return q.to(MOMENTUM_STORAGE), scale


def quantize_error8(g: Tensor) -> Tensor:
    """8-bit errors with one scale per tensor, stochastically rounded (unbiased)."""
    scale = (g.abs().amax() / qmax(ACT_BITS)).clamp_min(1e-30)
    return stochastic_round(g / scale).clamp(-qmax(ACT_BITS), qmax(ACT_BITS)) * scale


def quantized_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every conv and linear layer, by qualified name."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LAYERS)]


class LowPrecisionTraining:
    """A network's layers wrapped for ``rct`` or ``qat`` until ``finish``; between them the
    network trains and evaluates as usual, with the weights in their stored form. With
    ``momentum``, RCT keeps each layer's int8 momentum buffer (QAT's is the optimizer's)."""

    def __init__(
        self, model: nn.Module, method: str, bitwidth: Bitwidth, momentum: bool = False
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        self.model, self.method, self.bitwidth = model, method, bitwidth
        self.momentum = momentum and method == "rct"
        self.layers = quantized_layers(model)
        self._live: dict[str, Tensor] = {}
        self._gavg: dict[str, list[float]] = {n: [] for n, _ in self.layers}
        self._hooks = []
        for name, m in self.layers:
            self._store(m)
            self._hooks.append(m.register_forward_pre_hook(self._pre_hook(name)))
            self._hooks.append(m.register_forward_hook(self._post_hook))
            self._hooks.append(m.register_load_state_dict_pre_hook(self._adopt_storage))

    def _store(self, m: nn.Module) -> None:
        w = m._parameters.pop("weight").detach()
        bits = self.bitwidth.start
        m.register_buffer("weight_bits", torch.tensor(bits, device=w.device))
        if self.method == "qat":
            m.weight_master = nn.Parameter(w.clone())
            return
        scale = (_channel_max(w) * HEADROOM / qmax(bits)).clamp_min(1e-12)
        m.register_buffer("weight_scale", scale)
        m.register_buffer("weight_int", torch.round(w / scale).to(storage(bits)))
        if self.momentum:
            # As torch's SGD starts: a zero buffer, so the first step's is the gradient.
            m.register_buffer("momentum_int", torch.zeros_like(w, dtype=MOMENTUM_STORAGE))
            m.register_buffer("momentum_scale", torch.ones_like(scale))

    @staticmethod
    def _adopt_storage(m: nn.Module, state: dict[str, Any], prefix: str, *_: Any) -> None:
        # A resumed or best-epoch state may hold a layer at another bitwidth, hence in the
        # other integer type: take its type, since copying int16 into int8 would wrap.
        saved = state.get(f"{prefix}weight_int")
        own = m._buffers.get("weight_int")
        if saved is not None and own is not None and saved.dtype != own.dtype:
            m.weight_int = torch.empty_like(own, dtype=saved.dtype)

    def weight(self, m: nn.Module) -> Tensor:
        """The layer's weights as its GEMMs use them, from their stored form."""
        if self.method == "qat":
            return fake_quantize(m.weight_master, int(m.weight_bits))
        return m.weight_int.float() * m.weight_scale

    def _pre_hook(self, name: str) -> Any:
        def hook(m: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...] | None:
            w = self.weight(m)
            if self.method == "rct" and m.training and torch.is_grad_enabled():
                # A leaf for this step's gradient; freed by step().
                w.requires_grad_(True)
                self._live[name] = w
            m.weight = w
            return (quantize_activation8(inputs[0]),) if m.training else None

        return hook

    @staticmethod
    def _post_hook(m: nn.Module, _inputs: tuple[Tensor, ...], out: Tensor) -> None:
        m.weight = None  # no reference outlives the forward pass but the autograd graph's
        if m.training and out.requires_grad:
            out.register_hook(quantize_error8)

    def step(self, lr: float, weight_decay: float, momentum: float = 0.0) -> None:
        """RCT: apply each layer's gradient (Nesterov's momentum step with ``momentum``) to its
        integers, stochastically rounded; a channel that overflows its grid doubles its step.
        QAT: nothing (the optimizer steps)."""
        if self.method == "rct" and momentum and not self.momentum:
            raise ValueError("this RCT run keeps no momentum buffer; wrap with momentum=True")
        for name, m in self.layers:
            w = self._live.pop(name, None)
            if w is None or w.grad is None:
                continue
            scale, bits = m.weight_scale, int(m.weight_bits)
            update = w.grad + weight_decay * w.detach()
            # Gavg: the gradient's size at the layer's resolution, or with momentum the step's.
            sized = w.grad
            if self.momentum:
                update = sized = self._nesterov(m, update, momentum)
            self._gavg[name].append(float((lr * sized.abs() / scale).mean()))
            moved = m.weight_int.float() - lr * update / scale
            over = (_channel_max(moved) > qmax(bits)).to(moved.dtype)
            moved = moved / (1 + over)
            scale.mul_(1 + over)
            rounded = stochastic_round(moved).clamp(-qmax(bits), qmax(bits))
            m.weight_int.copy_(rounded.to(m.weight_int.dtype))
        self._live.clear()

    @staticmethod
    def _nesterov(m: nn.Module, g: Tensor, momentum: float) -> Tensor:
        # torch's SGD(nesterov=True, dampening=0): the buffer's fp32 value lives only here.
        buf = momentum * (m.momentum_int.float() * m.momentum_scale) + g
        q, scale = quantize_momentum(buf)
        m.momentum_int.copy_(q)
        m.momentum_scale.copy_(scale)
        return g + momentum * buf

    def end_epoch(self, adjust: bool = True) -> dict[str, dict[str, float]]:
        """Each layer's bitwidth during the epoch and its mean Gavg; then (RCT, ``adjust``)
        a bit more where updates vanished, a bit fewer where they span many grid steps."""
        entry: dict[str, dict[str, float]] = {}
        for name, m in self.layers:
            bits, seen = int(m.weight_bits), self._gavg[name]
            gavg = sum(seen) / len(seen) if seen else 0.0
            entry[name] = {"bits": bits, "gavg": gavg}
            self._gavg[name] = []
            if self.method != "rct" or not adjust or not seen:
                continue
            b = self.bitwidth
            if gavg < b.grow_below and bits < b.max:
                self._set_bits(m, bits + 1)
            elif gavg > b.shrink_above and bits > b.min:
                self._set_bits(m, bits - 1)
        return entry

    @staticmethod
    def _set_bits(m: nn.Module, bits: int) -> None:
        # One bit more halves the step (exact); one fewer doubles it (stochastic rounding).
        # Crossing 8 bits swaps the tensor for one of the other integer type.
        old = int(m.weight_bits)
        if bits > old:
            moved = m.weight_int.to(storage(bits)) * 2
            m.weight_scale.div_(2)
        else:
            halved = stochastic_round(m.weight_int.float() / 2).clamp(-qmax(bits), qmax(bits))
            moved = halved.to(storage(bits))
            m.weight_scale.mul_(2)
        m.weight_int = moved
        m.weight_bits.fill_(bits)

    def bits(self) -> dict[str, int]:
        """Each layer's bitwidth now."""
        return {name: int(m.weight_bits) for name, m in self.layers}

    def finish(self) -> nn.Module:
        """Unwrap: every layer gets back a plain ``weight`` holding its quantized values."""
        for h in self._hooks:
            h.remove()
        for _, m in self.layers:
            with torch.no_grad():
                w = self.weight(m).detach().clone()
            for key in ("weight_master",):
                m._parameters.pop(key, None)
            for key in (
                "weight_int",
                "weight_scale",
                "weight_bits",
                "momentum_int",
                "momentum_scale",
            ):
                m._buffers.pop(key, None)
            if "weight" in m.__dict__:
                del m.__dict__["weight"]
            m.weight = nn.Parameter(w)
        self._live.clear()
        return self.model

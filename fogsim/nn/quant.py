"""Quantizers for weights and activations, by precision name.

Precision names are shared across fogsim (layers, op counts, the energy table,
the simulator): "fp32", "int8", "int4", "int2", "ternary", "binary".
"""

from __future__ import annotations

import torch
from torch import Tensor

from fogsim.nn.precisions import (  # noqa: F401  (their old home)
    BITS,
    PRECISIONS,
    op_precision,
    parse_precision,
)

# TWN (Li et al. 2016): weights below 0.7 x mean|W| round to zero.
_TERNARY_WEIGHT_DELTA = 0.7
# Activations in [-1, 1] round to zero inside +-0.5, the midpoint to +-1.
_TERNARY_ACT_DELTA = 0.5


class _ClippedSTE(torch.autograd.Function):
    """Forward the quantized value; pass the gradient straight through where |x| < 1."""

    @staticmethod
    def forward(ctx, x: Tensor, q: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return q

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() < 1).to(grad.dtype), None


def clipped_ste(x: Tensor, q: Tensor) -> Tensor:
    """``q`` in the forward pass, the clipped straight-through gradient of ``x`` backward."""
    return _ClippedSTE.apply(x, q.detach())


def _round_ste(x: Tensor) -> Tensor:
    return x + (torch.round(x) - x).detach()


def _sign(x: Tensor) -> Tensor:
    # torch.sign(0) is 0, which is not a binary value; zero maps to +1.
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def uniform_levels(x: Tensor, bits: int) -> Tensor:
    """DoReFa's k-bit grid on [-1, 1]: round((x+1)/2 (2^k-1)) / (2^k-1) x 2 - 1, rounding by STE."""
    n = 2**bits - 1
    return _round_ste((x + 1) / 2 * n) / n * 2 - 1


ACT_GRIDS: tuple[str, ...] = ("signed", "relu")
"""Where a k-bit activation grid lies: ``signed``, 2^k levels on [-1, 1] (a clip, no other
nonlinearity), or ``relu``, 2^k levels on [0, 1] (a clipped ReLU, as in DoReFa and PACT).
Binary and ternary activations are always signed."""


def quantize_activation(x: Tensor, precision: str, grid: str = "signed") -> Tensor:
    """Quantize activations onto the precision's grid (fp32: unchanged); k-bit integer
    precisions on ``grid`` (``ACT_GRIDS``)."""
    if precision == "fp32":
        return x
    if grid == "relu" and precision not in ("binary", "ternary"):
        # Straight through inside [0, 1], zero gradient where the clip bites.
        n = 2 ** BITS[precision] - 1
        return _round_ste(x.clamp(0, 1) * n) / n
    if precision == "binary":
        return clipped_ste(x, _sign(x))
    clipped = x.clamp(-1, 1)
    if precision == "ternary":
        q = torch.where(clipped.abs() > _TERNARY_ACT_DELTA, _sign(clipped), 0.0)
        return clipped_ste(x, q)
    return clipped_ste(x, uniform_levels(clipped, BITS[precision]).detach())


def _channel_mean_abs(w: Tensor) -> Tensor:
    return w.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True)


def quantize_weight(w: Tensor, precision: str) -> Tensor:
    """Quantize a weight tensor (output channels first) with a per-output-channel scale."""
    if precision == "fp32":
        return w
    if precision == "binary":
        # XNOR-Net: sign(W) x mean|W| per output channel; the scale stays differentiable.
        return clipped_ste(w, _sign(w)) * _channel_mean_abs(w)
    if precision == "ternary":
        delta = _TERNARY_WEIGHT_DELTA * _channel_mean_abs(w)
        mask = (w.abs() > delta).to(w.dtype)
        dims = tuple(range(1, w.dim()))
        scale = (w.abs() * mask).sum(dims, keepdim=True) / mask.sum(dims, keepdim=True).clamp_min(1)
        return clipped_ste(w, _sign(w) * mask) * scale
    # DoReFa: squash with tanh, normalise to [-1, 1], put on the k-bit grid.
    t = torch.tanh(w)
    t = t / t.abs().max().clamp_min(1e-12)
    return uniform_levels(t, BITS[precision]) * _channel_mean_abs(w)

"""Convolution and linear layers whose weights and inputs are quantized."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from fogsim.nn.quant import op_precision, parse_precision, quantize_activation, quantize_weight


class _Quantized:
    """The bitwidths of a quantized layer and the precision its MACs run at."""

    def _set_precisions(self, weight_precision: str | int, act_precision: str | int) -> None:
        self.weight_precision = parse_precision(weight_precision)
        self.act_precision = parse_precision(act_precision)
        # The k-bit input grid (fogsim.nn.quant.ACT_GRIDS); networks set it after building.
        self.act_grid = "signed"

    @property
    def op_precision(self) -> str:
        return op_precision(self.weight_precision, self.act_precision)

    def extra_repr(self) -> str:
        grid = "" if self.act_grid == "signed" else f" ({self.act_grid})"
        return f"{super().extra_repr()}, w={self.weight_precision}, a={self.act_precision}{grid}"


class QConv2d(_Quantized, nn.Conv2d):
    """Conv2d that quantizes its input and its weights; fp32/fp32 is a plain conv."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = False,
        *,
        weight_precision: str | int = "fp32",
        act_precision: str | int = "fp32",
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        self._set_precisions(weight_precision, act_precision)

    def forward(self, x: Tensor) -> Tensor:
        x = quantize_activation(x, self.act_precision, self.act_grid)
        w = quantize_weight(self.weight, self.weight_precision)
        return self._conv_forward(x, w, self.bias)


class QLinear(_Quantized, nn.Linear):
    """Linear layer that quantizes its input and its weights."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        weight_precision: str | int = "fp32",
        act_precision: str | int = "fp32",
    ) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self._set_precisions(weight_precision, act_precision)

    def forward(self, x: Tensor) -> Tensor:
        x = quantize_activation(x, self.act_precision, self.act_grid)
        return F.linear(x, quantize_weight(self.weight, self.weight_precision), self.bias)


class ActQuant(nn.Module):
    """Quantize a tensor onto an activation precision's grid (the split features)."""

    def __init__(self, precision: str | int) -> None:
        super().__init__()
        self.precision = parse_precision(precision)

    def forward(self, x: Tensor) -> Tensor:
        return quantize_activation(x, self.precision)

    def extra_repr(self) -> str:
        return self.precision


def activation(precision: str) -> nn.Module:
    """The nonlinearity before a conv: ReLU at fp32, else the input quantizer itself."""
    return nn.ReLU(inplace=False) if precision == "fp32" else nn.Identity()

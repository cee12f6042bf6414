"""Quantizer values and gradients, precision names, and quantized layers."""

import pytest
import torch
from torch import nn

from fogsim.nn.layers import QConv2d, QLinear
from fogsim.nn.quant import (
    BITS,
    PRECISIONS,
    op_precision,
    parse_precision,
    quantize_activation,
    quantize_weight,
)

X = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
INSIDE = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0])  # STE passes only where |x| < 1


def _grad(precision: str) -> torch.Tensor:
    x = X.clone().requires_grad_()
    quantize_activation(x, precision).sum().backward()
    return x.grad


def test_binary_activation_is_sign_with_zero_to_plus_one():
    assert quantize_activation(X, "binary").tolist() == [-1, -1, -1, 1, 1, 1, 1]


@pytest.mark.parametrize("precision", ["binary", "ternary", "int2", "int4", "int8"])
def test_activation_gradient_is_clipped_straight_through(precision):
    assert torch.equal(_grad(precision), INSIDE)


def test_fp32_activation_is_identity_with_full_gradient():
    assert torch.equal(quantize_activation(X, "fp32"), X)
    assert torch.equal(_grad("fp32"), torch.ones_like(X))


def test_ternary_activation_rounds_inside_half_to_zero():
    x = torch.tensor([-0.7, -0.2, 0.3, 0.9, 3.0])
    assert quantize_activation(x, "ternary").tolist() == [-1, 0, 0, 1, 1]


def test_kbit_activation_uses_the_dorefa_grid():
    x = torch.tensor([-5.0, -0.5, 0.2, 0.9])
    # 2 bits on [-1, 1]: levels -1, -1/3, 1/3, 1; round((x+1)/2 x 3)/3 x 2 - 1.
    assert torch.allclose(quantize_activation(x, "int2"), torch.tensor([-1, -1 / 3, 1 / 3, 1]))


@pytest.mark.parametrize("precision", ["int2", "int4", "int8"])
def test_kbit_activation_has_at_most_2_to_the_k_levels(precision):
    q = quantize_activation(torch.linspace(-1.5, 1.5, 5000), precision)
    assert len(torch.unique(q)) == 2 ** BITS[precision]
    step = 2 / (2 ** BITS[precision] - 1)
    assert (q - torch.linspace(-1.5, 1.5, 5000).clamp(-1, 1)).abs().max() <= step / 2 + 1e-6


def test_binary_weights_scale_each_output_channel_by_mean_abs():
    w = torch.tensor([[1.0, -3.0], [0.5, 0.5]])
    assert quantize_weight(w, "binary").tolist() == [[2.0, -2.0], [0.5, 0.5]]


def test_binary_weight_gradient_flows_through_sign_and_scale():
    w = torch.tensor([[0.5, -0.25]], requires_grad=True)
    quantize_weight(w, "binary").sum().backward()
    # d/dw [sign(w) * mean|w|] summed: STE gives mean|w| * 1 per element, plus the scale's
    # gradient sum(sign(w)) * sign(w_i) / n = 0 here since the signs cancel.
    assert torch.allclose(w.grad, torch.tensor([[0.375, 0.375]]))


def test_ternary_weights_zero_small_values_and_scale_the_rest():
    w = torch.tensor([[1.0, 0.1, -1.0, 0.0]])
    assert quantize_weight(w, "ternary").tolist() == [[1.0, 0.0, -1.0, 0.0]]


@pytest.mark.parametrize("precision", ["int2", "int4", "int8"])
def test_kbit_weights_per_channel(precision):
    w = torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    q = quantize_weight(w, precision)
    scale = w.abs().mean(dim=(1, 2, 3))
    for c in range(4):
        levels = torch.unique(torch.round(q[c] / scale[c] * 1e4))
        assert len(levels) <= 2 ** BITS[precision]
    assert torch.equal(torch.sign(q), torch.sign(torch.where(q == 0, 0, w)))


def test_fp32_weights_unchanged():
    w = torch.randn(3, 2)
    assert torch.equal(quantize_weight(w, "fp32"), w)


def test_precision_names_and_bitwidths():
    assert [parse_precision(b) for b in (1, 2, 4, 8, 32)] == [
        "binary",
        "int2",
        "int4",
        "int8",
        "fp32",
    ]
    assert parse_precision("ternary") == "ternary"
    for bad in (3, "fp16", True):
        with pytest.raises(ValueError):
            parse_precision(bad)
    assert PRECISIONS == ("binary", "ternary", "int2", "int4", "int8", "fp32")
    assert op_precision("binary", "binary") == "binary"
    assert op_precision("binary", "int4") == "int4"
    assert op_precision("int8", "fp32") == "fp32"


def test_fp32_qconv_equals_plain_conv():
    torch.manual_seed(0)
    q = QConv2d(3, 4, 3, 1, 1, weight_precision=32, act_precision=32)
    plain = nn.Conv2d(3, 4, 3, 1, 1, bias=False)
    plain.weight.data.copy_(q.weight.data)
    x = torch.randn(2, 3, 5, 5)
    assert torch.allclose(q(x), plain(x))
    assert q.op_precision == "fp32"


@pytest.mark.parametrize(
    "wp,ap,op",
    [("binary", "binary", "binary"), ("int4", "int8", "int8"), ("ternary", "fp32", "fp32")],
)
def test_quantized_layers_configured_by_bitwidths(wp, ap, op):
    conv = QConv2d(2, 3, 3, weight_precision=wp, act_precision=ap)
    lin = QLinear(4, 2, weight_precision=wp, act_precision=ap)
    assert (conv.weight_precision, conv.act_precision) == (wp, ap)
    assert lin.op_precision == conv.op_precision == op  # the wider operand
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    conv(x).sum().backward()
    assert x.grad is not None and conv.weight.grad is not None
    assert lin(torch.randn(3, 4)).shape == (3, 2)


@pytest.mark.parametrize("precision", ["int2", "int4", "int8"])
def test_relu_grid_is_a_clipped_relu_on_2_to_the_k_levels_of_0_to_1(precision):
    n = 2 ** BITS[precision] - 1
    x = torch.linspace(-1.5, 1.5, 5000)
    q = quantize_activation(x, precision, "relu")
    assert len(torch.unique(q)) == n + 1
    assert torch.allclose(q * n, torch.round(q * n))  # on the grid k/n
    assert (q - x.clamp(0, 1)).abs().max() <= 1 / (2 * n) + 1e-6
    x = X.clone().requires_grad_()
    quantize_activation(x, precision, "relu").sum().backward()
    # Straight through inside [0, 1] (clamp's gradient at its bounds is 1), zero outside.
    assert x.grad.tolist() == [0, 0, 0, 1, 1, 1, 0]


@pytest.mark.parametrize("precision", ["binary", "ternary", "fp32"])
def test_the_relu_grid_leaves_binary_ternary_and_fp32_alone(precision):
    assert torch.equal(
        quantize_activation(X, precision, "relu"), quantize_activation(X, precision)
    )

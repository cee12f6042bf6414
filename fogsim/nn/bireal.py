"""Binary residual blocks with a real-valued shortcut around every conv (Bi-Real Net, Liu et
al. 2018) and learnable thresholds and PReLU (ReActNet, Liu et al. 2020).

A plain binary ResNet block binarizes twice between shortcuts, so the real-valued
information the first conv computes is lost before the second. Bi-Real keeps it: each conv
gets its own identity shortcut. ReActNet adds a learnable per-channel shift before each sign
(a learnable threshold) and a shifted PReLU after each addition, which let the binary network
move its activation distributions the way a real-valued one does.

Cost on the edge: the convs stay binary (XNOR-popcount MACs); the shifts, BatchNorms, PReLUs
and additions are per-element operations, not MACs (see ``fogsim.nn.ops``). A unit that
changes shape has a real-valued shortcut: average pooling, then a 1x1 fp32 conv, as in
ReActNet; its MACs are counted at fp32.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fogsim.nn.layers import QConv2d


class LearnableBias(nn.Module):
    """A per-channel shift ``x + b``: before a sign it is a learnable threshold (RSign)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bias


class RPReLU(nn.Module):
    """ReActNet's shifted PReLU: ``PReLU(x - gamma) + zeta``, all per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.shift_in = LearnableBias(channels)
        self.prelu = nn.PReLU(channels, init=0.25)
        self.shift_out = LearnableBias(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.shift_out(self.prelu(self.shift_in(x)))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(
        nn.AvgPool2d(stride) if stride > 1 else nn.Identity(),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
    )


class BiRealBlock(nn.Module):
    """A ResNet basic block's two binary convs, each with its own shortcut:
    ``h = RPReLU(BN(conv1(sign(x + b1))) + shortcut(x))``, then
    ``RPReLU(BN(conv2(sign(h + b2))) + h)``.

    The convs are named as in ``BasicBlock`` (``conv1``, ``conv2``), so ``init_from`` a
    trained plain ResNet starts them from its weights.
    """

    def __init__(self, cin: int, cout: int, stride: int, weight: str, act: str) -> None:
        super().__init__()
        self.threshold1 = LearnableBias(cin)
        self.conv1 = QConv2d(cin, cout, 3, stride, 1, weight_precision=weight, act_precision=act)
        self.norm1 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)
        self.act1 = RPReLU(cout)
        self.threshold2 = LearnableBias(cout)
        self.conv2 = QConv2d(cout, cout, 3, 1, 1, weight_precision=weight, act_precision=act)
        self.norm2 = nn.BatchNorm2d(cout)
        self.act2 = RPReLU(cout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act1(self.norm1(self.conv1(self.threshold1(x))) + self.shortcut(x))
        return self.act2(self.norm2(self.conv2(self.threshold2(h))) + h)

"""HybridNet: a quantized edge part with exit heads, then a full-precision cloud part."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from fogsim.nn.layers import ActQuant
from fogsim.nn.quant import parse_precision

EXIT_RULES: tuple[str, ...] = ("entropy", "maxprob")
EXIT_HEADS: tuple[str, ...] = ("linear", "conv")


class Head(nn.Module):
    """Classifier head: BN, ReLU (the pre-activation block's closing pair), avg-pool, linear."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.relu(self.bn(x)).mean(dim=(2, 3)))


class HybridNet(nn.Module):
    """Stem and ``blocks[:split]`` run on the edge, with exit heads after the blocks in
    ``exits``; the split tensor is quantized to the edge activation precision and sent to
    the cloud, which runs ``blocks[split:]`` and the final head. ``exit_head(channels,
    num_classes)`` builds each exit; by default it is a plain ``Head``."""

    def __init__(
        self,
        stem: nn.Module,
        blocks: Sequence[nn.Module],
        block_channels: Sequence[int],
        *,
        split: int,
        exits: Sequence[int],
        edge_act_precision: str | int,
        num_classes: int,
        input_shape: tuple[int, int, int],
        input_mean: Sequence[float],
        input_std: Sequence[float],
        exit_head: Callable[[int, int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if not 0 <= split <= len(blocks):
            raise ValueError(f"split {split} is outside 0..{len(blocks)} (the number of blocks)")
        exits = tuple(exits)
        if any(not 1 <= e <= split for e in exits) or list(exits) != sorted(set(exits)):
            raise ValueError(f"exits {exits} must be increasing block counts in 1..split={split}")
        self.split = split
        self.exit_points = exits
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.edge_act_precision = parse_precision(edge_act_precision)
        self.register_buffer("input_mean", torch.tensor(input_mean).view(1, -1, 1, 1))
        self.register_buffer("input_std", torch.tensor(input_std).view(1, -1, 1, 1))
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        make_exit = Head if exit_head is None else exit_head
        self.exits = nn.ModuleList(make_exit(block_channels[e - 1], num_classes) for e in exits)
        split_channels = block_channels[split - 1] if split else _stem_channels(stem)
        # The cloud receives exactly what the edge sends: features on the edge's activation grid.
        self.split_quant: nn.Module = (
            nn.Identity()
            if self.edge_act_precision == "fp32"
            else nn.Sequential(nn.BatchNorm2d(split_channels), ActQuant(self.edge_act_precision))
        )
        self.final = Head(block_channels[-1], num_classes)

    def edge(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Run the edge part on images in [0, 1]; return the split features and exit logits."""
        h = self.stem((x - self.input_mean) / self.input_std)
        logits = []
        heads = iter(zip(self.exit_points, self.exits, strict=True))
        point, head = next(heads, (None, None))
        for i, block in enumerate(self.blocks[: self.split], start=1):
            h = block(h)
            if i == point:
                logits.append(head(h))
                point, head = next(heads, (None, None))
        return self.split_quant(h), logits

    def cloud(self, features: Tensor) -> Tensor:
        """Run the cloud part on split features; return the final logits."""
        h = features
        for block in self.blocks[self.split :]:
            h = block(h)
        return self.final(h)

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        features, exit_logits = self.edge(x)
        return exit_logits, self.cloud(features)


def _stem_channels(stem: nn.Module) -> int:
    convs = [m for m in stem.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


def softmax_entropy(logits: Tensor) -> Tensor:
    """Entropy (natural log) of the softmax of each row of logits."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def exits_early(entropy: Tensor, maxprob: Tensor, rule: str, threshold: float) -> Tensor:
    """Whether each sample exits: entropy strictly below, or max-probability strictly above."""
    if rule == "entropy":
        return entropy < threshold
    if rule == "maxprob":
        return maxprob > threshold
    raise ValueError(f"unknown exit rule {rule!r}; use one of {', '.join(EXIT_RULES)}")

"""HybridNet: a quantized device part with exit heads, an optional fog part with its own
precision and exits, then a full-precision cloud part."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from fogsim.nn.checkpoint_info import EXIT_RULES  # noqa: F401  (their old home)
from fogsim.nn.layers import ActQuant
from fogsim.nn.quant import parse_precision

EXIT_HEADS: tuple[str, ...] = ("linear", "conv")
TIERS: tuple[str, ...] = ("device", "fog", "cloud")
"""Where the parts of a network run, named as the simulator's results name them."""


class Head(nn.Module):
    """Classifier head: BN, ReLU (the pre-activation block's closing pair), avg-pool, linear."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.relu(self.bn(x)).mean(dim=(2, 3)))


class HybridNet(nn.Module):
    """Stem and ``blocks[:split]`` run on the device; with a ``fog_split``,
    ``blocks[split:fog_split]`` run on the fog; the remaining blocks and the final head run in
    the cloud. Exit heads sit after the blocks in ``exits`` (on the device or the fog part).
    Each boundary quantizes the features to the sending part's activation precision:
    ``split_quant`` (device to fog or cloud) and ``fog_quant`` (fog to cloud).
    ``exit_head(channels, num_classes, tier)`` builds each exit; by default a plain ``Head``."""

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
        exit_head: Callable[[int, int, str], nn.Module] | None = None,
        fog_split: int | None = None,
        fog_act_precision: str | int = "fp32",
    ) -> None:
        super().__init__()
        exits = tuple(exits)
        _check_parts(split, fog_split, exits, len(blocks))
        self.split = split
        self.fog_split = fog_split
        self.exit_points = exits
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.edge_act_precision = parse_precision(edge_act_precision)
        self.fog_act_precision = parse_precision(fog_act_precision)
        self.register_buffer("input_mean", torch.tensor(input_mean).view(1, -1, 1, 1))
        self.register_buffer("input_std", torch.tensor(input_std).view(1, -1, 1, 1))
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        make_exit = exit_head or (lambda channels, classes, _tier: Head(channels, classes))
        self.exits = nn.ModuleList(
            make_exit(block_channels[e - 1], num_classes, tier)
            for e, tier in zip(exits, self.exit_tiers, strict=True)
        )
        split_channels = block_channels[split - 1] if split else _stem_channels(stem)
        # The next part receives exactly what this one sends: features on its activation grid.
        self.split_quant = _boundary(split_channels, self.edge_act_precision)
        if fog_split is not None:
            # Only three-part networks have this module: two-part state dicts keep their keys.
            self.fog_quant = _boundary(block_channels[fog_split - 1], self.fog_act_precision)
        self.final = Head(block_channels[-1], num_classes)

    @property
    def tiers(self) -> tuple[str, ...]:
        """The tiers this network runs on, in order: device and cloud, and fog between them."""
        return TIERS if self.fog_split is not None else (TIERS[0], TIERS[2])

    @property
    def exit_tiers(self) -> tuple[str, ...]:
        """The tier of each exit: ``device`` up to the split, ``fog`` after it."""
        return tuple("device" if e <= self.split else "fog" for e in self.exit_points)

    @property
    def cloud_start(self) -> int:
        """The first block the cloud runs."""
        return self.split if self.fog_split is None else self.fog_split

    def _run(self, h: Tensor, first: int, last: int) -> tuple[Tensor, list[Tensor]]:
        """Blocks ``first..last-1`` (0-based), with the logits of the exits among them."""
        logits = []
        for i in range(first, last):
            h = self.blocks[i](h)
            if i + 1 in self.exit_points:
                logits.append(self.exits[self.exit_points.index(i + 1)](h))
        return h, logits

    def edge_features(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Run the device part on images in [0, 1]; return its features before the split
        boundary quantizes them, and the logits of its exits."""
        h = self.stem((x - self.input_mean) / self.input_std)
        return self._run(h, 0, self.split)

    def edge(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Run the device part on images in [0, 1]; return the features it sends and the
        logits of its exits."""
        h, logits = self.edge_features(x)
        return self.split_quant(h), logits

    def fog(self, features: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Run the fog part on the device's features; return the features it sends to the
        cloud and the logits of its exits. Without a fog part it passes the features on."""
        if self.fog_split is None:
            return features, []
        h, logits = self._run(features, self.split, self.fog_split)
        return self.fog_quant(h), logits

    def cloud(self, features: Tensor) -> Tensor:
        """Run the cloud part on the features it receives; return the final logits."""
        h, _ = self._run(features, self.cloud_start, len(self.blocks))
        return self.final(h)

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        features, device_logits = self.edge(x)
        features, fog_logits = self.fog(features)
        return device_logits + fog_logits, self.cloud(features)


def _check_parts(split: int, fog_split: int | None, exits: tuple[int, ...], n: int) -> None:
    if not 0 <= split <= n:
        raise ValueError(f"split {split} is outside 0..{n} (the number of blocks)")
    if fog_split is not None and not split < fog_split <= n:
        raise ValueError(
            f"fog_split {fog_split} is outside {split + 1}..{n}: the fog part runs the blocks "
            f"after the split ({split}) up to fog_split, at least one, at most all {n}"
        )
    last = split if fog_split is None else fog_split
    what = "split" if fog_split is None else "fog_split"
    if any(not 1 <= e <= last for e in exits) or list(exits) != sorted(set(exits)):
        raise ValueError(f"exits {exits} must be increasing block counts in 1..{what}={last}")


def _boundary(channels: int, precision: str) -> nn.Module:
    if precision == "fp32":
        return nn.Identity()
    return nn.Sequential(nn.BatchNorm2d(channels), ActQuant(precision))


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

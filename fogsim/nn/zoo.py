"""Registry of hybrid networks: ``@register_model``, ``create_model``, ``list_models``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from fogsim.errors import UserInputError
from fogsim.nn.bireal import BiRealBlock
from fogsim.nn.hybrid import EXIT_HEADS, Head, HybridNet
from fogsim.nn.layers import QConv2d, QLinear, activation
from fogsim.nn.quant import ACT_GRIDS, parse_precision

_REGISTRY: dict[str, Callable[..., HybridNet]] = {}

BLOCKS: tuple[str, ...] = ("basic", "bireal")
"""Edge residual blocks of the CIFAR ResNets: ``basic`` (one shortcut around two convs) or
``bireal`` (a shortcut around every conv, learnable thresholds and RPReLU; fogsim.nn.bireal)."""

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
FASHION_MEAN = (0.2860,)
FASHION_STD = (0.3530,)
CIFAR_SHAPE = (32, 32, 3)
FASHION_SHAPE = (28, 28, 1)
MAX_SIDE, MAX_CHANNELS = 4096, 16


def register_model(fn: Callable[..., HybridNet]) -> Callable[..., HybridNet]:
    """Register a network constructor under its function name."""
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Names of all registered networks, sorted."""
    return sorted(_REGISTRY)


def constructor_defaults(name: str) -> dict[str, Any]:
    """The default keyword arguments of the registered network ``name``."""
    params = inspect.signature(_REGISTRY[name]).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def create_model(name: str, **kwargs: object) -> HybridNet:
    """Build the registered network ``name`` with constructor keyword arguments."""
    if name not in _REGISTRY:
        raise UserInputError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    unknown = sorted(set(kwargs) - set(constructor_defaults(name)))
    if unknown:
        raise ValueError(
            f"{name} takes no argument(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(constructor_defaults(name)))}"
        )
    return _REGISTRY[name](**kwargs)


def check_image_shape(
    image_shape: Sequence[int], downsampling: int, network: str
) -> tuple[int, int, int]:
    """(H, W, C) as ints, or a UserInputError when the network cannot read such images: each
    side must survive the network's downsampling, and C be a plausible number of channels."""
    shape = tuple(image_shape)
    if len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape):
        raise UserInputError(f"image_shape {image_shape!r} is not (height, width, channels)")
    h, w, c = shape
    if not (downsampling <= h <= MAX_SIDE and downsampling <= w <= MAX_SIDE):
        raise UserInputError(
            f"{network} cannot read {h}x{w} images: it downsamples by {downsampling}, so each "
            f"side must be {downsampling} to {MAX_SIDE} pixels"
        )
    if not 1 <= c <= MAX_CHANNELS:
        raise UserInputError(
            f"{network} cannot read images of {c} channels (1 to {MAX_CHANNELS}); "
            "is the dataset laid out as (N, H, W, C)?"
        )
    return h, w, c


def normalisation(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel input mean and std: CIFAR-10's for RGB, Fashion-MNIST's for grayscale,
    0.5 and 0.25 otherwise (BatchNorm after the stem absorbs what they miss)."""
    known = {3: (CIFAR_MEAN, CIFAR_STD), 1: (FASHION_MEAN, FASHION_STD)}
    return known.get(channels, ((0.5,) * channels, (0.25,) * channels))


def default_exits(split: int, fog_split: int | None) -> tuple[int, ...]:
    """Where exits sit unless asked otherwise: at the end of each part before the cloud."""
    return (split,) if fog_split is None else (split, fog_split)


@dataclass(frozen=True)
class Parts:
    """Where a network splits and each part's precisions (weights, activations). The cloud
    part is fp32; ``fog_split`` None means two parts, device and cloud."""

    split: int
    fog_split: int | None
    device: tuple[str, str]
    fog: tuple[str, str]
    # What the device sends, if not its activations' precision (``split_precision``).
    sends: str | None = None

    @classmethod
    def of(
        cls,
        split: int,
        fog_split: int | None,
        weight: str | int,
        act: str | int,
        fog_weight: str | int | None,
        fog_act: str | int | None,
        sends: str | int | None = None,
    ) -> Parts:
        """The parts of a constructor's arguments; fog precisions need a fog part."""
        if fog_split is None:
            given = [
                k
                for k, v in (("fog_weight_precision", fog_weight), ("fog_act_precision", fog_act))
                if v is not None
            ]
            if given:
                raise ValueError(
                    f"{' and '.join(given)} set without fog_split: a two-part network has no fog "
                    "part; give fog_split too, or leave the fog precisions out"
                )
        fog_w = "fp32" if fog_weight is None else parse_precision(fog_weight)
        fog_a = "fp32" if fog_act is None else parse_precision(fog_act)
        if sends is not None and not split:
            raise ValueError(
                "split_precision with split 0: a device part of the stem alone sends fp32 "
                "stem features; split after a block, or leave split_precision out"
            )
        return cls(
            split,
            fog_split,
            (parse_precision(weight), parse_precision(act)),
            (fog_w, fog_a),
            None if sends is None else parse_precision(sends),
        )

    def tier(self, block: int) -> str:
        """The tier that runs block ``block`` (0-based)."""
        if block < self.split:
            return "device"
        return "fog" if self.fog_split is not None and block < self.fog_split else "cloud"

    def precisions(self, tier: str) -> tuple[str, str]:
        """(weight, activation) precisions of a tier's blocks and conv exit heads."""
        return {"device": self.device, "fog": self.fog}.get(tier, ("fp32", "fp32"))

    def default_exits(self, exits: Sequence[int] | None) -> tuple[int, ...]:
        """``exits`` as given, or ``default_exits``."""
        return default_exits(self.split, self.fog_split) if exits is None else tuple(exits)

    def net_args(self) -> dict[str, Any]:
        """HybridNet's keyword arguments for the split and the boundaries' precisions."""
        args: dict[str, Any] = {
            "split": self.split,
            # A device part of the stem alone sends fp32 stem features.
            "edge_act_precision": (self.sends or self.device[1]) if self.split else "fp32",
        }
        if self.fog_split is not None:
            args.update(fog_split=self.fog_split, fog_act_precision=self.fog[1])
        return args


class BasicBlock(nn.Module):
    """Pre-activation residual block; its 3x3 convs are quantized, its 1x1 shortcut is fp32."""

    def __init__(self, cin: int, cout: int, stride: int, weight: str, act: str) -> None:
        super().__init__()
        self.bn1, self.act1 = nn.BatchNorm2d(cin), activation(act)
        self.conv1 = QConv2d(cin, cout, 3, stride, 1, weight_precision=weight, act_precision=act)
        self.bn2, self.act2 = nn.BatchNorm2d(cout), activation(act)
        self.conv2 = QConv2d(cout, cout, 3, 1, 1, weight_precision=weight, act_precision=act)
        self.shortcut: nn.Module = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Conv2d(cin, cout, 1, stride, bias=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(self.act1(self.bn1(x)))
        return self.conv2(self.act2(self.bn2(h))) + self.shortcut(x)


class ConvBlock(nn.Module):
    """Pre-activation conv block: BN, nonlinearity, quantized 3x3 conv, optional 2x2 max-pool."""

    def __init__(
        self, cin: int, cout: int, pool: bool, weight: str, act: str, stride: int = 1
    ) -> None:
        super().__init__()
        self.bn, self.act = nn.BatchNorm2d(cin), activation(act)
        self.conv = QConv2d(cin, cout, 3, stride, 1, weight_precision=weight, act_precision=act)
        self.pool: nn.Module = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.conv(self.act(self.bn(x))))


class ConvExit(ConvBlock):
    """A stronger exit: a stride-2 ``ConvBlock`` at the edge's precisions, doubling the
    channels, then the plain classifier ``Head``."""

    def __init__(self, channels: int, num_classes: int, weight: str, act: str) -> None:
        super().__init__(channels, 2 * channels, False, weight, act, stride=2)
        self.head = Head(2 * channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(super().forward(x))


def _exit_head(
    kind: str, parts: Parts, precision: str | int | None = None
) -> Callable[[int, int, str], nn.Module]:
    """Each exit's head; a conv head runs at its part's precisions, or at ``precision``
    (weights and activations) where one is given."""
    if kind not in EXIT_HEADS:
        raise ValueError(f"exit_head {kind!r} is not one of {', '.join(EXIT_HEADS)}")
    if kind == "linear":
        if precision is not None:
            raise ValueError(
                f"exit_precision {precision!r} needs exit_head 'conv': a linear exit head has "
                "no quantized conv"
            )
        return lambda channels, num_classes, _tier: Head(channels, num_classes)
    if precision is None:
        return lambda channels, num_classes, tier: ConvExit(
            channels, num_classes, *parts.precisions(tier)
        )
    own = parse_precision(precision)
    return lambda channels, num_classes, _tier: ConvExit(channels, num_classes, own, own)


def with_act_grid(model: HybridNet, grid: str) -> HybridNet:
    """Put every quantized layer's k-bit inputs on ``grid`` (``ACT_GRIDS``). The features
    a part sends stay on the signed grid, which the split codec packs."""
    if grid not in ACT_GRIDS:
        raise ValueError(f"act_grid {grid!r} is not one of {', '.join(ACT_GRIDS)}")
    for m in model.modules():
        if isinstance(m, QConv2d | QLinear):
            m.act_grid = grid
    return model


def _default_split(depth: int) -> int:
    # After stage 2 of the three.
    return 2 * ((depth - 2) // 6)


def _cifar_resnet(
    depth: int,
    num_classes: int,
    exits: Sequence[int] | None,
    p: Parts,
    exit_head: str,
    image_shape: Sequence[int],
    block: str = "basic",
    exit_precision: str | int | None = None,
    edge_width: int = 1,
) -> HybridNet:
    if block not in BLOCKS:
        raise ValueError(f"block {block!r} is not one of {', '.join(BLOCKS)}")
    if isinstance(edge_width, bool) or not isinstance(edge_width, int) or edge_width < 1:
        raise ValueError(f"edge_width {edge_width!r} must be a whole number, 1 or more")
    # Stages 2 and 3 each halve the feature map.
    height, width, c = check_image_shape(image_shape, 4, f"resnet{depth}")
    mean, std = normalisation(c)
    per_stage = (depth - 2) // 6
    # The stem always runs on the device, so it widens with the device's blocks.
    blocks, channels, cin = [], [], 16 * edge_width
    for stage, base in enumerate((16, 32, 64)):
        for j in range(per_stage):
            stride = 2 if stage > 0 and j == 0 else 1
            tier = p.tier(len(blocks))
            cout = base * edge_width if tier == "device" else base
            # Fog and cloud blocks stay plain: Bi-Real's shortcuts are for the device's blocks.
            kind = BiRealBlock if block == "bireal" and tier == "device" else BasicBlock
            blocks.append(kind(cin, cout, stride, *p.precisions(tier)))
            channels.append(cout)
            cin = cout
    return HybridNet(
        nn.Conv2d(c, 16 * edge_width, 3, 1, 1, bias=False),
        blocks,
        channels,
        exits=p.default_exits(exits),
        num_classes=num_classes,
        input_shape=(c, height, width),
        input_mean=mean,
        input_std=std,
        exit_head=_exit_head(exit_head, p, exit_precision),
        **p.net_args(),
    )


@register_model
def resnet20(
    num_classes: int = 10,
    split: int | None = None,
    exits: Sequence[int] | None = None,
    weight_precision: str | int = "fp32",
    act_precision: str | int = "fp32",
    exit_head: str = "linear",
    image_shape: Sequence[int] = CIFAR_SHAPE,
    block: str = "basic",
    fog_split: int | None = None,
    fog_weight_precision: str | int | None = None,
    fog_act_precision: str | int | None = None,
    act_grid: str = "signed",
    exit_precision: str | int | None = None,
    edge_width: int = 1,
    split_precision: str | int | None = None,
) -> HybridNet:
    """CIFAR ResNet-20 (3 stages x 3 blocks, 16/32/64 channels); default split after stage 2.
    ``exit_head`` is ``linear`` (pool and classify) or ``conv`` (a quantized conv first);
    ``image_shape`` is (H, W, C) of the input images; ``block`` is the edge blocks' kind
    (``BLOCKS``). With ``fog_split``, blocks ``split..fog_split-1`` run on the fog at
    ``fog_weight_precision`` and ``fog_act_precision`` (default fp32), and exits may sit in
    1..fog_split (default: one at the end of the device part and one at the end of the fog's).
    ``act_grid`` places k-bit activations (int2/int4/int8) on ``signed`` [-1, 1] or ``relu``
    [0, 1] levels (``with_act_grid``). ``exit_precision`` runs each conv exit head at that
    precision (weights and activations) instead of its part's. ``edge_width`` multiplies the
    channels of the stem and of the device part's blocks (a wider binary edge); the fog and
    cloud blocks keep theirs, the first of them taking the wider features. ``split_precision``
    is what the device sends (its features quantized at the split), if not its activations'
    precision: a Bi-Real edge's blocks output real-valued sums that a binary boundary cuts to
    one bit.
    """
    parts = Parts.of(
        _default_split(20) if split is None else split,
        fog_split,
        weight_precision,
        act_precision,
        fog_weight_precision,
        fog_act_precision,
        split_precision,
    )
    net = _cifar_resnet(
        20, num_classes, exits, parts, exit_head, image_shape, block, exit_precision, edge_width
    )
    return with_act_grid(net, act_grid)


@register_model
def resnet32(
    num_classes: int = 10,
    split: int | None = None,
    exits: Sequence[int] | None = None,
    weight_precision: str | int = "fp32",
    act_precision: str | int = "fp32",
    exit_head: str = "linear",
    image_shape: Sequence[int] = CIFAR_SHAPE,
    block: str = "basic",
    fog_split: int | None = None,
    fog_weight_precision: str | int | None = None,
    fog_act_precision: str | int | None = None,
    act_grid: str = "signed",
    exit_precision: str | int | None = None,
    edge_width: int = 1,
    split_precision: str | int | None = None,
) -> HybridNet:
    """CIFAR ResNet-32 (3 stages x 5 blocks), the seed paper's network; the arguments are
    ``resnet20``'s."""
    parts = Parts.of(
        _default_split(32) if split is None else split,
        fog_split,
        weight_precision,
        act_precision,
        fog_weight_precision,
        fog_act_precision,
        split_precision,
    )
    net = _cifar_resnet(
        32, num_classes, exits, parts, exit_head, image_shape, block, exit_precision, edge_width
    )
    return with_act_grid(net, act_grid)


@register_model
def smallcnn(
    num_classes: int = 10,
    split: int = 2,
    exits: Sequence[int] | None = None,
    weight_precision: str | int = "fp32",
    act_precision: str | int = "fp32",
    exit_head: str = "linear",
    image_shape: Sequence[int] = FASHION_SHAPE,
    fog_split: int | None = None,
    fog_weight_precision: str | int | None = None,
    fog_act_precision: str | int | None = None,
    act_grid: str = "signed",
    exit_precision: str | int | None = None,
    split_precision: str | int | None = None,
) -> HybridNet:
    """Small CNN, by default for 28x28 grayscale: fp32 stem, 4 conv blocks (32, 64, 64, 64
    channels); ``image_shape`` is (H, W, C) of the input images; the fog part as ``resnet20``'s.
    """
    # The stem's and the first block's max-pools each halve the feature map.
    h, w, c = check_image_shape(image_shape, 4, "smallcnn")
    mean, std = normalisation(c)
    p = Parts.of(
        split,
        fog_split,
        weight_precision,
        act_precision,
        fog_weight_precision,
        fog_act_precision,
        split_precision,
    )
    spec = ((16, 32, True), (32, 64, False), (64, 64, False), (64, 64, False))
    blocks = [
        ConvBlock(cin, cout, pool, *p.precisions(p.tier(i)))
        for i, (cin, cout, pool) in enumerate(spec)
    ]
    net = HybridNet(
        nn.Sequential(nn.Conv2d(c, 16, 3, 1, 1, bias=False), nn.MaxPool2d(2)),
        blocks,
        [cout for _, cout, _ in spec],
        exits=p.default_exits(exits),
        num_classes=num_classes,
        input_shape=(c, h, w),
        input_mean=mean,
        input_std=std,
        exit_head=_exit_head(exit_head, p, exit_precision),
        **p.net_args(),
    )
    return with_act_grid(net, act_grid)

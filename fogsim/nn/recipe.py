"""Training recipes: a YAML file becomes a frozen, validated Recipe."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fogsim.errors import UserInputError
from fogsim.nn.freeze import FREEZABLE, group_of
from fogsim.nn.hybrid import EXIT_HEADS, EXIT_RULES, HybridNet
from fogsim.nn.quant import ACT_GRIDS, parse_precision
from fogsim.nn.rct import MAX_BITS, METHODS, Bitwidth
from fogsim.nn.zoo import BLOCKS, create_model, default_exits, list_models

MAX_RECIPE_BYTES = 1 << 20  # a recipe is a few hundred bytes; a megabyte is something else


@dataclass(frozen=True)
class Augmentation:
    """Random translation by up to ``crop_padding`` pixels, and horizontal flips."""

    crop_padding: int = 0
    hflip: bool = False


@dataclass(frozen=True)
class Distill:
    """Knowledge distillation (Hinton et al. 2015) from a trained teacher checkpoint: every
    exit and the final output also match the teacher's softened final output."""

    teacher: str
    weight: float = 0.5
    temperature: float = 4.0


@dataclass(frozen=True)
class DatasetPath:
    """A dataset read from a path, as a scenario's ``dataset: {path: ...}``; ``path`` is kept
    as written (relative to the recipe file), ``base_dir`` is where it starts."""

    path: str
    name: str | None = None
    base_dir: str = field(default=".", compare=False)

    @property
    def resolved(self) -> Path:
        return Path(self.base_dir) / Path(self.path).expanduser()


@dataclass(frozen=True)
class Recipe:
    """Everything one training run depends on."""

    name: str
    dataset: str | DatasetPath
    architecture: str
    epochs: int
    weight_precision: str = "fp32"
    act_precision: str = "fp32"
    split: int | None = None
    exits: tuple[int, ...] | None = None
    exit_weights: tuple[float, ...] = (0.5,)
    seed: int = 0
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    lr_schedule: str = "onecycle"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augmentation: Augmentation = field(default_factory=Augmentation)
    holdout: int = 5000
    train_subset: int | None = None
    exit_rule: str = "entropy"
    max_accuracy_drop: float = 0.01
    exit_head: str | None = None
    # The edge blocks of a CIFAR ResNet: basic or bireal (fogsim.nn.zoo.BLOCKS).
    block: str | None = None
    # Start from the weights of a trained checkpoint wherever names and shapes match.
    init_from: str | None = None
    distill: Distill | None = None
    # Mixed precision: run convolutions in bfloat16 (CPU autocast); weights stay fp32.
    autocast: str | None = None
    # A three-part network: blocks split..fog_split-1 run on the fog at these precisions.
    fog_split: int | None = None
    fog_weight_precision: str | None = None
    fog_act_precision: str | None = None
    # How the weights are kept while training (fogsim.nn.rct): fp32 (None), qat or rct.
    method: str | None = None
    bitwidth: Bitwidth | None = None
    # Label smoothing (Szegedy et al. 2016) of the cross-entropy on the labels: each wrong
    # class gets label_smoothing / classes of the target. None and 0 train on one-hot labels.
    label_smoothing: float | None = None
    # Where k-bit activations lie: signed [-1, 1] (None) or relu [0, 1] (fogsim.nn.quant).
    act_grid: str | None = None
    # The conv exit heads' precision (weights and activations), if not their part's.
    exit_precision: str | None = None
    # A multiple of the stem's and the device blocks' channels (CIFAR ResNets; None: 1).
    edge_width: int | None = None
    # Parts held fixed at init_from's weights while the rest trains (fogsim.nn.freeze).
    freeze: tuple[str, ...] | None = None
    # What the device sends at the split, if not act_precision.
    split_precision: str | None = None

    def model_kwargs(self) -> dict[str, Any]:
        """Constructor keyword arguments of the network (plain values, stored in checkpoints)."""
        kwargs: dict[str, Any] = {
            "weight_precision": self.weight_precision,
            "act_precision": self.act_precision,
        }
        if self.split is not None:
            kwargs["split"] = self.split
        if self.exits is not None:
            kwargs["exits"] = list(self.exits)
        if self.exit_head is not None:
            kwargs["exit_head"] = self.exit_head
        for key in (
            "block",
            *_FOG_KEYS,
            "act_grid",
            "exit_precision",
            "edge_width",
            "split_precision",
        ):
            if getattr(self, key) is not None:
                kwargs[key] = getattr(self, key)
        return kwargs

    def dataset_args(self) -> dict[str, Any]:
        """Keyword arguments of ``fogsim.data.load_dataset`` for this recipe's dataset."""
        if isinstance(self.dataset, DatasetPath):
            return {"name": self.dataset.name, "path": self.dataset.resolved}
        return {"name": self.dataset}

    def to_dict(self) -> dict[str, Any]:
        """Plain values: the training state and the card are keyed by it, so it must not
        change for an existing recipe."""
        d = dataclasses.asdict(self)
        d["exits"] = list(self.exits) if self.exits is not None else None
        d["exit_weights"] = list(self.exit_weights)
        d["freeze"] = list(self.freeze) if self.freeze is not None else None
        if isinstance(self.dataset, DatasetPath):
            d["dataset"] = {"path": self.dataset.path, "name": self.dataset.name}
        # Keys added after training states were first written appear only when set.
        for key in _LATER_KEYS:
            if d[key] is None:
                del d[key]
        return d


_FOG_KEYS = ("fog_split", "fog_weight_precision", "fog_act_precision")
_LATER_KEYS = (
    "block",
    *_FOG_KEYS,
    "method",
    "bitwidth",
    "label_smoothing",
    "act_grid",
    "exit_precision",
    "edge_width",
    "freeze",
    "split_precision",
)


def _fail(source: str, msg: str) -> UserInputError:
    return UserInputError(f"{source}: {msg}")


class _Bad(ValueError):
    """A value of the wrong type or out of range; the message names the key."""


def _whole(key: str, value: Any, minimum: int) -> int:
    # YAML reads 1e3 as a string: a number the user wrote is accepted as one.
    number = _number(key, value, "a whole number")
    if not number.is_integer():
        raise _Bad(f"{key}: {value!r} is not a whole number")
    if number < minimum:
        raise _Bad(f"{key}: {value!r} must be at least {minimum}")
    return value if isinstance(value, int) else int(number)


def _number(key: str, value: Any, what: str = "a number") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Bad(f"{key}: {value!r} is not {what}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise _Bad(f"{key}: {value!r} is not {what}") from None
    if not math.isfinite(number):
        raise _Bad(f"{key}: {value!r} is not a finite number")
    return number


def _real(key: str, value: Any, low: float, high: float, *, open_low: bool = False) -> float:
    number = _number(key, value)
    if number < low or (open_low and number == low) or number > high:
        bracket = "(" if open_low else "["
        raise _Bad(f"{key}: {value!r} is outside {bracket}{low}, {high}]")
    # An int or float stays as written (to_dict of existing recipes must not change).
    return value if isinstance(value, int | float) else number


def _text(key: str, value: Any, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise _Bad(f"{key}: {value!r} is not a non-empty string")
    if choices is not None and value not in choices:
        raise _Bad(f"{key}: {value!r} is not one of {', '.join(choices)}")
    return value


def _sequence(key: str, value: Any) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _Bad(f"{key}: {value!r} is not a list")
    return list(value)


def _mapping(key: str, value: Any, known: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{key}: {value!r} is not a mapping")
    bad = sorted(str(k) for k in value if k not in known)
    if bad:
        raise _Bad(f"{key}: unknown key(s) {bad}; known: {', '.join(sorted(known))}")
    return value


def _precision(key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Bad(f"{key}: {value!r} is not a precision name or bitwidth")
    try:
        return parse_precision(value)
    except ValueError as exc:
        raise _Bad(f"{key}: {exc}") from None


def _augmentation(value: Any) -> Augmentation:
    raw = _mapping("augmentation", {} if value is None else value, {"crop_padding", "hflip"})
    hflip = raw.get("hflip", False)
    if not isinstance(hflip, bool):
        raise _Bad(f"augmentation.hflip: {hflip!r} is not true or false")
    padding = _whole("augmentation.crop_padding", raw.get("crop_padding", 0), 0)
    return Augmentation(crop_padding=padding, hflip=hflip)


def _distill(value: Any) -> Distill:
    if not isinstance(value, dict) or "teacher" not in value:
        raise _Bad("distill: give a mapping with at least `teacher: CHECKPOINT.pt`")
    raw = _mapping("distill", value, {"teacher", "weight", "temperature"})
    return Distill(
        teacher=_text("distill.teacher", raw["teacher"]),
        weight=_real("distill.weight", raw.get("weight", 0.5), 0, 1, open_low=True),
        temperature=_real(
            "distill.temperature", raw.get("temperature", 4.0), 0, 1e6, open_low=True
        ),
    )


def _bitwidth(value: Any) -> Bitwidth:
    fields = {f.name for f in dataclasses.fields(Bitwidth)}
    raw = _mapping("bitwidth", value, fields)
    default = Bitwidth()
    ints = {
        k: _whole(f"bitwidth.{k}", raw.get(k, getattr(default, k)), 2)
        for k in ("start", "min", "max")
    }
    if ints["max"] > MAX_BITS:
        raise _Bad(
            f"bitwidth.max: {ints['max']} is above {MAX_BITS} (weights are stored as int8, "
            "or int16 above 8 bits)"
        )
    if not ints["min"] <= ints["start"] <= ints["max"]:
        raise _Bad(
            f"bitwidth.start: {ints['start']} is outside min..max ({ints['min']}..{ints['max']})"
        )
    grow = _real("bitwidth.grow_below", raw.get("grow_below", default.grow_below), 0, 1e6)
    shrink = _real("bitwidth.shrink_above", raw.get("shrink_above", default.shrink_above), 0, 1e6)
    if grow >= shrink:
        raise _Bad(f"bitwidth.grow_below: {grow} must be below shrink_above ({shrink})")
    return Bitwidth(grow_below=grow, shrink_above=shrink, **ints)


def _dataset(value: Any, base_dir: Path) -> str | DatasetPath:
    if isinstance(value, dict):
        raw = _mapping("dataset", value, {"path", "name"})
        if "path" not in raw:
            raise _Bad("dataset: a mapping needs `path:` (or give a registered name as a string)")
        name = raw.get("name")
        return DatasetPath(
            path=_text("dataset.path", raw["path"]),
            name=None if name is None else _text("dataset.name", name),
            base_dir=str(base_dir),
        )
    if not isinstance(value, str) or not value:
        raise _Bad(
            f"dataset: {value!r} is neither a dataset name (`fogsim data list`) "
            "nor `{path: FOLDER_OR_FILE}`"
        )
    return value


def _exits(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    return tuple(_whole(f"exits[{i}]", v, 1) for i, v in enumerate(_sequence("exits", value)))


def _exit_weights(value: Any) -> tuple[float, ...]:
    items = _sequence("exit_weights", value)
    weights = tuple(_real(f"exit_weights[{i}]", v, 0, 1) for i, v in enumerate(items))
    if sum(weights) >= 1:
        raise _Bad("exit_weights must sum below 1 (the rest weighs the final output)")
    return weights


def _freeze(value: Any) -> tuple[str, ...]:
    parts = tuple(
        _text(f"freeze[{i}]", v, FREEZABLE) for i, v in enumerate(_sequence("freeze", value))
    )
    if len(set(parts)) != len(parts):
        raise _Bad(f"freeze: {list(parts)} names a part twice")
    return parts


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _name(value: Any) -> str:
    name = _text("name", value)
    if not _NAME.fullmatch(name):
        raise _Bad(f"name: {name!r} must be letters, digits, '.', '_' or '-' (it names files)")
    return name


# One check per key: it returns the typed value or raises _Bad naming the key.
_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": _name,
    "architecture": lambda v: _text("architecture", v, tuple(list_models())),
    "epochs": lambda v: _whole("epochs", v, 1),
    "weight_precision": lambda v: _precision("weight_precision", v),
    "act_precision": lambda v: _precision("act_precision", v),
    "split": _optional(lambda v: _whole("split", v, 0)),
    "exits": _exits,
    "exit_weights": _exit_weights,
    "seed": lambda v: _whole("seed", v, 0),
    "batch_size": lambda v: _whole("batch_size", v, 1),
    "optimizer": lambda v: _text("optimizer", v, ("sgd", "adam")),
    "lr": lambda v: _real("lr", v, 0, 1e3, open_low=True),
    "lr_schedule": lambda v: _text("lr_schedule", v, ("onecycle", "cosine", "constant")),
    "momentum": lambda v: _real("momentum", v, 0, 1),
    "weight_decay": lambda v: _real("weight_decay", v, 0, 1e3),
    "augmentation": _augmentation,
    "holdout": lambda v: _whole("holdout", v, 1),
    "train_subset": _optional(lambda v: _whole("train_subset", v, 1)),
    "exit_rule": lambda v: _text("exit_rule", v, EXIT_RULES),
    "max_accuracy_drop": lambda v: _real("max_accuracy_drop", v, 0, 1),
    "exit_head": _optional(lambda v: _text("exit_head", v, EXIT_HEADS)),
    "block": _optional(lambda v: _text("block", v, BLOCKS)),
    "init_from": _optional(lambda v: _text("init_from", v)),
    "distill": _optional(_distill),
    "autocast": _optional(lambda v: _text("autocast", v, ("bf16",))),
    "fog_split": _optional(lambda v: _whole("fog_split", v, 1)),
    "fog_weight_precision": _optional(lambda v: _precision("fog_weight_precision", v)),
    "fog_act_precision": _optional(lambda v: _precision("fog_act_precision", v)),
    "method": _optional(lambda v: _text("method", v, ("fp32", *METHODS))),
    "bitwidth": _optional(_bitwidth),
    "act_grid": _optional(lambda v: _text("act_grid", v, ACT_GRIDS)),
    "exit_precision": _optional(lambda v: _precision("exit_precision", v)),
    "edge_width": _optional(lambda v: _whole("edge_width", v, 1)),
    "freeze": _optional(_freeze),
    "split_precision": _optional(lambda v: _precision("split_precision", v)),
    # 1 would make every class's target equal: nothing left to learn.
    "label_smoothing": _optional(lambda v: _real("label_smoothing", v, 0, 0.999)),
}


def recipe_from_dict(
    raw: dict[str, Any], source: str = "recipe", base_dir: Path | None = None
) -> Recipe:
    """Validate a recipe mapping; unknown keys and bad values are errors naming the key.
    A dataset path is relative to ``base_dir`` (the recipe's folder; default: here)."""
    if not isinstance(raw, dict):
        raise _fail(source, "a recipe is a mapping of keys to values")
    known = {f.name for f in dataclasses.fields(Recipe)}
    for key in raw:
        if key not in known:
            raise _fail(source, f"unknown key {key!r}; known keys: {', '.join(sorted(known))}")
    missing = [
        f.name
        for f in dataclasses.fields(Recipe)
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in raw
    ]
    if missing:
        raise _fail(source, f"missing required key(s): {', '.join(missing)}")
    try:
        values = {key: _CHECKS[key](value) for key, value in raw.items() if key != "dataset"}
        values["dataset"] = _dataset(raw["dataset"], Path(".") if base_dir is None else base_dir)
        recipe = Recipe(**values)
        model = _check_network(recipe)
        _check_method(recipe, raw.get("bitwidth"))
        _check_freeze(recipe, model)
    except _Bad as exc:
        raise _fail(source, str(exc)) from None
    return recipe


def _check_network(r: Recipe) -> HybridNet:
    """Split, fog split, exits and exit head against the architecture's blocks, before any
    training; return the recipe's network, untrained."""
    default = create_model(r.architecture)
    n = len(default.blocks)
    if r.split is not None and not 0 <= r.split <= n:
        raise _Bad(f"split: {r.split} is outside 0..{n}, the blocks of {r.architecture}")
    split = default.split if r.split is None else r.split
    _check_fog(r, split, n)
    last, what = (split, "the split") if r.fog_split is None else (r.fog_split, "fog_split")
    exits = default_exits(split, r.fog_split) if r.exits is None else r.exits
    if any(not 1 <= e <= last for e in exits) or list(exits) != sorted(set(exits)):
        raise _Bad(
            f"exits: {list(exits)} must be increasing block numbers in 1..{last} ({what}"
            f"{', by default' if r.split is None and r.fog_split is None else ''}; "
            "no exits: `exits: []`)"
        )
    try:
        model = create_model(r.architecture, **r.model_kwargs())
    except ValueError as exc:
        raise _Bad(f"{exc} ({r.architecture} with {r.model_kwargs()})") from None
    n = len(model.exit_points)
    if len(r.exit_weights) != n:
        raise _Bad(
            f"exit_weights has {len(r.exit_weights)} weight(s) for {n} exit(s) "
            f"(exits {list(model.exit_points)}); give one weight per exit"
        )
    return model


def _check_fog(r: Recipe, split: int, n: int) -> None:
    if r.fog_split is None:
        given = [k for k in _FOG_KEYS[1:] if getattr(r, k) is not None]
        if given:
            raise _Bad(
                f"{given[0]}: {getattr(r, given[0])!r} is a fog part's precision, but the "
                "recipe has no fog part; add `fog_split: N` (the fog runs blocks split+1..N) "
                "or remove it"
            )
        return
    if not split < r.fog_split <= n:
        raise _Bad(
            f"fog_split: {r.fog_split} is outside {split + 1}..{n}: the fog part runs the "
            f"blocks after the split ({split}) up to fog_split, at least one and at most the "
            f"{n} blocks of {r.architecture}"
        )


def _check_freeze(r: Recipe, model: HybridNet) -> None:
    """A frozen part keeps init_from's weights, so it needs them; something must still train;
    and each part named must be in the recipe's network, ``model``."""
    if not r.freeze:
        return
    if r.init_from is None:
        raise _Bad(
            f"freeze: {list(r.freeze)} without init_from would hold those parts at their "
            "random initialisation; add `init_from: CHECKPOINT.pt` (the trained network)"
        )
    if (r.method or "fp32") != "fp32":
        raise _Bad(f"freeze with method {r.method}: the method trains every layer; remove one")
    present = {group_of(name, model) for name, _ in model.named_parameters()}
    absent = [part for part in r.freeze if part not in present]
    if absent:
        what = {"fog": "no fog part (fog_split)", "exits": "no exit heads"}.get(
            absent[0], f"no {absent[0]} part"
        )
        raise _Bad(f"freeze: {absent[0]!r}, but the network has {what}")
    if present <= set(r.freeze):
        raise _Bad(f"freeze: {list(r.freeze)} holds every part fixed; nothing would train")


def _check_method(r: Recipe, bitwidth: Any) -> None:
    """What qat and rct need: weights whose precision the method sets, and, for rct, SGD
    (its momentum, if any, is kept as int8 beside the integer weights)."""
    method = r.method or "fp32"
    if method == "fp32":
        if r.bitwidth is not None:
            raise _Bad("bitwidth: only `method: rct` or `method: qat` train at a bitwidth")
        return
    fixed = [(k, getattr(r, k)) for k in ("weight_precision", "fog_weight_precision")]
    fixed = [(k, v) for k, v in fixed if v not in (None, "fp32")]
    if fixed:
        key, value = fixed[0]
        raise _Bad(
            f"{key}: {value!r} with method {method}: the method quantizes every layer's weights "
            "itself, to its bitwidth (`bitwidth:`); set weight_precision: fp32"
        )
    if r.autocast is not None:
        raise _Bad(f"autocast: {r.autocast!r} with method {method}: its GEMMs are integer")
    if method == "qat":
        extra = sorted(set(bitwidth or {}) - {"start"})
        if extra:
            raise _Bad(f"bitwidth.{extra[0]}: qat trains at a fixed bitwidth; give only start")
        return
    if r.optimizer != "sgd":
        raise _Bad(
            f"optimizer: {r.optimizer!r} with method rct would keep fp32 state per weight; use "
            "sgd (with momentum, rct keeps it as int8)"
        )


def load_recipe(path: Path) -> Recipe:
    """Read and validate a recipe YAML file."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"no recipe file at {path}; see models/recipes/ for examples")
    if path.stat().st_size > MAX_RECIPE_BYTES:
        raise UserInputError(
            f"{path} is {path.stat().st_size} bytes; a recipe is a short YAML file "
            "(see models/recipes/)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserInputError(f"{path} is not a text file; a recipe is YAML") from None
    try:
        raw = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # PyYAML raises ValueError for impossible dates such as 2024-13-01.
        raise UserInputError(f"{path}: not valid YAML ({exc})") from None
    return recipe_from_dict(raw, str(path), base_dir=path.parent)

"""Training recipes: a YAML file becomes a frozen, validated Recipe."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fogsim.errors import UserInputError
from fogsim.nn.hybrid import EXIT_HEADS, EXIT_RULES
from fogsim.nn.quant import parse_precision
from fogsim.nn.zoo import list_models


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
class Recipe:
    """Everything one training run depends on."""

    name: str
    dataset: str
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
    # Start from the weights of a trained checkpoint wherever names and shapes match.
    init_from: str | None = None
    distill: Distill | None = None
    # Mixed precision: run convolutions in bfloat16 (CPU autocast); weights stay fp32.
    autocast: str | None = None

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
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["exits"] = list(self.exits) if self.exits is not None else None
        d["exit_weights"] = list(self.exit_weights)
        return d


def _fail(source: str, msg: str) -> UserInputError:
    return UserInputError(f"{source}: {msg}")


def recipe_from_dict(raw: dict[str, Any], source: str = "recipe") -> Recipe:
    """Validate a recipe mapping; unknown keys and bad values are errors naming the key."""
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
    values = dict(raw)
    aug = values.get("augmentation") or {}
    bad = set(aug) - {"crop_padding", "hflip"}
    if bad:
        raise _fail(
            source, f"augmentation: unknown key(s) {sorted(bad)}; known: crop_padding, hflip"
        )
    values["augmentation"] = Augmentation(**aug)
    if values.get("distill") is not None:
        values["distill"] = _distill(values["distill"], source)
    for key in ("exits", "exit_weights"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    try:
        for key in ("weight_precision", "act_precision"):
            values[key] = parse_precision(values.get(key, "fp32"))
    except ValueError as exc:
        raise _fail(source, f"{key}: {exc}") from None
    recipe = Recipe(**values)
    _check(recipe, source)
    return recipe


def _distill(raw: Any, source: str) -> Distill:
    known = {f.name for f in dataclasses.fields(Distill)}
    if not isinstance(raw, dict) or "teacher" not in raw:
        raise _fail(source, "distill: give a mapping with at least `teacher: CHECKPOINT.pt`")
    bad = set(raw) - known
    if bad:
        raise _fail(source, f"distill: unknown key(s) {sorted(bad)}; known: {sorted(known)}")
    d = Distill(**raw)
    if not 0 < d.weight <= 1 or d.temperature <= 0:
        raise _fail(source, "distill: weight must be in (0, 1] and temperature positive")
    return d


def _check(r: Recipe, source: str) -> None:
    if r.architecture not in list_models():
        raise _fail(source, f"architecture: unknown {r.architecture!r}; use one of {list_models()}")
    if r.epochs < 1 or r.batch_size < 1 or r.lr <= 0:
        raise _fail(source, "epochs, batch_size and lr must be positive")
    if sum(r.exit_weights) >= 1 or any(w < 0 for w in r.exit_weights):
        raise _fail(source, "exit_weights must be >= 0 and sum below 1 (the rest weighs the final)")
    if r.optimizer not in ("sgd", "adam"):
        raise _fail(source, f"optimizer: {r.optimizer!r} is not sgd or adam")
    if r.lr_schedule not in ("onecycle", "cosine", "constant"):
        raise _fail(source, f"lr_schedule: {r.lr_schedule!r} is not onecycle, cosine or constant")
    if r.exit_rule not in EXIT_RULES:
        raise _fail(source, f"exit_rule: {r.exit_rule!r} is not one of {EXIT_RULES}")
    if r.exit_head is not None and r.exit_head not in EXIT_HEADS:
        raise _fail(source, f"exit_head: {r.exit_head!r} is not one of {EXIT_HEADS}")
    if r.autocast not in (None, "bf16"):
        raise _fail(source, f"autocast: {r.autocast!r} is not bf16 (or leave it out for fp32)")


def load_recipe(path: Path) -> Recipe:
    """Read and validate a recipe YAML file."""
    if not Path(path).is_file():
        raise UserInputError(f"no recipe file at {path}; see models/recipes/ for examples")
    with open(path) as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise UserInputError(f"{path}: not valid YAML ({exc})") from None
    return recipe_from_dict(raw, str(path))

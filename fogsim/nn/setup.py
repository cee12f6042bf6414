"""Everything a training run depends on, checked and built before its first step: the device,
the dataset's two splits, the network fitted to the images, init_from, the teacher, bf16."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fogsim.data.dataset import Dataset, subset
from fogsim.errors import CheckpointError, UserInputError
from fogsim.nn.bf16 import autocast_precision
from fogsim.nn.checkpoint import dataset_mismatch, load_checkpoint
from fogsim.nn.hybrid import HybridNet
from fogsim.nn.recipe import Recipe
from fogsim.nn.zoo import create_model

STATE_FILE = "state.pt"


def split_train_holdout(n: int, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training images and of held-out ones (for the exit threshold), seeded."""
    perm = _permutation(n, recipe.holdout, recipe.seed)
    train, hold = perm[recipe.holdout :], perm[: recipe.holdout]
    if recipe.train_subset is not None:
        train = train[: recipe.train_subset]
    return np.sort(train), np.sort(hold)


def held_out_indices(n: int, holdout: int, seed: int) -> np.ndarray:
    """The HOLDOUT training images (of N) a recipe with SEED keeps out of training, sorted: the
    ones its thresholds and kept epoch were chosen on."""
    return np.sort(_permutation(n, holdout, seed)[:holdout])


def held_out_images(train: Dataset, card: dict[str, Any], owner: str) -> Dataset:
    """The images of TRAIN that the recipe on OWNER's CARD held out, as the split "holdout"."""
    recipe = card.get("recipe")
    holdout = recipe.get("holdout") if isinstance(recipe, dict) else None
    seed = recipe.get("seed") if isinstance(recipe, dict) else None
    if not isinstance(holdout, int) or not isinstance(seed, int):
        raise CheckpointError(
            f"{owner}: its card records no recipe with `holdout` and `seed`, so which "
            "training images it held out is unknown; use --split test or train"
        )
    return subset(train, held_out_indices(len(train), holdout, seed), "holdout")


def _permutation(n: int, holdout: int, seed: int) -> np.ndarray:
    if holdout >= n:
        raise UserInputError(f"holdout {holdout} leaves no training images out of {n}")
    return np.random.default_rng(seed).permutation(n)


def init_from_checkpoint(model: HybridNet, path: str) -> tuple[str, int, int]:
    """Copy every tensor of a trained checkpoint whose name and shape match; return its sha256,
    the number copied and the number left at their fresh initialisation."""
    ckpt = _load(path, "init_from")
    own = model.state_dict()
    matched = {k: v for k, v in ckpt.state_dict.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise UserInputError(
            f"init_from: no tensor of {path} fits {type(model).__name__} of this recipe; "
            "start from a checkpoint of the same architecture"
        )
    model.load_state_dict(matched, strict=False)
    return ckpt.sha256, len(matched), len(own) - len(matched)


def _load(path: str, key: str) -> Any:
    try:
        return load_checkpoint(path)
    except CheckpointError as exc:
        raise CheckpointError(
            f"{key}: {exc} (a relative path is taken from the current directory, {Path.cwd()})"
        ) from None


def _teacher(path: str, dataset: Any, device: str) -> tuple[HybridNet, str]:
    ckpt = _load(path, "distill teacher")
    problems = dataset_mismatch(ckpt, dataset)
    if problems:
        raise UserInputError(
            f"distill: teacher {path} does not fit this recipe's dataset ({'; '.join(problems)}); "
            "use a teacher trained on the same dataset"
        )
    teacher = ckpt.build().to(device).to(memory_format=torch.channels_last)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher, ckpt.sha256


@dataclass
class TrainingSetup:
    """Everything a training run needs, checked before its first step."""

    train_set: Any
    test_set: Any
    train_idx: np.ndarray
    hold_idx: np.ndarray
    model: HybridNet
    autocast: str | None
    teacher: HybridNet | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


def _check_device(device: str) -> None:
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise UserInputError(f"--device {device!r} is not a torch device (cpu, cuda)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"--device {device}: this torch has no usable CUDA device")


def check_writable(path: Path, what: str) -> None:
    """Refuse now an output that could only fail after the last epoch."""
    if path.is_dir():
        raise UserInputError(f"{what} {path} is a directory; give a file path")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"{what} {path}: cannot create {folder} ({exc.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserInputError(f"{what} {path}: {folder} is not writable")


def _load_splits(recipe: Recipe, load_dataset: Callable[..., Any]) -> tuple[Any, Any]:
    args = recipe.dataset_args()
    train_set = load_dataset(**args, split="train")
    test_set = load_dataset(**args, split="test")
    shape, test_shape = train_set.images.shape[1:], test_set.images.shape[1:]
    if test_shape != shape or tuple(test_set.classes) != tuple(train_set.classes):
        raise UserInputError(
            f"dataset {train_set.name}: the test split ({test_shape}, {len(test_set.classes)} "
            f"classes) does not match the train split ({shape}, {len(train_set.classes)} classes)"
        )
    if len(train_set.classes) < 2:
        raise UserInputError(
            f"dataset {train_set.name} has {len(train_set.classes)} class(es); a classifier "
            "needs at least two"
        )
    return train_set, test_set


def _build(recipe: Recipe, train_set: Any) -> HybridNet:
    shape = [int(v) for v in train_set.images.shape[1:]]
    pad = recipe.augmentation.crop_padding
    if len(shape) == 3 and pad >= min(shape[:2]):
        raise UserInputError(
            f"augmentation.crop_padding {pad} is not smaller than the {shape[0]}x{shape[1]} "
            f"images of {train_set.name}"
        )
    try:
        return create_model(recipe.architecture, **model_args(recipe, train_set))
    except UserInputError as exc:
        raise UserInputError(
            f"architecture {recipe.architecture} does not fit dataset {train_set.name}: {exc}"
        ) from None


def model_args(recipe: Recipe, train_set: Any) -> dict[str, Any]:
    """The network's constructor arguments, fitted to the dataset (stored in the checkpoint)."""
    return {
        "num_classes": len(train_set.classes),
        **recipe.model_kwargs(),
        "image_shape": [int(v) for v in train_set.images.shape[1:]],
    }


def prepare_training(
    recipe: Recipe,
    *,
    load_dataset: Callable[..., Any],
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> TrainingSetup:
    """Check everything a run depends on (device, dataset splits, the network against the
    data, init_from, teacher), so that a bad input never costs an epoch; build the network."""
    _check_device(device)
    # Before torch runs anything here: the bf16 probe may have to cap oneDNN's ISA.
    autocast = autocast_precision(recipe.autocast, device, log)
    torch.manual_seed(recipe.seed)
    train_set, test_set = _load_splits(recipe, load_dataset)
    if test_set.fingerprint == train_set.fingerprint:
        log(f"note: {train_set.name} has one split; test figures are on the training images")
    train_idx, hold_idx = split_train_holdout(len(train_set.labels), recipe)
    model = _build(recipe, train_set)
    setup = TrainingSetup(train_set, test_set, train_idx, hold_idx, model, autocast)
    if recipe.init_from is not None:
        sha, copied, fresh = init_from_checkpoint(model, recipe.init_from)
        setup.provenance["init_from_sha256"] = sha
        log(f"initialised {copied} tensors from {recipe.init_from} ({fresh} left fresh)")
    if recipe.distill is not None:
        setup.teacher, setup.provenance["teacher_sha256"] = _teacher(
            recipe.distill.teacher, train_set, device
        )
    return setup

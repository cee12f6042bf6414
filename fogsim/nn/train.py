"""Joint training of a HybridNet's exits and final output, resumable epoch by epoch."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from fogsim.errors import CheckpointError, UserInputError
from fogsim.nn.bf16 import autocast_precision
from fogsim.nn.checkpoint import (
    atomic_torch_save,
    dataset_mismatch,
    load_checkpoint,
    save_checkpoint,
)
from fogsim.nn.evaluate import choose_threshold, hybrid_metrics, predict, to_input
from fogsim.nn.hybrid import HybridNet
from fogsim.nn.quant import BITS
from fogsim.nn.recipe import Augmentation, DatasetPath, Recipe
from fogsim.nn.zoo import create_model

STATE_FILE = "state.pt"


def split_train_holdout(n: int, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training images and of held-out ones (for the exit threshold), seeded."""
    if recipe.holdout >= n:
        raise UserInputError(f"holdout {recipe.holdout} leaves no training images out of {n}")
    perm = np.random.default_rng(recipe.seed).permutation(n)
    train, hold = perm[recipe.holdout :], perm[: recipe.holdout]
    if recipe.train_subset is not None:
        train = train[: recipe.train_subset]
    return np.sort(train), np.sort(hold)


def augment(x: torch.Tensor, aug: Augmentation, gen: torch.Generator) -> torch.Tensor:
    """Random translation (zero padding) and horizontal flip of a batch, from ``gen``."""
    b, _, h, w = x.shape
    if aug.crop_padding:
        p = aug.crop_padding
        padded = F.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (b, 1), generator=gen)
        dx = torch.randint(0, 2 * p + 1, (b, 1), generator=gen)
        rows = (dy + torch.arange(h))[:, None, :, None]
        cols = (dx + torch.arange(w))[:, None, None, :]
        x = padded[
            torch.arange(b)[:, None, None, None],
            torch.arange(x.shape[1])[None, :, None, None],
            rows,
            cols,
        ]
    if aug.hflip:
        flip = torch.rand(b, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x


def joint_loss(
    exit_logits: list[torch.Tensor],
    final: torch.Tensor,
    y: torch.Tensor,
    weights: tuple[float, ...],
) -> torch.Tensor:
    """sum_i w_i CE(exit_i) + (1 - sum_i w_i) CE(final)."""
    return _weighted(lambda logits: F.cross_entropy(logits, y), exit_logits, final, weights)


def _weighted(
    per_output: Callable[[torch.Tensor], torch.Tensor],
    exit_logits: list[torch.Tensor],
    final: torch.Tensor,
    weights: tuple[float, ...],
) -> torch.Tensor:
    """sum_i w_i f(exit_i) + (1 - sum_i w_i) f(final): the joint weighting of exits and final."""
    loss = (1 - sum(weights)) * per_output(final)
    for w, logits in zip(weights, exit_logits, strict=True):
        loss = loss + w * per_output(logits)
    return loss


def distill_loss(
    exit_logits: list[torch.Tensor],
    final: torch.Tensor,
    teacher: torch.Tensor,
    weights: tuple[float, ...],
    temperature: float,
) -> torch.Tensor:
    """The joint loss's weighting of T^2 KL(teacher || output) at temperature T."""
    target = F.softmax(teacher.float() / temperature, dim=-1)

    def kd(logits: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float() / temperature, dim=-1)
        return F.kl_div(logp, target, reduction="batchmean") * temperature**2

    return _weighted(kd, exit_logits, final, weights)


def init_from_checkpoint(model: HybridNet, path: str) -> tuple[str, int, int]:
    """Copy every tensor of a trained checkpoint whose name and shape match; return its sha256,
    the number copied and the number left at their fresh initialisation."""
    ckpt = _load(path, "init_from")
    own = model.state_dict()
    matched = {
        k: v for k, v in ckpt.state_dict.items() if k in own and own[k].shape == v.shape
    }
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
            f"{key}: {exc} (a relative path is taken from the current directory, "
            f"{Path.cwd()})"
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


def _autocast(autocast: str | None, device: str) -> contextlib.AbstractContextManager[Any]:
    if autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def _optimizer(model: HybridNet, r: Recipe, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    if r.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(),
            lr=r.lr,
            momentum=r.momentum,
            weight_decay=r.weight_decay,
            nesterov=True,
        )
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    if r.lr_schedule == "onecycle":
        # A quarter of the steps warm up; at least two, since OneCycleLR divides by the count.
        warmup = max(0.25, 2 / steps) if steps >= 4 else 0.5
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=r.lr, total_steps=max(steps, 4), pct_start=warmup
        )
    elif r.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return opt, sched


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@dataclass
class _Setup:
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


def _check_writable(path: Path, what: str) -> None:
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
) -> _Setup:
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
    setup = _Setup(train_set, test_set, train_idx, hold_idx, model, autocast)
    if recipe.init_from is not None:
        sha, copied, fresh = init_from_checkpoint(model, recipe.init_from)
        setup.provenance["init_from_sha256"] = sha
        log(f"initialised {copied} tensors from {recipe.init_from} ({fresh} left fresh)")
    if recipe.distill is not None:
        setup.teacher, setup.provenance["teacher_sha256"] = _teacher(
            recipe.distill.teacher, train_set, device
        )
    return setup


def train_recipe(
    recipe: Recipe,
    *,
    work_dir: Path,
    output: Path,
    command: str,
    load_dataset: Callable[..., Any],
    progress: bool = True,
    log: Callable[[str], None] = print,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train, resuming from ``work_dir``; write the checkpoint to ``output`` and return its card."""
    setup = prepare_training(recipe, load_dataset=load_dataset, device=device, log=log)
    _check_writable(Path(output), "output")
    _check_writable(Path(work_dir) / STATE_FILE, "work dir")
    model, teacher, train_set = setup.model, setup.teacher, setup.train_set
    train_idx, hold_idx = setup.train_idx, setup.hold_idx
    # Channels-last convolutions run about 1.5x faster on CPU: the same maths, another layout.
    model.to(device).to(memory_format=torch.channels_last)
    steps_per_epoch = -(-len(train_idx) // recipe.batch_size)
    opt, sched = _optimizer(model, recipe, steps_per_epoch * recipe.epochs)
    start, best = _resume(work_dir / STATE_FILE, recipe, model, opt, sched, log)
    x_all = to_input(train_set.images)
    y_all = torch.from_numpy(np.asarray(train_set.labels, dtype=np.int64))
    for epoch in range(start, recipe.epochs):
        model.train()
        # A generator per epoch keeps a resumed run identical to an uninterrupted one.
        gen = torch.Generator().manual_seed(recipe.seed * 100_003 + epoch)
        order = torch.from_numpy(train_idx)[torch.randperm(len(train_idx), generator=gen)]
        bar = tqdm(
            order.split(recipe.batch_size),
            desc=f"epoch {epoch + 1}/{recipe.epochs}",
            unit="batch",
            disable=not progress,
        )
        total = 0.0
        for i, idx in enumerate(bar, start=1):
            x = augment(x_all[idx], recipe.augmentation, gen).to(device)
            x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(setup.autocast, device):
                exit_logits, final = model(x)
                loss = joint_loss(exit_logits, final, y_all[idx].to(device), recipe.exit_weights)
                if teacher is not None and recipe.distill is not None:
                    with torch.no_grad():
                        _, teacher_logits = teacher(x)
                    w = recipe.distill.weight
                    loss = (1 - w) * loss + w * distill_loss(
                        exit_logits,
                        final,
                        teacher_logits,
                        recipe.exit_weights,
                        recipe.distill.temperature,
                    )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
            bar.set_postfix(loss=f"{total / i:.3f}")
        hold = hybrid_metrics(_outputs(model, train_set, hold_idx), recipe.exit_rule, 1.0)
        score = float(hold["accuracy"]["cloud"])
        if best is None or score > best["score"]:
            best = {"score": score, "epoch": epoch + 1, "model": _cpu_copy(model.state_dict())}
        # Saved before the log line, so an interrupt after it loses nothing.
        atomic_torch_save(
            {
                "recipe": recipe.to_dict(),
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "best": best,
            },
            work_dir / STATE_FILE,
        )
        log(
            f"epoch {epoch + 1}: loss {total / i:.4f}, held-out accuracy edge "
            f"{hold['accuracy']['edge']}, cloud {score:.4f} "
            f"(best {best['score']:.4f} after epoch {best['epoch']})"
        )
    if best is not None and best["epoch"] != recipe.epochs:
        # The held-out split, never the test split, chooses the epoch that ships.
        log(f"keeping the weights of epoch {best['epoch']}, best on held-out images")
        model.load_state_dict(best["model"])
    model.cpu().to(memory_format=torch.contiguous_format)
    card = {**_card(model, recipe, setup, command), **setup.provenance}
    save_checkpoint(output, recipe.architecture, model_args(recipe, train_set), model, card)
    return card


def _outputs(model: HybridNet, dataset: Any, idx: np.ndarray) -> Any:
    return predict(model, dataset.images[idx], dataset.labels[idx])


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _resume(
    state_path: Path,
    recipe: Recipe,
    model: HybridNet,
    opt: Any,
    sched: Any,
    log: Callable[[str], None],
) -> tuple[int, dict[str, Any] | None]:
    """The epoch to start from and the best held-out weights so far, from ``state_path``."""
    if not state_path.is_file():
        return 0, None
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise UserInputError(
            f"{state_path} is not a readable training state ({type(exc).__name__}); "
            "delete it to start the run again from epoch 0"
        ) from None
    if not isinstance(state, dict) or state.get("recipe") != recipe.to_dict():
        raise UserInputError(
            f"{state_path} holds a run of a different recipe; pass another --work-dir or delete it"
        )
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise UserInputError(
            f"{state_path} does not fit this run's network ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); pass another --work-dir or "
            "delete it to start again from epoch 0"
        ) from None
    log(f"resuming after epoch {state['epoch']} from {state_path}")
    return int(state["epoch"]), state.get("best")


def _card(model: HybridNet, recipe: Recipe, setup: _Setup, command: str) -> dict[str, Any]:
    """Choose the exit threshold on held-out training images, then report test metrics."""
    train_set, test_set, hold_idx = setup.train_set, setup.test_set, setup.hold_idx
    hold = _outputs(model, train_set, hold_idx)
    threshold = choose_threshold(
        hold, recipe.exit_rule, recipe.max_accuracy_drop, len(train_set.classes)
    )
    test = predict(model, test_set.images, test_set.labels)
    m = hybrid_metrics(test, recipe.exit_rule, threshold)
    card: dict[str, Any] = {
        "name": recipe.name,
        "dataset": str(test_set.name),
        "dataset_fingerprint": str(getattr(test_set, "fingerprint", "")),
        "classes": list(test_set.classes),
        "image_shape": [int(v) for v in test_set.images.shape[1:]],
        "architecture": recipe.architecture,
        "weight_precision": recipe.weight_precision,
        "act_precision": recipe.act_precision,
        "weight_bits": BITS[recipe.weight_precision],
        "act_bits": BITS[recipe.act_precision],
        "split": model.split,
        "exits": list(model.exit_points),
        "epochs": recipe.epochs,
        "train_images": len(setup.train_idx),
        "default_rule": recipe.exit_rule,
        "default_threshold": threshold,
        "threshold_chosen_on": f"{len(hold_idx)} held-out train images, hybrid accuracy within "
        f"{recipe.max_accuracy_drop} of the cloud path",
        "holdout_metrics": hybrid_metrics(hold, recipe.exit_rule, threshold),
        "test_metrics": m,
        "recipe": recipe.to_dict(),
        "autocast": setup.autocast,
        "command": command,
        "git_commit": _git_commit(),
        "torch_version": str(torch.__version__),
    }
    if isinstance(recipe.dataset, DatasetPath):
        card["dataset_path"] = str(recipe.dataset.resolved.resolve())
    return card

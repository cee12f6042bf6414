"""Joint training of a HybridNet's exits and final output, resumable epoch by epoch; what
the run needs is checked and built first, in ``fogsim.nn.setup``."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from fogsim.errors import UserInputError
from fogsim.nn.checkpoint import atomic_torch_save, save_checkpoint
from fogsim.nn.evaluate import (
    choose_threshold,
    choose_thresholds,
    hybrid_metrics,
    predict,
    tier_metrics,
    to_input,
)
from fogsim.nn.freeze import freeze, group_of, hold_statistics
from fogsim.nn.hybrid import HybridNet
from fogsim.nn.quant import BITS
from fogsim.nn.rct import Bitwidth, LowPrecisionTraining
from fogsim.nn.recipe import Augmentation, DatasetPath, Recipe
from fogsim.nn.setup import STATE_FILE, TrainingSetup, check_writable, model_args, prepare_training
from fogsim.nn.training_cost import Schedule, training_report


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
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """sum_i w_i CE(exit_i) + (1 - sum_i w_i) CE(final), each CE on labels smoothed by
    ``label_smoothing``."""
    return _weighted(
        lambda logits: F.cross_entropy(logits, y, label_smoothing=label_smoothing),
        exit_logits,
        final,
        weights,
    )


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


def _autocast(autocast: str | None, device: str) -> contextlib.AbstractContextManager[Any]:
    if autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def _optimizer(model: HybridNet, r: Recipe, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    trained = [p for p in model.parameters() if p.requires_grad]
    if r.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            trained,
            lr=r.lr,
            momentum=r.momentum,
            weight_decay=r.weight_decay,
            nesterov=r.momentum > 0,  # torch refuses Nesterov without momentum
        )
    else:
        opt = torch.optim.AdamW(trained, lr=r.lr, weight_decay=r.weight_decay)
    if r.lr_schedule == "onecycle":
        # A quarter of the steps warm up; at least two, since OneCycleLR divides by the count.
        warmup = max(0.25, 2 / steps) if steps >= 4 else 0.5
        # OneCycleLR cycles SGD's momentum (0.85..0.95) unless told not to: `momentum: 0`
        # would silently train with momentum, and keep a momentum buffer per parameter.
        cycle = r.optimizer != "sgd" or r.momentum > 0
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=r.lr, total_steps=max(steps, 4), pct_start=warmup, cycle_momentum=cycle
        )
    elif r.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return opt, sched


def _compiled(model: HybridNet) -> Any:
    """The model under torch.compile (inductor); it shares the model's parameters."""
    return torch.compile(model)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


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
    compile_model: bool = False,
) -> dict[str, Any]:
    """Train, resuming from ``work_dir``; write the checkpoint to ``output`` and return its card.
    ``compile_model`` runs the training steps' forward and backward under ``torch.compile``
    (evaluation stays eager), or eagerly after one notice where it cannot compile here."""
    setup = prepare_training(recipe, load_dataset=load_dataset, device=device, log=log)
    check_writable(Path(output), "output")
    check_writable(Path(work_dir) / STATE_FILE, "work dir")
    model, teacher, train_set = setup.model, setup.teacher, setup.train_set
    train_idx, hold_idx = setup.train_idx, setup.hold_idx
    # Channels-last convolutions run about 1.5x faster on CPU: the same maths, another layout.
    model.to(device).to(memory_format=torch.channels_last)
    method = recipe.method or "fp32"
    low = None
    if method != "fp32":
        # Before the optimizer: rct's integer weights (and their int8 momentum) are no
        # parameters of it.
        bitwidth = recipe.bitwidth or Bitwidth()
        low = LowPrecisionTraining(model, method, bitwidth, momentum=recipe.momentum > 0)
    if recipe.freeze:
        left = freeze(model, recipe.freeze)
        log(f"holding {', '.join(recipe.freeze)} fixed; {left:,} parameters train")
    steps_per_epoch = -(-len(train_idx) // recipe.batch_size)
    opt, sched = _optimizer(model, recipe, steps_per_epoch * recipe.epochs)
    start, best, bits_log, cpu_s, history = _resume(
        work_dir / STATE_FILE, recipe, model, opt, sched, log
    )
    if compile_model and method != "fp32":
        raise UserInputError(
            f"--compile with method {method}: its per-layer hooks are not compiled; train "
            "it without --compile"
        )
    step_model = _compiled(model) if compile_model else model
    first_compiled_step = compile_model  # where inductor builds, or fails to
    x_all = to_input(train_set.images)
    y_all = torch.from_numpy(np.asarray(train_set.labels, dtype=np.int64))
    for epoch in range(start, recipe.epochs):
        epoch_cpu = time.process_time()
        model.train()
        hold_statistics(model, recipe.freeze or ())
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
                try:
                    exit_logits, final = step_model(x)
                except Exception as exc:  # noqa: BLE001  (inductor's errors have no common base)
                    if not first_compiled_step:
                        raise
                    # Compilation happens at the first step, before any gradient or update.
                    log(f"torch.compile cannot build here ({_first_line(exc)}); training eagerly")
                    step_model = model
                    exit_logits, final = model(x)
                first_compiled_step = False
                loss = joint_loss(
                    exit_logits,
                    final,
                    y_all[idx].to(device),
                    recipe.exit_weights,
                    recipe.label_smoothing or 0.0,
                )
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
            if low is not None:
                # The optimizer's momentum now (OneCycleLR cycles it), as QAT's weights get.
                group = opt.param_groups[0]
                low.step(group["lr"], recipe.weight_decay, group.get("momentum", 0.0))
            sched.step()
            total += loss.item()
            bar.set_postfix(loss=f"{total / i:.3f}")
        if low is not None:
            bits_log.append(low.end_epoch(adjust=epoch + 1 < recipe.epochs))
        hold = hybrid_metrics(_outputs(model, train_set, hold_idx), recipe.exit_rule, 1.0)
        score = float(hold["accuracy"]["cloud"])
        if best is None or score > best["score"]:
            best = {"score": score, "epoch": epoch + 1, "model": _cpu_copy(model.state_dict())}
        # This process's CPU seconds (all its threads) for the epoch and its held-out check.
        cpu_s.append(time.process_time() - epoch_cpu)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": total / i,
                "exits": [float(a) for a in hold["accuracy"]["edge_per_exit"]],
                "cloud": score,
            }
        )
        # Saved before the log line, so an interrupt after it loses nothing.
        atomic_torch_save(
            {
                "recipe": recipe.to_dict(),
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "best": _best_to_save(best, epoch + 1),
                "bits_log": bits_log,
                "cpu_s": cpu_s,
                "holdout_history": history,
            },
            work_dir / STATE_FILE,
        )
        log(
            f"epoch {epoch + 1}: loss {total / i:.4f}, held-out accuracy "
            f"{_exits_accuracy(hold['accuracy']['edge_per_exit'], model)}cloud {score:.4f} "
            f"(best {best['score']:.4f} after epoch {best['epoch']})"
        )
        if low is not None:
            log(f"  weight bits during epoch {epoch + 1}: {_bits_line(bits_log[-1])}")
    if best is not None and best["epoch"] != recipe.epochs:
        # The held-out split, never the test split, chooses the epoch that ships.
        log(f"keeping the weights of epoch {best['epoch']}, best on held-out images")
        model.load_state_dict(best["model"])
    if low is not None:
        low.finish()
    model.cpu().to(memory_format=torch.contiguous_format)
    card = {**_card(model, recipe, setup, command), **setup.provenance}
    card["training"] = _training_cost(model, recipe, len(train_idx), bits_log)
    card["cpu_s_per_epoch"] = cpu_s
    card["holdout_per_epoch"] = history
    card["kept_epoch"] = recipe.epochs if best is None else int(best["epoch"])
    log(_cost_line(card["training"]))
    save_checkpoint(output, recipe.architecture, model_args(recipe, train_set), model, card)
    return card


def _training_cost(
    model: HybridNet, recipe: Recipe, images: int, bits_log: list[dict[str, Any]]
) -> dict[str, Any]:
    schedule = Schedule(recipe.epochs, images, recipe.batch_size, recipe.optimizer, recipe.momentum)
    held = set(recipe.freeze or ())
    is_frozen = (lambda name: group_of(name, model) in held) if held else None
    return training_report(model, recipe.method or "fp32", bits_log, schedule, None, is_frozen)


def _cost_line(t: dict[str, Any]) -> str:
    """The run's training cost beside fp32 training's of the same network and schedule."""

    def saved(key: str) -> str:
        own, fp32 = t[key], t[f"fp32_{key}"]
        return f"{own:.4g} vs fp32 {fp32:.4g} ({1 - own / fp32:.1%} less)"

    return (
        f"training cost ({t['method']}): peak parameter bytes {saved('peak_param_bytes')}; "
        f"GEMM energy J {saved('gemm_energy_j')}; parameter movement J "
        f"{saved('param_movement_energy_j')}"
    )


def _bits_line(entry: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{name} {v['bits']} (Gavg {v['gavg']:.3g})" for name, v in entry.items())


def _exits_accuracy(accuracies: list[float], model: HybridNet) -> str:
    """``exit after block 2 (device) 0.8123, `` and so on: each exit alone."""
    return "".join(
        f"exit after block {point} ({tier}) {acc:.4f}, "
        for acc, point, tier in zip(accuracies, model.exit_points, model.exit_tiers, strict=True)
    )


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
) -> tuple[int, dict[str, Any] | None, list[dict[str, Any]], list[float], list[dict[str, Any]]]:
    """The epoch to start from, the best held-out weights so far, the bitwidth log, the CPU
    seconds and the held-out accuracies of the last epochs (states saved before fogsim recorded
    them have fewer entries than epochs), from ``state_path``."""
    if not state_path.is_file():
        return 0, None, [], [], []
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
    cpu_s = [float(v) for v in state.get("cpu_s", [])]
    history = list(state.get("holdout_history", []))
    best = state.get("best")
    if best is not None and best.get("model") is None:
        # Saved without its weights: they are the model's own (see _best_to_save).
        best = {**best, "model": _cpu_copy(state["model"])}
    return int(state["epoch"]), best, list(state.get("bits_log", [])), cpu_s, history


def _best_to_save(best: dict[str, Any] | None, epoch: int) -> dict[str, Any] | None:
    """The best held-out weights as the state keeps them: without a second copy of the
    weights when the best epoch is the one just saved (a quarter of an Adam run's state)."""
    if best is None or best["epoch"] != epoch:
        return best
    return {**best, "model": None}


def _card(model: HybridNet, recipe: Recipe, setup: TrainingSetup, command: str) -> dict[str, Any]:
    """Choose the exit thresholds on held-out training images, then report test metrics."""
    train_set, test_set, hold_idx = setup.train_set, setup.test_set, setup.hold_idx
    hold = _outputs(model, train_set, hold_idx)
    rule, drop, n_classes = recipe.exit_rule, recipe.max_accuracy_drop, len(train_set.classes)
    # One threshold for every exit (what a policy with a single threshold uses), and one per
    # exit (what fogsim eval uses by default).
    threshold = choose_threshold(hold, rule, drop, n_classes)
    thresholds = list(choose_thresholds(hold, rule, drop, n_classes))
    test = predict(model, test_set.images, test_set.labels)
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
        "fog_split": model.fog_split,
        "fog_weight_precision": _fog_precision(model, recipe.fog_weight_precision),
        "fog_act_precision": _fog_precision(model, recipe.fog_act_precision),
        "tiers": list(model.tiers),
        "exits": list(model.exit_points),
        "exit_tiers": list(model.exit_tiers),
        "epochs": recipe.epochs,
        "train_images": len(setup.train_idx),
        "default_rule": rule,
        "default_threshold": threshold,
        "default_thresholds": thresholds,
        "threshold_chosen_on": f"{len(hold_idx)} held-out train images, hybrid accuracy within "
        f"{drop} of the cloud path",
        "holdout_metrics": hybrid_metrics(hold, rule, thresholds),
        "test_metrics": hybrid_metrics(test, rule, thresholds),
        "holdout_tiers": tier_metrics(hold, rule, thresholds, model.exit_tiers),
        "test_tiers": tier_metrics(test, rule, thresholds, model.exit_tiers),
        "recipe": recipe.to_dict(),
        "autocast": setup.autocast,
        "command": command,
        "git_commit": _git_commit(),
        "torch_version": str(torch.__version__),
    }
    if isinstance(recipe.dataset, DatasetPath):
        card["dataset_path"] = str(recipe.dataset.resolved.resolve())
    return card


def _fog_precision(model: HybridNet, value: str | None) -> str | None:
    # A fog part's precision defaults to fp32; a two-part network has none.
    return None if model.fog_split is None else value or "fp32"

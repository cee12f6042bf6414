"""When a drifted group adapts, on what, and what it costs its devices.

Decided before the event simulation, from what the devices know themselves: their own exit
decisions and, for the requests whose label they learn, whether their exit was right. A
group's devices pool these (the group is one deployment sharing its weights). At a trigger
the group fine-tunes its device part with RCT (``fogsim.nn.adapt``) on its last labelled
images, as its devices saw them; every device then runs that training as a job in its
compute queue. A request that arrives after the trigger is served after the job (FIFO), so
it uses the new weights: the model version a request sees is the number of adaptations
triggered before it arrived.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fogsim.errors import UserInputError
from fogsim.nn.adapt import FineTune, fine_tune, fine_tune_cost
from fogsim.nn.checkpoint import load_checkpoint, save_checkpoint
from fogsim.scenario.drift import Adaptation, Trigger
from fogsim.scenario.models import DeviceProfile
from fogsim.sim.roofline import roofline_seconds

TRAIN_PRECISION = "int8"
"""RCT's GEMMs run on integers of at most 8 bits: the device's int8 throughput."""


@dataclass(frozen=True)
class Adapted:
    """One adaptation of a group: when it was triggered, on which requests' images, the
    checkpoint it produced and what one device spends running it."""

    group: str
    index: int
    at_s: float
    sample_rows: np.ndarray  # the group's requests (positions in time order) trained on
    checkpoint: Path
    seconds: float
    energy_j: float
    cost: dict[str, Any]


def next_trigger(
    trigger: Trigger,
    arrival_s: np.ndarray,
    exited: np.ndarray,
    correct: np.ndarray,
    labelled: np.ndarray,
    after_s: float,
    cooldown_s: float,
) -> float | None:
    """The first time after ``after_s`` at which the trigger fires, or None: a scheduled
    time, or the arrival that completes a window whose exit rate (over all requests) or
    exit accuracy (over labelled requests) is below its level."""
    if trigger.at is not None:
        later = [t for t in trigger.at if t > after_s]
        return later[0] if later else None
    found: list[float] = []
    earliest = after_s + cooldown_s
    if trigger.exit_rate_below is not None:
        found += _first_low(arrival_s, exited, trigger.window, trigger.exit_rate_below, earliest)
    if trigger.accuracy_below is not None:
        rows = np.flatnonzero(labelled)
        found += _first_low(
            arrival_s[rows], correct[rows], trigger.window, trigger.accuracy_below, earliest
        )
    return min(found) if found else None


def _first_low(
    arrival_s: np.ndarray, hits: np.ndarray, window: int, level: float, earliest_s: float
) -> list[float]:
    """The arrival of the first request that ends a full window averaging below ``level``."""
    if hits.size < window:
        return []
    total = np.concatenate(([0], np.cumsum(hits, dtype=np.int64)))
    mean = (total[window:] - total[:-window]) / window  # window ending at request window-1+i
    ends = arrival_s[window - 1 :]
    low = np.flatnonzero((mean < level) & (ends >= earliest_s))
    return [float(ends[low[0]])] if low.size else []


def device_training_time_and_energy(
    profile: DeviceProfile, cost: dict[str, Any], where: str
) -> tuple[float, float]:
    """Seconds and joules one device spends on a fine-tuning: its int8 GEMMs at the
    profile's int8 throughput (a roofline with the bytes moved, where the profile has a
    memory bandwidth); energy as the profile counts compute: active power over that time,
    or (per_op) the counted GEMM and parameter-movement energy."""
    rate = profile.throughput.get(TRAIN_PRECISION)
    if rate is None:
        raise UserInputError(
            f"{where}: RCT trains with int8 GEMMs, but the device profile gives no int8 "
            "throughput; add one, e.g. profile: {base: ..., throughput: {int8: ...}}"
        )
    compute_s = cost["training_macs"] / rate
    seconds = float(
        roofline_seconds(
            np.array([compute_s]), cost["param_bytes_moved"], 0, profile.memory_bandwidth, 0.0
        )[0]
    )
    if profile.compute_energy == "per_op":
        return seconds, float(cost["gemm_energy_j"] + cost["param_movement_energy_j"])
    return seconds, profile.active_power * seconds


def adapt_checkpoint(
    parent: Path,
    images: np.ndarray,
    labels: np.ndarray,
    how: FineTune,
    cache_dir: Path,
    table: str | None,
) -> tuple[Path, dict[str, Any]]:
    """The checkpoint of ``parent`` with its device part fine-tuned on ``images`` (cached:
    the same parent, images, labels and settings give the same file), and the training's
    cost (``fogsim.nn.adapt.fine_tune_cost``)."""
    ckpt = load_checkpoint(parent)
    # An adapted parent is named by its own key: torch.save's bytes vary with the file name.
    parent_id = ckpt.card.get("adaptation", {}).get("key", ckpt.sha256)
    key = _key(parent_id, images, labels, how, table)
    path = Path(cache_dir) / f"adapted-{key[:32]}.pt"
    if path.is_file():
        cached = load_checkpoint(path)
        return path, dict(cached.card["adaptation"]["cost"])
    model = ckpt.build()
    log = fine_tune(model, images, labels, how)
    cost = fine_tune_cost(model, len(labels), how, log, table)
    card = {
        **ckpt.card,
        "adaptation": {
            "parent_sha256": ckpt.sha256,
            "parent": parent_id,
            "key": key,
            "fine_tune": dataclasses.asdict(how),
            "images": len(labels),
            "bits_per_epoch": [{k: int(v["bits"]) for k, v in e.items()} for e in log],
            "cost": cost,
        },
    }
    save_checkpoint(path, ckpt.model_name, ckpt.model_kwargs, model, card)
    return path, cost


def _key(
    parent: str, images: np.ndarray, labels: np.ndarray, how: FineTune, table: str | None
) -> str:
    digest = hashlib.sha256()
    settings = {"parent": parent, "how": dataclasses.asdict(how), "table": table}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(repr((images.shape, str(torch.__version__))).encode())
    digest.update(np.ascontiguousarray(images, dtype=np.uint8).data)
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).data)
    return digest.hexdigest()


def fine_tune_settings(a: Adaptation, seed: int) -> FineTune:
    return FineTune(a.epochs, a.batch_size, a.lr, a.weight_decay, seed, a.method)

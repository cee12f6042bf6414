"""Batched real inference of a checkpoint on a dataset: the per-image outcomes the simulator reads.

Outcomes do not depend on simulated time, so they are computed once and cached on
disk, keyed by the checkpoint's sha256 and the dataset's fingerprint.

Fields named ``edge`` are the device part's (a two-part network's edge); the ``fog`` fields
describe the middle part of a three-part network and are empty or zero otherwise.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fogsim.errors import UserInputError
from fogsim.nn.checkpoint_info import checkpoint_info

if TYPE_CHECKING:
    from fogsim.data import Dataset

# 2: incompressible split tensors are sent raw (fogsim.nn.codec), so their sizes changed.
# 3: three-part networks: exit tiers, fog ops, the fog's features, per-exit thresholds.
CACHE_VERSION = 4
_ARRAYS = (
    "labels",
    "exit_entropy",
    "exit_maxprob",
    "exit_pred",
    "cloud_pred",
    "compressed_feature_bytes",
    "compressed_fog_feature_bytes",
)
_TUPLES = (
    "edge_ops_to_exit",
    "tiers",
    "exit_tiers",
    "fog_ops_to_exit",
    "default_thresholds",
    "edge_bytes_to_exit",
    "edge_layers_to_exit",
)


@dataclass(frozen=True)
class InferenceOutcomes:
    """Per-image outcomes of a hybrid network on a dataset, plus its op counts by precision.

    Exits are numbered in block order across the device and fog parts; ``exit_tiers`` says
    where each one runs. The fields after ``default_rule`` default to a two-part network's
    values (no fog part; every exit on the device; the card's one threshold at every exit).
    """

    checkpoint_sha256: str
    dataset_fingerprint: str
    class_names: tuple[str, ...]
    labels: np.ndarray  # int64 (N,)
    exit_entropy: np.ndarray  # float32 (N, E) natural-log softmax entropy at each exit
    exit_maxprob: np.ndarray  # float32 (N, E)
    exit_pred: np.ndarray  # int64 (N, E)
    cloud_pred: np.ndarray  # int64 (N,) prediction of the final (cloud) output
    feature_bytes: int  # bytes the device part sends, bit-packed at its activation bitwidth
    compressed_feature_bytes: np.ndarray  # int64 (N,) ...as sent: zlib -6, or raw if smaller
    input_bytes: int  # raw uint8 image bytes (H*W*C), what cloud_only sends
    edge_ops_to_exit: tuple[dict[str, int], ...]  # len E: device MACs to reach exit e
    edge_ops: dict[str, int]  # MACs of the whole device part, its exit heads included
    cloud_ops: dict[str, int]  # MACs of the cloud part (its blocks and the final head)
    full_ops: dict[str, int]  # MACs from input to final output without exit heads (cloud_only)
    default_threshold: float  # the card's threshold shared by every exit
    default_rule: str  # "entropy" | "maxprob"
    tiers: tuple[str, ...] = ("device", "cloud")  # or ("device", "fog", "cloud")
    exit_tiers: tuple[str, ...] = ()  # len E: "device" or "fog" (default: all "device")
    fog_ops: dict[str, int] = field(default_factory=dict)  # MACs of the whole fog part
    fog_ops_to_exit: tuple[dict[str, int], ...] = ()  # len E: fog MACs to reach exit e
    fog_feature_bytes: int = 0  # bytes the fog part sends, bit-packed (0: no fog part)
    # int64 (N,): the fog's features as sent, compressed like the device's (0: no fog part)
    compressed_fog_feature_bytes: np.ndarray | None = None
    default_thresholds: tuple[float, ...] = ()  # len E: the card's threshold of each exit
    # The device part's memory traffic in bytes (weights, and activations in and out, at
    # their bitwidths; fogsim.nn.ops) and conv/linear layer count, whole and to each exit;
    # 0 / () where unknown. The device roofline reads them (fogsim.sim.roofline).
    edge_bytes: int = 0
    edge_bytes_to_exit: tuple[int, ...] = ()
    edge_layers: int = 0
    edge_layers_to_exit: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # A frozen dataclass: defaults that depend on E or N are filled in once, here.
        n_exits = self.exit_pred.shape[1]
        fill = {
            "exit_tiers": ("device",) * n_exits,
            "fog_ops_to_exit": ({},) * n_exits,
            "default_thresholds": (float(self.default_threshold),) * n_exits,
            "edge_bytes_to_exit": (0,) * n_exits,
            "edge_layers_to_exit": (0,) * n_exits,
        }
        for name, value in fill.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)
        if self.compressed_fog_feature_bytes is None:
            object.__setattr__(
                self, "compressed_fog_feature_bytes", np.zeros(self.n_images, np.int64)
            )

    @property
    def n_images(self) -> int:
        return int(len(self.labels))

    @property
    def part_ops(self) -> dict[str, dict[str, int]]:
        """MACs by precision of each part, by tier name (the fog's is empty on two parts)."""
        return {"device": self.edge_ops, "fog": self.fog_ops, "cloud": self.cloud_ops}


def default_cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/fogsim/inference``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fogsim" / "inference"


def run_inference(
    checkpoint: str | Path,
    dataset: Dataset,
    *,
    batch_size: int = 512,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> InferenceOutcomes:
    """Outcomes of ``checkpoint`` on every image of ``dataset``, from the cache when there
    (then without torch: ``fogsim.nn.checkpoint_info``)."""
    cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir)
    sha256 = checkpoint_info(checkpoint, cache_dir).sha256
    stem = cache_dir / f"v{CACHE_VERSION}-{sha256[:32]}-{dataset.fingerprint[:32]}"
    cached = _read_cache(stem, sha256, dataset.fingerprint)
    if cached is not None:
        return cached
    return _infer(checkpoint, dataset, stem, batch_size, progress)


def _infer(
    checkpoint: str | Path, dataset: Dataset, stem: Path, batch_size: int, progress: bool
) -> InferenceOutcomes:
    """Run the network on every image (torch), and cache the outcomes under ``stem``."""
    import torch

    from fogsim.nn.checkpoint import load_checkpoint
    from fogsim.nn.codec import compressed_sizes
    from fogsim.nn.evaluate import predict
    from fogsim.nn.ops import count_ops

    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build()
    if tuple(dataset.images.shape[1:]) != _hwc(model.input_shape):
        raise UserInputError(
            f"{dataset.name} images are {tuple(dataset.images.shape[1:])} (H, W, C) but "
            f"{ckpt.path} expects {_hwc(model.input_shape)}; pick a checkpoint for this dataset"
        )
    if len(dataset.classes) != model.num_classes:
        raise UserInputError(
            f"{dataset.name} has {len(dataset.classes)} classes but {ckpt.path} predicts "
            f"{model.num_classes}; pick a checkpoint trained on this dataset"
        )
    sizes: list[np.ndarray] = []
    fog_sizes: list[np.ndarray] = []
    with torch.inference_mode():
        out = predict(
            model,
            dataset.images,
            dataset.labels,
            batch_size=batch_size,
            on_features=lambda f: sizes.append(compressed_sizes(f, model.edge_act_precision)),
            on_fog_features=lambda f: fog_sizes.append(
                compressed_sizes(f, model.fog_act_precision)
            ),
            progress=progress,
        )
    ops = count_ops(model)
    outcomes = InferenceOutcomes(
        checkpoint_sha256=ckpt.sha256,
        dataset_fingerprint=dataset.fingerprint,
        class_names=tuple(dataset.classes),
        labels=out.labels,
        exit_entropy=out.exit_entropy,
        exit_maxprob=out.exit_maxprob,
        exit_pred=out.exit_pred,
        cloud_pred=out.cloud_pred,
        feature_bytes=ops.feature_bytes,
        compressed_feature_bytes=np.concatenate(sizes).astype(np.int64),
        input_bytes=int(math.prod(dataset.images.shape[1:])),
        edge_ops_to_exit=ops.edge_to_exit,
        edge_ops=ops.edge.macs,
        cloud_ops=ops.cloud.macs,
        full_ops=ops.full_macs,
        default_threshold=ckpt.default_threshold,
        default_rule=ckpt.default_rule,
        tiers=model.tiers,
        exit_tiers=model.exit_tiers,
        fog_ops=ops.fog.macs,
        fog_ops_to_exit=ops.fog_to_exit,
        fog_feature_bytes=ops.boundaries[1].bytes if len(ops.boundaries) > 1 else 0,
        compressed_fog_feature_bytes=(
            np.concatenate(fog_sizes).astype(np.int64) if fog_sizes else None
        ),
        default_thresholds=ckpt.default_thresholds(len(model.exit_points)),
        edge_bytes=ops.edge_bytes,
        edge_bytes_to_exit=ops.edge_bytes_to_exit,
        edge_layers=ops.edge_layers,
        edge_layers_to_exit=ops.edge_layers_to_exit,
    )
    _write_cache(stem, outcomes)
    return outcomes


def _hwc(chw: tuple[int, ...]) -> tuple[int, ...]:
    return (chw[1], chw[2], chw[0])


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_cache(stem: Path, o: InferenceOutcomes) -> None:
    arrays = {name: getattr(o, name) for name in _ARRAYS}
    meta = {
        "version": CACHE_VERSION,
        "checkpoint_sha256": o.checkpoint_sha256,
        "dataset_fingerprint": o.dataset_fingerprint,
        "class_names": list(o.class_names),
        "feature_bytes": o.feature_bytes,
        "input_bytes": o.input_bytes,
        "edge_ops": o.edge_ops,
        "cloud_ops": o.cloud_ops,
        "full_ops": o.full_ops,
        "default_threshold": o.default_threshold,
        "default_rule": o.default_rule,
        "fog_ops": o.fog_ops,
        "fog_feature_bytes": o.fog_feature_bytes,
        "edge_bytes": o.edge_bytes,
        "edge_layers": o.edge_layers,
        **{name: list(getattr(o, name)) for name in _TUPLES},
    }
    # The npz goes first: the json, written last, marks a complete entry.
    _atomic_write(stem.with_suffix(".npz"), lambda f: np.savez(f, **arrays))
    _atomic_write(stem.with_suffix(".json"), lambda f: f.write(json.dumps(meta).encode()))


def _read_cache(stem: Path, sha256: str, fingerprint: str) -> InferenceOutcomes | None:
    meta_path, npz_path = stem.with_suffix(".json"), stem.with_suffix(".npz")
    if not (meta_path.is_file() and npz_path.is_file()):
        return None
    meta = json.loads(meta_path.read_text())
    if (
        meta.pop("version", None) != CACHE_VERSION
        or meta["checkpoint_sha256"] != sha256
        or meta["dataset_fingerprint"] != fingerprint
    ):
        return None
    with np.load(npz_path) as z:
        arrays = {name: z[name] for name in _ARRAYS}
    return InferenceOutcomes(
        class_names=tuple(meta.pop("class_names")),
        **{name: tuple(meta.pop(name)) for name in _TUPLES},
        **meta,
        **arrays,
    )

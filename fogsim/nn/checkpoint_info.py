"""What a run needs to know of a checkpoint without its weights, and without torch.

A checkpoint's card, input shape, classes and network parts are read once with torch and
kept as a small JSON record beside the inference cache, keyed by the file's sha256: a run
whose outcomes are cached then never imports torch (about 250 MB and two seconds).
"""

from __future__ import annotations

import functools
import hashlib
import json
import numbers
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fogsim.errors import CheckpointError, UserInputError

if TYPE_CHECKING:
    from fogsim.data.dataset import Dataset

EXIT_RULES: tuple[str, ...] = ("entropy", "maxprob")
RECORD_VERSION = 1
HOW_TO_FIX = (
    "re-download it (git checkout / git lfs pull) or retrain it with `fogsim train RECIPE`"
)


class CardFields:
    """The model card's exit threshold(s) and rule, checked; for anything with ``path`` and
    ``card`` (a loaded ``Checkpoint``, or its ``CheckpointInfo``)."""

    path: Path
    card: dict[str, Any]

    @property
    def default_threshold(self) -> float:
        """The card's exit threshold, chosen on held-out training images."""
        value = self.card.get("default_threshold")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise CheckpointError(
                f"{self.path}: its card has no numeric default_threshold ({value!r}); {HOW_TO_FIX}"
            )
        return float(value)

    def default_thresholds(self, n_exits: int) -> tuple[float, ...]:
        """The card's threshold of each of the network's ``n_exits`` exits, chosen on held-out
        training images; cards from before per-exit thresholds give their one to every exit."""
        values = self.card.get("default_thresholds")
        if values is None:
            return (self.default_threshold,) * n_exits
        if (
            not isinstance(values, list)
            or len(values) != n_exits
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
        ):
            raise CheckpointError(
                f"{self.path}: its card's default_thresholds {values!r} is not one number per "
                f"exit ({n_exits}); {HOW_TO_FIX}"
            )
        return tuple(float(v) for v in values)

    @property
    def default_rule(self) -> str:
        """The card's exit rule, ``entropy`` or ``maxprob``."""
        value = self.card.get("default_rule")
        if value not in EXIT_RULES:
            raise CheckpointError(
                f"{self.path}: its card's default_rule is {value!r}, not one of "
                f"{', '.join(EXIT_RULES)}; {HOW_TO_FIX}"
            )
        return str(value)


@dataclass(frozen=True)
class CheckpointInfo(CardFields):
    """A checkpoint known by its bytes' sha256: the images it reads, the classes it predicts,
    its card and its network's parts and exits, without its weights."""

    path: Path
    sha256: str
    model_name: str
    input_shape: tuple[int, int, int]  # (H, W, C)
    num_classes: int
    card: dict[str, Any]
    tiers: tuple[str, ...]  # the network's parts: ("device", "cloud") or with "fog"
    exit_tiers: tuple[str, ...]  # per exit, the part it is in


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_info(path: str | Path, cache_dir: Path | None = None) -> CheckpointInfo:
    """The checkpoint at ``path``, from its record when there is one (no torch), else loaded
    and checked with torch, and recorded; any problem is a CheckpointError as in loading."""
    path = Path(path)
    if not path.is_file():
        from fogsim.nn.checkpoint import load_checkpoint

        load_checkpoint(path)  # raises, saying what to do
    if cache_dir is None:
        from fogsim.inference import default_cache_dir

        cache_dir = default_cache_dir()
    stat = path.stat()
    return _info(path, stat.st_mtime_ns, stat.st_size, Path(cache_dir))


@functools.lru_cache(maxsize=32)
def _info(path: Path, _mtime_ns: int, _size: int, cache_dir: Path) -> CheckpointInfo:
    # Cached in the process too: preflight and the run ask several times.
    sha256 = file_sha256(path)
    record = cache_dir / f"checkpoint-v{RECORD_VERSION}-{sha256[:32]}.json"
    found = _read_record(record, path, sha256)
    if found is not None:
        return found
    info = _load_info(path, sha256)
    _write_record(record, info)
    return info


def _load_info(path: Path, sha256: str) -> CheckpointInfo:
    from fogsim.nn.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    model = ckpt.build()
    return CheckpointInfo(
        path=path,
        sha256=sha256,
        model_name=ckpt.model_name,
        input_shape=ckpt.input_shape,
        num_classes=ckpt.num_classes,
        card=ckpt.card,
        tiers=tuple(model.tiers),
        exit_tiers=tuple(model.exit_tiers),
    )


def _read_record(record: Path, path: Path, sha256: str) -> CheckpointInfo | None:
    """The record, or None where it is missing, from another version or unreadable."""
    try:
        data = json.loads(record.read_text())
        if data.pop("version") != RECORD_VERSION or data["sha256"] != sha256:
            return None
        return CheckpointInfo(
            path=path,
            sha256=sha256,
            model_name=str(data["model_name"]),
            input_shape=tuple(int(v) for v in data["input_shape"]),  # type: ignore[arg-type]
            num_classes=int(data["num_classes"]),
            card=dict(data["card"]),
            tiers=tuple(str(t) for t in data["tiers"]),
            exit_tiers=tuple(str(t) for t in data["exit_tiers"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_record(record: Path, info: CheckpointInfo) -> None:
    data = {"version": RECORD_VERSION, **asdict(info)}
    del data["path"]  # the same bytes may lie anywhere
    try:
        text = json.dumps(data)
    except (TypeError, ValueError):
        return  # a card JSON cannot hold: the checkpoint is read with torch each time
    record.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=record.parent, prefix=f".{record.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, record)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Mismatch(str):
    """One way a dataset does not fit a checkpoint. ``fatal``: the network cannot run on it
    (image shape, number of classes); otherwise it runs, but probably on the wrong data."""

    fatal: bool

    def __new__(cls, text: str, fatal: bool) -> Mismatch:
        made = super().__new__(cls, text)
        made.fatal = fatal
        return made


def dataset_mismatch(ckpt: Any, dataset: Dataset) -> list[str]:
    """How ``dataset`` differs from what ``ckpt`` (a ``Checkpoint`` or ``CheckpointInfo``) was
    trained on (empty when it fits). Each item is a ``Mismatch``: raise on a fatal one;
    refuse the others unless the user insists."""
    problems: list[str] = []
    shape = tuple(int(v) for v in dataset.images.shape[1:])
    if shape != ckpt.input_shape:
        problems.append(
            Mismatch(
                f"{dataset.name} images are {_hwc(shape)} (H x W x C) but {ckpt.path.name} "
                f"reads {_hwc(ckpt.input_shape)}",
                fatal=True,
            )
        )
    if len(dataset.classes) != ckpt.num_classes:
        problems.append(
            Mismatch(
                f"{dataset.name} has {len(dataset.classes)} classes but {ckpt.path.name} "
                f"predicts {ckpt.num_classes}",
                fatal=True,
            )
        )
    same_data = ckpt.card.get("dataset_fingerprint") == dataset.fingerprint
    trained_on = ckpt.card.get("dataset")
    if isinstance(trained_on, str) and trained_on != dataset.name and not same_data:
        problems.append(
            Mismatch(f"{ckpt.path.name} was trained on {trained_on!r}, not {dataset.name!r}", False)
        )
    classes = ckpt.card.get("classes")
    if (
        isinstance(classes, list)
        and len(classes) == len(dataset.classes)
        and [str(c) for c in classes] != list(dataset.classes)
    ):
        differ = [(a, b) for a, b in zip(classes, dataset.classes, strict=True) if a != b]
        shown = ", ".join(f"{a!r} vs {b!r}" for a, b in differ[:3])
        more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
        problems.append(
            Mismatch(
                f"class names differ from {ckpt.path.name}'s card (card vs {dataset.name}: "
                f"{shown}{more})",
                False,
            )
        )
    return problems


def _hwc(shape: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in shape)


def require_fit(
    ckpt: Any, dataset: Dataset, *, allow_mismatch: bool, how_to_insist: str
) -> list[str]:
    """Raise a UserInputError when ``dataset`` cannot fit ``ckpt``, or when it is probably the
    wrong data and ``allow_mismatch`` is false; return the problems the caller should warn of."""
    problems = dataset_mismatch(ckpt, dataset)
    fatal = [p for p in problems if getattr(p, "fatal", True)]
    if fatal:
        raise UserInputError(
            f"{ckpt.path} cannot run on {dataset.name} ({dataset.split}): {'; '.join(fatal)}; "
            "pick a checkpoint trained on this dataset"
        )
    if problems and not allow_mismatch:
        raise UserInputError(
            f"{ckpt.path} does not match {dataset.name} ({dataset.split}): {'; '.join(problems)}. "
            f"Pick the right dataset or checkpoint, or {how_to_insist} to run it anyway"
        )
    return problems

"""Checkpoints: constructor arguments, state dict and a card, loaded with weights_only=True."""

from __future__ import annotations

import os
import pickle
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fogsim.errors import CheckpointError, UserInputError
from fogsim.nn.checkpoint_info import (  # noqa: F401  (their old home)
    EXIT_RULES,
    HOW_TO_FIX,
    CardFields,
    Mismatch,
    dataset_mismatch,
    file_sha256,
    require_fit,
)
from fogsim.nn.hybrid import HybridNet
from fogsim.nn.zoo import constructor_defaults, create_model, list_models

FORMAT = "fogsim-hybridnet"
VERSION = 1


@dataclass(frozen=True)
class Checkpoint(CardFields):
    """A loaded checkpoint: how to build the network, its weights, and its card."""

    path: Path
    sha256: str
    model_name: str
    model_kwargs: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    card: dict[str, Any]

    def build(self) -> HybridNet:
        """Rebuild the network in eval mode with the stored weights."""
        try:
            model = create_model(self.model_name, **self.model_kwargs)
            model.load_state_dict(self.state_dict)
        except (TypeError, ValueError, RuntimeError, UserInputError) as exc:
            raise CheckpointError(
                f"{self.path}: the weights do not fit model {self.model_name!r} "
                f"with {self.model_kwargs} ({exc}); retrain it with `fogsim train`"
            ) from None
        return model.eval()

    def _args(self) -> dict[str, Any]:
        return {**constructor_defaults(self.model_name), **self.model_kwargs}

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the images the network reads; checkpoints older than the
        ``image_shape`` argument were built for their architecture's default shape."""
        shape = self._args().get("image_shape")
        if not _is_shape(shape):
            raise CheckpointError(f"{self.path}: image_shape {shape!r} is not (H, W, C)")
        return tuple(int(v) for v in shape)  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        """Classes the network predicts: the rows of its final classifier."""
        fc = self.state_dict.get("final.fc.weight")
        if fc is not None and fc.dim() == 2:
            return int(fc.shape[0])
        return int(self._args().get("num_classes", 0))


def _is_shape(value: object) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    )


def atomic_torch_save(obj: object, path: Path) -> None:
    """torch.save to a temporary file beside ``path``, then rename: no half-written files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        # mkstemp makes the file private; a checkpoint gets the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    path: Path,
    model_name: str,
    model_kwargs: dict[str, Any],
    model: HybridNet,
    card: dict[str, Any],
) -> None:
    """Write a checkpoint file (plain dicts, strings, numbers and tensors only)."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"name": model_name, "kwargs": dict(model_kwargs)},
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "card": card,
    }
    atomic_torch_save(payload, Path(path))


_HOW_TO_FIX = HOW_TO_FIX


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and check a checkpoint; any problem is a CheckpointError saying what and how to fix."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint file at {path}; pass the path of a .pt file from models/ "
            "or train one with `fogsim train RECIPE`"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, RuntimeError, ValueError) as exc:
        reason = _reason(exc)
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt, truncated or not a torch file: "
            f"{reason}); {_HOW_TO_FIX}"
        ) from None
    except (
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        OverflowError,
        MemoryError,
        struct.error,
        OSError,
    ) as exc:
        # The legacy unpickler reads any other file as opcodes, and fails in these ways
        # (struct.error: a few bytes it unpacks as a number, e.g. a 4-byte file; OSError:
        # a truncated file whose bytes it reads as an offset to seek to).
        reason = f"{type(exc).__name__}: {exc}"
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt, truncated or not a torch file: "
            f"{reason}); {_HOW_TO_FIX}"
        ) from None
    _check_payload(path, payload)
    model = payload["model"]
    return Checkpoint(
        path=path,
        sha256=file_sha256(path),
        model_name=model["name"],
        model_kwargs=dict(model["kwargs"]),
        state_dict=payload["state_dict"],
        card=payload["card"],
    )


def _reason(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # torch's weights-only refusal buries the cause among advice, after this marker (on its
    # line, or alone at the end of one with the cause on the next).
    marker = "WeightsUnpickler error:"
    for at, line in enumerate(lines):
        if marker in line:
            cause = line.split(marker, 1)[1].strip() or " ".join(lines[at + 1 : at + 2])
            return f"{marker} {cause}".strip()
    return (lines or [type(exc).__name__])[0]


def _check_payload(path: Path, payload: object) -> None:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        what = "a dict without" if isinstance(payload, dict) else f"a {type(payload).__name__}, no"
        raise CheckpointError(
            f"{path} is a torch file but not a fogsim checkpoint (it holds {what} "
            f"format={FORMAT!r}; a bare state dict or tensor cannot be rebuilt); {_HOW_TO_FIX}"
        )
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {payload.get('version')!r}, this fogsim reads "
            f"version {VERSION}; retrain it with `fogsim train RECIPE`"
        )
    model = payload.get("model")
    if (
        not isinstance(model, dict)
        or not isinstance(model.get("kwargs"), dict)
        or model.get("name") not in list_models()
    ):
        raise CheckpointError(
            f"{path}: the model description is missing or names an unknown network "
            f"(registered: {', '.join(list_models())}); {_HOW_TO_FIX}"
        )
    _check_kwargs(path, model["name"], model["kwargs"])
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: the state dict is missing or malformed; {_HOW_TO_FIX}")
    if not isinstance(payload.get("card"), dict):
        raise CheckpointError(f"{path}: the model card is missing; {_HOW_TO_FIX}")


def _check_kwargs(path: Path, name: str, kwargs: dict[str, Any]) -> None:
    known = constructor_defaults(name)
    unknown = sorted(str(k) for k in kwargs if k not in known)
    if unknown:
        raise CheckpointError(
            f"{path}: model {name!r} takes no argument(s) {unknown} (it takes "
            f"{', '.join(sorted(known))}); {_HOW_TO_FIX}"
        )
    classes = kwargs.get("num_classes", known.get("num_classes"))
    if isinstance(classes, bool) or not isinstance(classes, int) or not 1 <= classes <= 100_000:
        raise CheckpointError(
            f"{path}: num_classes {classes!r} is not a class count; {_HOW_TO_FIX}"
        )
    if "image_shape" in kwargs and not _is_shape(kwargs["image_shape"]):
        raise CheckpointError(
            f"{path}: image_shape {kwargs['image_shape']!r} is not (H, W, C); {_HOW_TO_FIX}"
        )

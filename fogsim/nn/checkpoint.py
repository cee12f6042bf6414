"""Checkpoints: constructor arguments, state dict and a card, loaded with weights_only=True."""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fogsim.errors import CheckpointError
from fogsim.nn.hybrid import HybridNet
from fogsim.nn.zoo import create_model, list_models

FORMAT = "fogsim-hybridnet"
VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
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
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{self.path}: the weights do not fit model {self.model_name!r} "
                f"with {self.model_kwargs} ({exc}); retrain it with `fogsim train`"
            ) from None
        return model.eval()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


_HOW_TO_FIX = (
    "re-download it (git checkout / git lfs pull) or retrain it with `fogsim train RECIPE`"
)


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
    # torch's weights-only refusal buries the cause in one line among advice.
    cause = [line for line in lines if line.startswith("WeightsUnpickler error")]
    return (cause or lines or [type(exc).__name__])[0]


def _check_payload(path: Path, payload: object) -> None:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a torch file but not a fogsim checkpoint (no format={FORMAT!r}; "
            f"a bare state dict cannot be rebuilt); {_HOW_TO_FIX}"
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
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: the state dict is missing or malformed; {_HOW_TO_FIX}")
    if not isinstance(payload.get("card"), dict):
        raise CheckpointError(f"{path}: the model card is missing; {_HOW_TO_FIX}")

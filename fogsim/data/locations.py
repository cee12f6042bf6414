"""Where fogsim keeps and looks for data: environment variables and fixed places."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "FOGSIM_DATA_DIR"
OFFLINE_ENV = "FOGSIM_OFFLINE"
SYSTEM_DIR = Path("/usr/share/datasets")


def user_cache_dir() -> Path:
    """fogsim's user cache: ``${XDG_CACHE_HOME:-~/.cache}/fogsim``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fogsim"


def dataset_cache_dir() -> Path:
    """Where downloads and provisioned links go: ``<user cache>/datasets``."""
    return user_cache_dir() / "datasets"


def decoded_cache_dir() -> Path:
    """Where decoded arrays of image archives are kept: ``<user cache>/decoded``."""
    return user_cache_dir() / "decoded"


def offline() -> bool:
    """Whether downloads are disabled (``FOGSIM_OFFLINE`` set to 1/true/yes)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}

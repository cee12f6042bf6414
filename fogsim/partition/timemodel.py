"""Times on hardware that has no measured profile, derived from the times measured here.

The model and its figures live in ``fogsim/profiles/layer_time_model.yaml``: each row's
time here is scaled by the ratio of its modelled work (MACs over a compute rate plus bytes
over a memory rate) on the tier to that here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fogsim import units
from fogsim.errors import UserInputError

MODEL_FILE = "layer_time_model.yaml"


@dataclass(frozen=True)
class Rates:
    """What a machine reaches: MAC/s on dense compute and bytes/s through memory."""

    compute: float
    memory: float


@cache
def model() -> dict[str, Any]:
    """The derivation model's figures, as shipped."""
    return yaml.safe_load(resources.files("fogsim.profiles").joinpath(MODEL_FILE).read_text())


def measured_rates(meta: dict[str, Any]) -> Rates:
    """The rates a profile's machine reached when it was taken (its calibration)."""
    calibration = meta.get("calibration")
    if not calibration:
        raise UserInputError(
            "the profile has no calibration, so no other tier's times can be derived from "
            "it; take it with `fogsim profile`, or give every tier a measured profile"
        )
    return Rates(calibration["gemm_macs_per_s"], calibration["memory_bytes_per_s"])


def tier_rates(profile_name: str, peak_macs_per_s: float) -> Rates:
    """The rates a library profile reaches: its peak throughput and memory bandwidth times
    the efficiencies the model assumes."""
    figures = model()
    bandwidth = figures["memory_bandwidth"].get(profile_name)
    if bandwidth is None:
        raise UserInputError(
            f"no memory bandwidth for profile {profile_name!r} in fogsim/profiles/{MODEL_FILE}; "
            f"add it there (with its source), or give that tier a measured profile "
            f"(--profile TIER=P.parquet)"
        )
    bytes_per_s = units.BANDWIDTH.parse(bandwidth.replace("B/s", "byte/s")) / 8
    return Rates(
        peak_macs_per_s * figures["compute_efficiency"],
        bytes_per_s * figures["memory_efficiency"],
    )


def derive(table: pd.DataFrame, here: Rates, tier: Rates) -> np.ndarray:
    """Each row's seconds on ``tier``, from its seconds measured where ``here`` was."""
    macs = table["macs"].to_numpy(dtype=float)
    moved = table["memory_bytes"].to_numpy(dtype=float)
    work_here = macs / here.compute + moved / here.memory
    work_tier = macs / tier.compute + moved / tier.memory
    ratio = np.divide(work_tier, work_here, out=np.ones_like(work_here), where=work_here > 0)
    return table["time_s"].to_numpy(dtype=float) * ratio

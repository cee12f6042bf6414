"""Results of a run: the per-request frame and its summary (the directory: fogsim.rundir)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fogsim.resilience import resilience
from fogsim.scenario.models import Scenario

CATEGORIES = ("group", "gateway", "fog", "path", "answered_at", "status", "reason", "failure")
ENERGY_COMPONENTS = ("energy_compute_j", "energy_radio_j", "energy_idle_j")
SERVER_ENERGY = ("energy_fog_j", "energy_cloud_j")
TIERS = ("device", "fog", "cloud")
ANSWERED = ("answered_edge", "answered_fog", "answered_cloud")
STAGES = "stages.parquet"  # every stage of every request; runs from before it have none


@dataclass(frozen=True)
class RunResult:
    """A finished run: its scenario, one row per request, the summary and where it was written."""

    scenario: Scenario
    requests: pd.DataFrame
    summary: dict[str, Any]
    directory: Path | None = None
    wall_s: float = 0.0  # seconds the simulation itself took (not written: it varies by machine)
    # Every stage of every request, where the run holds it; a run that wrote its directory
    # streamed the table there instead, and ``stages`` reads it back when first asked for.
    stage_rows: pd.DataFrame | None = None

    @property
    def stages(self) -> pd.DataFrame | None:
        """Every stage of every request (``stages.parquet``), or None where the run has none."""
        if self.stage_rows is None and self.directory is not None:
            path = self.directory / STAGES
            if path.is_file():
                object.__setattr__(self, "stage_rows", pd.read_parquet(path))
        return self.stage_rows


def requests_frame(columns: dict[str, np.ndarray | pd.Categorical]) -> pd.DataFrame:
    """Build the per-request frame once, with compact categorical text columns.

    Text columns come as categoricals (``fogsim.sim.records.labels_of``), or as arrays of
    text; either way the frame's categories are the values used, sorted, so the table is
    the same however it was built. The frame holds the other arrays as they are, without
    copies: callers do not write to them afterwards.
    """
    return pd.DataFrame(
        {k: _used_categories(v) if k in CATEGORIES else v for k, v in columns.items()},
        copy=False,
    )


def _used_categories(values: np.ndarray | pd.Categorical) -> pd.Categorical:
    if not isinstance(values, pd.Categorical):
        return pd.Categorical(values)
    used = np.bincount(values.codes[values.codes >= 0], minlength=len(values.categories)) > 0
    return values.set_categories(sorted(values.categories[used]))


def stages_frame(columns: dict[str, np.ndarray], names: list[str]) -> pd.DataFrame:
    """The long table of stages: ``kind`` and ``at`` as categoricals (arrays not copied)."""
    text = {
        "kind": pd.Categorical.from_codes(columns["kind"], ["compute", "transfer"]),
        "at": pd.Categorical.from_codes(columns["at"], names),
    }
    return pd.DataFrame({k: text.get(k, v) for k, v in columns.items()}, copy=False)


def summarize(scenario: Scenario, frame: pd.DataFrame, extra: dict[str, Any]) -> dict[str, Any]:
    """Summary statistics of a run; only simulated quantities, so it is deterministic."""
    # Categorical columns compared as they are, and only the columns read copied: cast to
    # text, or every column copied, a million rows take seconds.
    status = frame["status"]
    # The answered requests' columns one at a time, each copied when read: the answered
    # rows of every column read at once would be a copy of most of the table.
    answered = _Rows(frame, status.isin(ANSWERED).to_numpy())
    answered_at = answered["answered_at"]
    group_codes = frame["group"].cat.codes.to_numpy()
    counts = status.value_counts()
    drops = frame.loc[status == "dropped", "reason"].astype(str).value_counts()
    return {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "duration_s": scenario.duration,
        "devices": scenario.device_count,
        "policy": scenario.policy.name,
        "requests": len(frame),
        "answered": len(answered),
        "answered_edge": int(counts.get("answered_edge", 0)),
        "answered_fog": int(counts.get("answered_fog", 0)),
        "answered_cloud": int(counts.get("answered_cloud", 0)),
        "dropped": int(counts.get("dropped", 0)),
        "dropped_by_reason": {str(k): int(v) for k, v in drops.items()},
        "unfinished": int(counts.get("unfinished", 0)),
        "late": int(frame["late"].sum()),
        # The policy's exits only: deadline fallbacks are answered at the edge but counted apart.
        "edge_exit_rate": _ratio(int((answered["path"] == "edge").sum()), len(answered)),
        # Where answers came from, deadline fallbacks (answered on the device) included.
        "exit_fraction_by_tier": {
            tier: _ratio(int((answered_at == tier).sum()), len(answered)) for tier in TIERS
        },
        "deadline_fallbacks": int((frame["reason"] == "deadline_fallback").sum()),
        "accuracy": _ratio(int(answered["correct"].sum()), len(answered)),
        "deadline_s": scenario.deadline.latency if scenario.deadline else None,
        "latency_s": _quantiles(answered["latency_s"]),
        "latency_by_path_s": {
            path: _quantiles(answered.where((frame["path"] == path).to_numpy())["latency_s"])
            for path in ("edge", "fog", "cloud")
        },
        "latency_by_tier_s": {
            tier: _quantiles(answered.where((frame["answered_at"] == tier).to_numpy())["latency_s"])
            for tier in TIERS
        },
        "energy_j": {
            **_quantiles(answered["energy_j"], ("mean", "p95")),
            "total": float(frame["energy_j"].sum()),
            **_component_means(answered),
            "active_p95": _quantiles(_active(answered), ("p95",))["p95"],
            # Fog and cloud servers' active energy, attributed to the requests they served.
            **{
                c.removeprefix("energy_").removesuffix("_j"): (
                    float(answered[c].mean()) if len(answered) else None
                )
                for c in SERVER_ENERGY
            },
        },
        "energy_by_group_j": {
            str(group): _component_means(answered.where(group_codes == code))
            for code, group in enumerate(frame["group"].cat.categories)
        },
        "resilience": resilience(scenario, frame),
        **extra,
    }


class _Rows:
    """Some rows of a frame (``keep``), each column copied only when read."""

    def __init__(self, frame: pd.DataFrame, keep: np.ndarray) -> None:
        self._frame, self._keep = frame, keep
        self._size = int(keep.sum())

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, column: str) -> pd.Series:
        values = self._frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            return values[self._keep]
        # Numbers without the frame's index: the same values, not a copy of the index too.
        return pd.Series(values.to_numpy()[self._keep], copy=False)

    def where(self, keep: np.ndarray) -> _Rows:
        """These rows, those of them ``keep`` marks (a mask over the whole frame)."""
        return _Rows(self._frame, self._keep & keep)


def _active(frame: pd.DataFrame | _Rows) -> pd.Series:
    """Energy a request itself costs the device: compute and radio, without the idle time."""
    return frame["energy_compute_j"] + frame["energy_radio_j"]


def _component_means(frame: pd.DataFrame | _Rows) -> dict[str, float | None]:
    """Mean energy per request of each component, and of the active part (compute + radio)."""
    columns = {c.removeprefix("energy_").removesuffix("_j"): frame[c] for c in ENERGY_COMPONENTS}
    columns["active"] = _active(frame)
    return {key: float(column.mean()) if len(frame) else None for key, column in columns.items()}


def _ratio(part: float, whole: float) -> float | None:
    return float(part) / whole if whole else None


def _quantiles(values: pd.Series, which=("mean", "p50", "p95", "p99", "max")) -> dict[str, Any]:
    if len(values) == 0:
        return {key: None for key in which}
    array = values.to_numpy(dtype=np.float64)
    stats = {"mean": float(array.mean()), "max": float(array.max())}
    for key in which:
        if key.startswith("p"):
            stats[key] = float(np.percentile(array, float(key[1:])))
    return {key: stats[key] for key in which}


def __getattr__(name: str) -> Any:
    # The run directory moved to fogsim.rundir; these names stay importable from here.
    if name in ("load_run", "write_run"):
        from fogsim import rundir

        return getattr(rundir, name)
    raise AttributeError(f"module 'fogsim.results' has no attribute {name!r}")

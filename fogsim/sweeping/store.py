"""A sweep directory: resolved spec, one Parquet partition per point, markers, points table.

Layout::

    DIR/sweep.yaml                          the resolved spec (and the scenario's sha256)
    DIR/requests/point=<id>/part-0.parquet  one row per request, with grid values and seed
    DIR/points/<id>.json                    the marker: a point is done (or failed) once it exists
    DIR/points.parquet, DIR/points.csv      one row per point: grid values, status, summary

Every file is written under a temporary name and renamed into place, so a killed
sweep leaves whole files only; a rerun redoes any point without a ``done`` marker.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from fogsim.errors import UserInputError
from fogsim.results import CATEGORIES
from fogsim.sweeping.spec import Point

SUMMARY_FIELDS = (
    "devices",
    "policy",
    "requests",
    "answered",
    "dropped",
    "unfinished",
    "late",
    "edge_exit_rate",
    "accuracy",
)


class SweepStore:
    """Reads and writes one sweep directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @property
    def spec_path(self) -> Path:
        return self.directory / "sweep.yaml"

    def open(self, spec_data: dict[str, Any], scenario_file: Path) -> None:
        """Create the directory, or check that it holds this very sweep (so a rerun resumes)."""
        spec_data = {**spec_data, "scenario_sha256": _sha256(scenario_file)}
        if self.spec_path.is_file():
            existing = yaml.safe_load(self.spec_path.read_text())
            if existing != spec_data:
                raise UserInputError(
                    f"{self.directory} holds a different sweep (its sweep.yaml differs: grid, "
                    "seeds or the scenario file changed); give another -o DIR"
                )
            return
        if self.directory.exists() and any(self.directory.iterdir()):
            raise UserInputError(f"{self.directory} is not empty and holds no sweep.yaml")
        self.directory.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.spec_path, yaml.safe_dump(spec_data, sort_keys=False).encode())

    def done_ids(self) -> set[str]:
        return {m["point"] for m in self.markers() if m["status"] == "done"}

    def markers(self) -> list[dict[str, Any]]:
        folder = self.directory / "points"
        if not folder.is_dir():
            return []
        return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]

    def write_done(self, point: Point, parquet: bytes, summary: dict, wall_s: float) -> None:
        """Write a point's requests (Parquet bytes), then its marker, which makes it done."""
        part = self.directory / "requests" / f"point={point.id}" / "part-0.parquet"
        part.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(part, parquet)
        self._write_marker(point, "done", wall_s, summary=summary)

    def write_failed(self, point: Point, error: str) -> None:
        self._write_marker(point, "failed", 0.0, error=error)

    def _write_marker(self, point: Point, status: str, wall_s: float, **rest: Any) -> None:
        record = {
            "point": point.id,
            "index": point.index,
            "params": point.params,
            "seed": point.seed,
            "status": status,
            "wall_s": wall_s,
            "error": rest.get("error", ""),
            "summary": rest.get("summary"),
        }
        path = self.directory / "points" / f"{point.id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, (json.dumps(record, indent=1) + "\n").encode())

    def write_points_table(self) -> pd.DataFrame:
        """Gather the markers into ``points.parquet`` and ``points.csv``."""
        table = points_table(self.markers())
        for name, writer in (("points.parquet", _to_parquet), ("points.csv", _to_csv)):
            with _staging(self.directory / name) as staged:
                writer(table, staged)
        return table


def point_parquet(frame: pd.DataFrame, point: Point) -> bytes:
    """The requests of one point, with its grid values and seed as columns, as Parquet bytes."""
    buffer = io.BytesIO()
    frame.assign(**point.params, seed=point.seed).to_parquet(buffer, index=False)
    return buffer.getvalue()


def points_table(markers: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per point: id, grid values, seed, status, error, and the headline summary."""
    rows = []
    for marker in sorted(markers, key=lambda m: m["index"]):
        row = {"point": marker["point"], "index": marker["index"], **marker["params"]}
        row.update(seed=marker["seed"], status=marker["status"], error=marker["error"])
        row["wall_s"] = marker["wall_s"]
        row.update(flatten_summary(marker["summary"] or {}))
        rows.append(row)
    return pd.DataFrame(rows)


def flatten_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a run summary as flat columns (``latency_p95_s``, ...)."""
    if not summary:
        return {}
    flat = {key: summary.get(key) for key in SUMMARY_FIELDS}
    # "policy" may also be a grid dimension (policy={name: cloud_only}); keep both.
    flat["policy_name"] = flat.pop("policy")
    for stat, value in summary["latency_s"].items():
        flat[f"latency_{stat}_s"] = value
    for path, stats in summary.get("latency_by_path_s", {}).items():
        for stat, value in stats.items():
            flat[f"latency_{path}_{stat}_s"] = value
    for stat, value in summary["energy_j"].items():
        flat[f"energy_{stat}_j"] = value
    for tier, share in summary.get("exit_fraction_by_tier", {}).items():
        flat[f"exit_fraction_{tier}"] = share
    resilience = summary.get("resilience")
    if resilience:
        flat["availability"] = resilience["availability"]
        flat["retries"] = resilience["retries"]["total"]
        flat["degraded_s"] = resilience["degraded_s"]["any"]
    return flat


def _to_parquet(table: pd.DataFrame, path: Path) -> None:
    table.to_parquet(path, index=False)


def _to_csv(table: pd.DataFrame, path: Path) -> None:
    table.to_csv(path, index=False)


class _staging:
    """A temporary path next to ``target``, renamed onto it only if the block succeeds."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __enter__(self) -> Path:
        handle, name = tempfile.mkstemp(prefix=f".{self.target.name}-", dir=self.target.parent)
        os.close(handle)
        self.temp = Path(name)
        return self.temp

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            os.replace(self.temp, self.target)
        else:
            self.temp.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    with _staging(path) as staged:
        staged.write_bytes(data)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class SweepResult:
    """A sweep directory read back: its spec, the points table, and (lazily) every request."""

    directory: Path
    spec: dict[str, Any]
    points: pd.DataFrame

    @property
    def failed(self) -> pd.DataFrame:
        return self.points[self.points["status"] == "failed"] if len(self.points) else self.points

    @property
    def requests(self) -> pd.DataFrame:
        """Every request of every finished point (read from Parquet on each access)."""
        return read_requests(self.directory, self.points)

    def read_requests(self, columns: list[str] | None = None) -> pd.DataFrame:
        """Only some columns of the requests (plus ``point``): cheaper on big sweeps."""
        return read_requests(self.directory, self.points, columns)


def read_requests(
    directory: Path, points: pd.DataFrame, columns: list[str] | None = None
) -> pd.DataFrame:
    """The requests of the done points, with a ``point`` column."""
    done = points.loc[points["status"] == "done", "point"].tolist() if len(points) else []
    frames = []
    for point_id in done:
        part = directory / "requests" / f"point={point_id}" / "part-0.parquet"
        frames.append(pd.read_parquet(part, columns=columns).assign(point=point_id))
    if not frames:
        return pd.DataFrame(columns=[*(columns or []), "point"])
    frame = pd.concat(frames, ignore_index=True)
    # Points carry different category sets, which concat turns into objects; restore them.
    for name in [*CATEGORIES, "point"]:
        if name in frame:
            frame[name] = frame[name].astype("category")
    return frame


def load_sweep(directory: str | Path) -> SweepResult:
    """Read a sweep directory back (finished or not)."""
    store = SweepStore(directory)
    if not store.spec_path.is_file():
        raise UserInputError(f"{directory} is not a fogsim sweep directory (no sweep.yaml)")
    spec = yaml.safe_load(store.spec_path.read_text())
    return SweepResult(store.directory, spec, points_table(store.markers()))

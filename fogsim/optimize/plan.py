"""A per-device plan on disk (Parquet): one row per device, its design and its true costs.

The plan keeps, in its metadata, the scenario, the goal and the method that made it. A run
reads it back only for a scenario whose devices and design space it fits: the same device
count and design names the scenario's space holds.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fogsim.errors import UserInputError
from fogsim.optimize.designs import DesignSpace
from fogsim.optimize.truth import Truth
from fogsim.scenario.models import Scenario

METADATA_KEY = b"fogsim.plan"


def plan_frame(
    scenario: Scenario, space: DesignSpace, truth: Truth, design: np.ndarray, feasible: np.ndarray
) -> pd.DataFrame:
    rows = np.arange(design.size)
    groups = np.concatenate([[g.name] * g.count for g in scenario.devices])
    return pd.DataFrame(
        {
            "device": rows.astype(np.int64),
            "group": groups,
            "design": np.array(space.names, dtype=object)[design],
            "checkpoint": [space.designs[d].checkpoint.stem for d in design],
            "threshold": [space.designs[d].threshold for d in design],
            "latency_s": truth.latency_s[rows, design],
            "energy_j": truth.energy_j[rows, design],
            "accuracy": truth.accuracy[design],
            "feasible": feasible,
        }
    )


def write_plan(path: Path, frame: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Write atomically: a failed write leaves no plan behind."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(meta).encode()}
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plan_table(path: Path, scenario: Scenario) -> pd.DataFrame:
    """The plan's device and design columns, one row per device of ``scenario``; an error
    naming the mismatch when the file is no plan or was made for another scenario."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"plan not found: {path}; make one with `fogsim optimize`")
    try:
        columns = pq.read_schema(path).names
        missing = [name for name in ("device", "design") if name not in columns]
        if missing:
            raise UserInputError(
                f"{path} is not a fogsim plan: it has no {' or '.join(missing)} column (its "
                f"columns: {', '.join(columns) or 'none'}); make one with `fogsim optimize`"
            )
        frame = pq.read_table(path, columns=["device", "design"]).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise UserInputError(
            f"{path} is not a fogsim plan (a Parquet table with columns device and design: "
            f"{exc}); make one with `fogsim optimize`"
        ) from None
    count = scenario.device_count
    if len(frame) != count or not np.array_equal(frame["device"].to_numpy(), np.arange(count)):
        raise UserInputError(
            f"{path} plans {len(frame)} devices but scenario {scenario.name} has {count} "
            "(one row per device, numbered 0..N-1); the plan is for another scenario: "
            f"make one for this one with `fogsim optimize`"
        )
    return frame


def unknown_designs(path: Path, scenario: Scenario, named: set[str], known: set[str]) -> str | None:
    """What is wrong with a plan naming designs outside the scenario's space, if anything."""
    unknown = sorted(named - known)
    if not unknown:
        return None
    return (
        f"{path} names designs scenario {scenario.name} does not have: "
        f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''} (its designs are "
        "the checkpoints beside its own that fit its dataset, at the thresholds of "
        "fogsim.optimize.designs); the plan is for another scenario"
    )


def read_plan(path: Path, scenario: Scenario, space_names: list[str]) -> np.ndarray:
    """Each device's design index in the scenario's space; an error naming the mismatch
    when the plan was made for another scenario."""
    frame = plan_table(path, scenario)
    known = {name: i for i, name in enumerate(space_names)}
    problem = unknown_designs(Path(path), scenario, set(frame["design"]), set(known))
    if problem:
        raise UserInputError(problem)
    return frame["design"].map(known).to_numpy(np.int64)

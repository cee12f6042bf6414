"""The run directory: writing a finished run into it, and reading it back."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from fogsim.errors import UserInputError
from fogsim.results import RunResult


def write_run(result: RunResult, directory: Path, *, overwrite: bool, figures: bool) -> Path:
    """Write the run directory atomically: all of it appears, or nothing changes.

    An existing non-empty directory is kept unless ``overwrite``; even then it is
    replaced only once the new run has been written in full.
    """
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not overwrite:
        raise UserInputError(
            f"run directory {directory} already holds results; choose another with -o DIR, "
            "or pass --overwrite to replace it"
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        _write_files(result, staging, figures)
        if directory.exists():
            retired = directory.with_name(f".{directory.name}-old-{os.getpid()}")
            directory.rename(retired)
            staging.rename(directory)
            shutil.rmtree(retired)
        else:
            staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _write_files(result: RunResult, directory: Path, figures: bool) -> None:
    resolved = result.scenario.model_dump(mode="json")
    (directory / "scenario.resolved.yaml").write_text(
        yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True)
    )
    result.requests.to_parquet(directory / "requests.parquet", index=False)
    (directory / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
    if figures:
        from fogsim.plots import run_figures

        run_figures(result.requests, directory / "figures")


def load_run(directory: str | Path) -> RunResult:
    """Read a run directory back: scenario, requests and summary."""
    from fogsim.scenario import scenario_from_data

    directory = Path(directory)
    for name in ("scenario.resolved.yaml", "requests.parquet", "summary.json"):
        if not (directory / name).is_file():
            raise UserInputError(f"{directory} is not a fogsim run directory (no {name})")
    data = yaml.safe_load((directory / "scenario.resolved.yaml").read_text())
    scenario = scenario_from_data(data, base_dir=directory, origin=directory)
    frame = pd.read_parquet(directory / "requests.parquet")
    summary = json.loads((directory / "summary.json").read_text())
    return RunResult(scenario, frame, summary, directory)

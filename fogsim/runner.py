"""Run a scenario end to end: dataset, real inference, simulation, results."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pandas as pd

from fogsim.data import load_dataset
from fogsim.inference import InferenceOutcomes, run_inference
from fogsim.nn.checkpoint_info import checkpoint_info, require_fit
from fogsim.results import RunResult, requests_frame, stages_frame, summarize
from fogsim.rundir import claim_run_dir
from fogsim.scenario import Problem, Scenario, ScenarioError, load_scenario, preflight
from fogsim.scenario.footprint import parse_memory
from fogsim.sim.assignment import refuse_with_a_plan
from fogsim.sim.engine import simulate
from fogsim.sim.records import StageTable
from fogsim.sim.shares import MergedStages


def outcomes_for(scenario: Scenario, *, progress: bool = False) -> InferenceOutcomes:
    """The network's real outcome on every image of the scenario's dataset (cached on disk)."""
    spec = scenario.dataset
    dataset = load_dataset(spec.name, path=spec.path, split=spec.split, progress=progress)
    # A checkpoint that cannot read these images is an error; one trained on other data is
    # refused unless the scenario insists, and then each difference is a warning.
    for problem in require_fit(
        checkpoint_info(scenario.model.checkpoint),
        dataset,
        allow_mismatch=scenario.model.allow_dataset_mismatch,
        how_to_insist=preflight.INSIST,
    ):
        warnings.warn(f"{scenario.name}: {problem}", DatasetMismatchWarning, stacklevel=2)
    return run_inference(scenario.model.checkpoint, dataset, progress=progress)


class DatasetMismatchWarning(UserWarning):
    """The scenario runs a checkpoint on data other than the data it was trained on."""


def run(
    scenario: Scenario | str | Path,
    *,
    out_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    write: bool = True,
    overwrite: bool = False,
    progress: bool = False,
    max_memory: float | str | None = None,
    engine: str = "auto",
) -> RunResult:
    """Simulate a scenario (a file or a loaded ``Scenario``) and, if ``write``, save its run.

    Everything that would stop the run is checked before it starts: the scenario's
    files, its memory estimate against ``max_memory`` (bytes, or text like "8GB";
    default: half the available memory) and, if ``write``, the run directory.
    ``engine`` solves the shared stages (``fogsim.sim.engine.ENGINES``).
    """
    if isinstance(max_memory, str):
        max_memory = parse_memory(max_memory, "max_memory")
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, overrides, preflight=True, max_memory=max_memory)
    elif overrides:
        raise ValueError("overrides apply to scenario files; pass the path instead")
    else:
        found = preflight.problems(scenario, max_memory)
        if found:
            raise ScenarioError(scenario.name, [Problem(loc, text) for loc, text in found])
    if not write:
        result, table = _simulate(scenario, None, progress, engine)
        return _with_stages(result, table)
    directory = Path(out_dir) if out_dir else default_run_dir(scenario)
    with claim_run_dir(directory, overwrite=overwrite) as claim:
        result, table = _simulate(scenario, directory, progress, engine)
        # The stage table is streamed to its file a row group at a time, once the figures
        # are drawn: the stages are never held whole, nor beside the figures' memory.
        chunks = None if table is None else partial(_stage_frames, table)
        claim.write(result, figures=scenario.outputs.figures, stages=chunks)
    return result  # its stages are read back from the run directory when asked for


def _simulate(
    scenario: Scenario, directory: Path | None, progress: bool, engine: str
) -> tuple[RunResult, StageTable | MergedStages | None]:
    """The run, and its stage table where the run does not hold it yet."""
    if scenario.plan is not None:  # each device runs its own design (fogsim.optimize)
        from fogsim.optimize.planned import run_plan

        refuse_with_a_plan(scenario)  # before the design space's inference
        return run_plan(scenario, directory, progress, engine), None
    outcomes = outcomes_for(scenario, progress=progress)
    started = time.perf_counter()
    sim = simulate(scenario, outcomes, progress=progress, engine=engine)
    wall_s = time.perf_counter() - started
    frame = requests_frame(sim.columns)
    summary = summarize(scenario, frame, sim.summary_extra())
    table = sim.stages
    del sim
    return RunResult(scenario, frame, summary, directory, wall_s), table


def _with_stages(result: RunResult, table: StageTable | MergedStages | None) -> RunResult:
    if table is None:
        return result
    return dataclasses.replace(result, stage_rows=stages_frame(*table.columns()))


def _stage_frames(table: StageTable | MergedStages, rows: int) -> Iterator[pd.DataFrame]:
    """The stage table, ``rows`` rows at a time, as frames."""
    for columns, names in table.chunks(rows):
        yield stages_frame(columns, names)
        del columns  # one chunk held at a time


def default_run_dir(scenario: Scenario) -> Path:
    return scenario.outputs.dir or Path("runs") / scenario.name

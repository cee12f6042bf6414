"""Run a scenario end to end: dataset, real inference, simulation, results."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
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
        result, build = _simulate(scenario, None, progress, engine)
        return _with_stages(result, build)
    directory = Path(out_dir) if out_dir else default_run_dir(scenario)
    with claim_run_dir(directory, overwrite=overwrite) as claim:
        result, build = _simulate(scenario, directory, progress, engine)
        # The stage table is built once the figures are drawn: the two tables and the
        # figures' working memory are never held at once.
        built: list[pd.DataFrame] = []

        def stages() -> pd.DataFrame:
            assert build is not None
            built.append(build())
            return built[0]

        claim.write(result, figures=scenario.outputs.figures, stages=build and stages)
    return dataclasses.replace(result, stages=built[0]) if built else result


def _simulate(
    scenario: Scenario, directory: Path | None, progress: bool, engine: str
) -> tuple[RunResult, Callable[[], pd.DataFrame] | None]:
    """The run, and what builds its stage table where the run does not hold it yet."""
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
    build = None if table is None else (lambda: stages_frame(*table.columns()))
    return RunResult(scenario, frame, summary, directory, wall_s), build


def _with_stages(result: RunResult, build: Callable[[], pd.DataFrame] | None) -> RunResult:
    return result if build is None else dataclasses.replace(result, stages=build())


def default_run_dir(scenario: Scenario) -> Path:
    return scenario.outputs.dir or Path("runs") / scenario.name

"""Run a scenario end to end: dataset, real inference, simulation, results."""

from __future__ import annotations

import time
from pathlib import Path

from fogsim.data import load_dataset
from fogsim.inference import InferenceOutcomes, run_inference
from fogsim.results import RunResult, requests_frame, summarize
from fogsim.rundir import write_run
from fogsim.scenario import Scenario, load_scenario
from fogsim.sim.engine import simulate


def outcomes_for(scenario: Scenario, *, progress: bool = False) -> InferenceOutcomes:
    """The network's real outcome on every image of the scenario's dataset (cached on disk)."""
    spec = scenario.dataset
    dataset = load_dataset(spec.name, path=spec.path, split=spec.split, progress=progress)
    return run_inference(scenario.model.checkpoint, dataset, progress=progress)


def run(
    scenario: Scenario | str | Path,
    *,
    out_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    write: bool = True,
    overwrite: bool = False,
    progress: bool = False,
) -> RunResult:
    """Simulate a scenario (a file or a loaded ``Scenario``) and, if ``write``, save its run."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, overrides)
    elif overrides:
        raise ValueError("overrides apply to scenario files; pass the path instead")
    outcomes = outcomes_for(scenario, progress=progress)
    started = time.perf_counter()
    sim = simulate(scenario, outcomes, progress=progress)
    wall_s = time.perf_counter() - started
    frame = requests_frame(sim.columns)
    summary = summarize(scenario, frame, {"links": sim.links, "cloud": sim.cloud})
    if not write:
        return RunResult(scenario, frame, summary, None, wall_s)
    directory = Path(out_dir) if out_dir else default_run_dir(scenario)
    result = RunResult(scenario, frame, summary, directory, wall_s)
    write_run(result, directory, overwrite=overwrite, figures=scenario.outputs.figures)
    return result


def default_run_dir(scenario: Scenario) -> Path:
    return scenario.outputs.dir or Path("runs") / scenario.name

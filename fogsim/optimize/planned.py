"""``fogsim run`` with ``plan:``: each device runs its planned design, and the summary sets the
plan beside the best single design for all devices, run on the same workload.

The best single design is the one the plan's own goal (its objective and constraints, kept
in the plan) prefers for every device at once: among the designs that meet the constraints
on every device, the one of least mean objective, under the true device model. Where none
meets them everywhere, the one that fails on the fewest devices.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from rich.table import Table

from fogsim.data import load_dataset
from fogsim.inference import run_inference
from fogsim.optimize.designs import DesignSpace, design_space, policy
from fogsim.optimize.goal import Goal, make_goal
from fogsim.optimize.plan import METADATA_KEY, read_plan
from fogsim.optimize.population import population
from fogsim.optimize.truth import ground_truth
from fogsim.results import RunResult, requests_frame, stages_frame, summarize
from fogsim.scenario.models import ModelSpec, Scenario
from fogsim.sim.engine import simulate


def run_plan(
    scenario: Scenario, directory: Path | None, progress: bool, engine: str = "auto"
) -> RunResult:
    """Simulate the plan, then the best single design, and summarise both."""
    assert scenario.plan is not None
    space = design_space(scenario, progress=progress)
    planned = read_plan(scenario.plan, scenario, space.names)
    goal = plan_goal(scenario.plan)
    started = time.perf_counter()
    sim = simulate(scenario, space.assign(planned), progress=progress, engine=engine)
    wall_s = time.perf_counter() - started
    frame = requests_frame(sim.columns)
    summary = summarize(scenario, frame, sim.summary_extra())
    single = best_single_design(scenario, space, goal)
    single_summary = run_single(scenario, space, single, progress, engine)
    names, counts = np.unique(np.array(space.names)[planned], return_counts=True)
    summary["plan"] = {
        "file": str(scenario.plan),
        "goal": goal.describe(),
        "designs": {str(n): int(c) for n, c in zip(names, counts, strict=True)},
        "planned": headline(summary),
        "best_single_design": {"design": space.names[single], **headline(single_summary)},
    }
    ours, theirs = summary["plan"]["planned"], summary["plan"]["best_single_design"]
    summary["plan"]["active_energy_saving"] = _saving(
        ours["mean_active_energy_j"], theirs["mean_active_energy_j"]
    )
    stages = stages_frame(*sim.stages.columns()) if sim.stages is not None else None
    return RunResult(scenario, frame, summary, directory, wall_s, stages)


def _saving(ours: float | None, theirs: float | None) -> float | None:
    """1 - ours / theirs: the share of the single design's energy the plan saves."""
    return None if not ours or not theirs else 1.0 - ours / theirs


def plan_goal(path: Path) -> Goal:
    """The goal the plan was made for, from its metadata."""
    meta = json.loads((pq.read_schema(path).metadata or {}).get(METADATA_KEY, b"{}"))
    return make_goal(meta.get("objective", "energy"), meta.get("constraints", []))


def best_single_design(scenario: Scenario, space: DesignSpace, goal: Goal) -> int:
    """The design the goal prefers for every device at once (see the module's docstring)."""
    truth = ground_truth(scenario, space, population(scenario))
    misses = (~goal.feasible(truth)).sum(axis=0)
    mean = goal.cost(truth).mean(axis=0)
    return int(np.lexsort((mean, misses))[0])


def run_single(
    scenario: Scenario, space: DesignSpace, design: int, progress: bool, engine: str = "auto"
) -> dict:
    """The summary of every device running ``design`` (the scenario's own workload), on
    ``engine`` as the plan was."""
    chosen = space.designs[design]
    single = scenario.model_copy(
        update={
            "model": ModelSpec(checkpoint=chosen.checkpoint),
            "policy": policy(chosen.threshold),
            "plan": None,
        }
    )
    spec = scenario.dataset
    dataset = load_dataset(spec.name, path=spec.path, split=spec.split, progress=progress)
    outcomes = run_inference(chosen.checkpoint, dataset, progress=progress)
    sim = simulate(single, outcomes, progress=progress, engine=engine)
    return summarize(single, requests_frame(sim.columns), sim.summary_extra())


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """What the plan and the single design are compared on."""
    requests = summary["requests"]
    return {
        "requests": requests,
        "accuracy": summary["accuracy"],
        "edge_exit_rate": summary["edge_exit_rate"],
        "deadline_miss_rate": summary["late"] / requests if requests else None,
        # Compute and radio: what a design changes; idle power between requests it does not.
        "mean_active_energy_j": summary["energy_j"]["active"],
        "mean_device_energy_j": summary["energy_j"]["mean"],
        "latency_p95_s": summary["latency_s"]["p95"],
    }


def plan_table(plan: dict[str, Any]) -> Table:
    """The plan beside the best single design, as ``fogsim run`` prints it."""
    single = plan["best_single_design"]
    table = Table(title=f"per-device plan ({len(plan['designs'])} designs) vs {single['design']}")
    for column in ("metric", "plan", "best single design"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    rows = [
        ("accuracy", "accuracy", "{:.2%}"),
        ("deadline-miss rate", "deadline_miss_rate", "{:.2%}"),
        ("active device energy / request", "mean_active_energy_j", "{:.4g} J"),
        ("device energy / request", "mean_device_energy_j", "{:.4g} J"),
        ("latency p95", "latency_p95_s", "{:.4g} s"),
    ]
    for label, key, form in rows:
        values = [plan["planned"][key], single[key]]
        table.add_row(label, *("-" if v is None else form.format(v) for v in values))
    return table

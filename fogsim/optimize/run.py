"""``fogsim optimize`` end to end: check the input, plan, score under the true model, write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fogsim.optimize import methods
from fogsim.optimize.designs import design_space
from fogsim.optimize.goal import make_goal, require_feasible
from fogsim.optimize.plan import plan_frame, write_plan
from fogsim.optimize.population import population
from fogsim.optimize.truth import ground_truth
from fogsim.scenario import load_scenario


def optimize_scenario(
    path: Path,
    objective: str,
    constraints: list[str],
    method: str,
    output: Path,
    overrides: list[str] | None = None,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Plan every device of the scenario at ``path``, write the plan, return its summary.

    Every check comes first (the goal, the method, a goal some design meets on every
    device): on bad input nothing is written.
    """
    goal = make_goal(objective, constraints)
    methods.check_method(method)
    scenario = load_scenario(path, overrides or [])
    space = design_space(scenario)
    devices = population(scenario)
    truth = ground_truth(scenario, space, devices)
    feasible = require_feasible(goal, truth)
    planned = methods.plan(method, scenario, space, devices, goal, profile)
    chosen = feasible[np.arange(devices.size), planned.design]
    frame = plan_frame(scenario, space, truth, planned.design, chosen)
    names, counts = np.unique(frame["design"], return_counts=True)
    summary = {
        "scenario": scenario.name,
        "method": method,
        "objective": objective,
        "constraints": [c.text for c in goal.constraints],
        "devices": devices.size,
        **methods.score(goal, truth, planned.design),
        "seconds": planned.seconds,
        "plan_seconds": planned.plan_seconds,
        "setup_seconds": planned.setup_seconds,
        "designs_used": {str(n): int(c) for n, c in zip(names, counts, strict=True)},
        "design_space": len(space.designs),
        **planned.report,
    }
    meta = {k: summary[k] for k in ("scenario", "method", "objective", "constraints")}
    write_plan(output, frame, {**meta, "seed": scenario.seed, "devices": devices.size})
    return {**summary, "plan": str(output)}

"""A workload's rows are grouped by device group, so a group's rows are one block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sim_fixtures import BASE, small_scenario, synthetic_outcomes

from fogsim.sim.rng import Streams
from fogsim.sim.workload import generate_workload


def test_a_groups_rows_are_the_rows_that_carry_its_index(tmp_path: Path) -> None:
    group = BASE["devices"][0]
    devices = [
        {**group, "name": name, "count": count, "arrival": {"process": "poisson", "rate": rate}}
        for name, count, rate in (("a", 3, "5 /s"), ("b", 1, "0.01 /s"), ("c", 7, "2 /s"))
    ]
    scenario = small_scenario(tmp_path, devices=devices)
    outcomes = synthetic_outcomes()
    workload = generate_workload(scenario, outcomes.labels, Streams(scenario.seed))
    mask = np.random.default_rng(0).random(workload.size) < 0.5
    for g in range(len(devices)):
        assert np.array_equal(workload.group_rows(g), np.flatnonzero(workload.group == g))
        expected = np.flatnonzero(mask & (workload.group == g))
        assert np.array_equal(workload.group_rows_where(g, mask), expected)

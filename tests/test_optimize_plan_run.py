"""Runs with a per-device plan: each device runs its own design, in one shared simulation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_fixtures import invoke

from fogsim.data import load_dataset
from fogsim.inference import run_inference
from fogsim.optimize.designs import design_space, policy
from fogsim.optimize.planrun import simulate_plan
from fogsim.results import requests_frame
from fogsim.scenario import ScenarioError, load_scenario
from fogsim.scenario.models import ModelSpec
from fogsim.sim.engine import simulate

ROOT = Path(__file__).resolve().parents[1]
CITY = ROOT / "scenarios/city-heterogeneous.yaml"
SMALL = ["duration=60 s"] + [f"devices[{i}].count=30" for i in range(4)]


@pytest.fixture(scope="module")
def city():
    scenario = load_scenario(CITY, SMALL)
    return scenario, design_space(scenario)


def _single_run(scenario, design):
    single = scenario.model_copy(
        update={
            "model": ModelSpec(checkpoint=design.checkpoint),
            "policy": policy(design.threshold),
        }
    )
    dataset = load_dataset("fashion-mnist", split="test", progress=False)
    return simulate(single, run_inference(design.checkpoint, dataset, progress=False)).columns


def test_one_design_for_every_device_is_the_run_of_that_design(city):
    scenario, space = city
    d = space.index("fmnist-int8@0.40")
    planned = simulate_plan(scenario, space, np.full(scenario.device_count, d)).columns
    assert set(planned.pop("design")) == {"fmnist-int8@0.40"}
    alone = _single_run(scenario, space.designs[d])
    pd.testing.assert_frame_equal(requests_frame(planned), requests_frame(alone))


def test_each_device_computes_as_its_own_design_would(city):
    scenario, space = city
    rng = np.random.default_rng(3)
    picks = [space.index(n) for n in ("fmnist-binary@1.00", "fmnist-fp32@0.40", "fmnist-int4@2.40")]
    planned = rng.choice(picks, scenario.device_count)
    mixed = simulate_plan(scenario, space, planned).columns
    for d in picks:
        alone = _single_run(scenario, space.designs[d])
        mine = planned[mixed["device"]] == d
        assert (mixed["design"][mine] == space.names[d]).all()
        for column in ("t_edge_start_s", "t_edge_end_s", "energy_compute_j", "exit", "image"):
            np.testing.assert_array_equal(mixed[column][mine], alone[column][mine])
    assert set(mixed["status"]) <= {"answered_edge", "answered_cloud", "dropped", "unfinished"}


def test_fogsim_run_with_a_plan_sets_it_beside_the_best_single_design(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sets = [a for s in SMALL for a in ("--set", s)]
    made = invoke(
        "optimize",
        str(CITY),
        "--objective",
        "energy",
        "--constraint",
        "accuracy>=0.88",
        *sets,
        "-o",
        "PLAN.parquet",
    )
    assert made.code == 0, made.stderr
    ran = invoke("run", str(CITY), *sets, "--set", "plan=PLAN.parquet", "-o", "run", "-q")
    assert ran.code == 0, ran.stderr
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    plan = summary["plan"]
    assert plan["goal"] == "minimise energy with accuracy>=0.88"
    assert sum(plan["designs"].values()) == 120
    for side in (plan["planned"], plan["best_single_design"]):
        assert {"accuracy", "deadline_miss_rate", "mean_active_energy_j"} <= set(side)
    assert plan["planned"]["requests"] == plan["best_single_design"]["requests"]
    requests = pd.read_parquet(tmp_path / "run/requests.parquet")
    table = pd.read_parquet(tmp_path / "PLAN.parquet")
    planned = table["design"].to_numpy()[requests["device"].to_numpy()]
    np.testing.assert_array_equal(requests["design"].astype(str), planned)
    assert "per-device plan" in ran.stdout


def test_a_plan_for_another_scenario_stops_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sets = [a for s in SMALL for a in ("--set", s)]
    made = invoke("optimize", str(CITY), "--objective", "latency", *sets, "-o", "P.parquet")
    assert made.code == 0, made.stderr
    other = [*sets, "--set", "devices[1].count=31"]
    ran = invoke("run", str(CITY), *other, "--set", "plan=P.parquet", "-o", "run", "-q")
    assert ran.code != 0 and "plans 120 devices but scenario" in ran.stderr
    assert not (tmp_path / "run/summary.json").exists()
    # `fogsim validate` finds it too, before any inference.
    checked = invoke("validate", str(CITY), *other, "--set", "plan=P.parquet")
    assert checked.code == 2 and "plans 120 devices but scenario" in checked.stderr
    assert "plan" in checked.stderr.split("plans")[0]  # the error names where: plan
    same = invoke("validate", str(CITY), *sets, "--set", "plan=P.parquet")
    assert same.code == 0, same.stderr


def test_a_missing_plan_is_a_validation_error_naming_it(tmp_path):
    with pytest.raises(ScenarioError, match="plan not found"):
        load_scenario(CITY, [*SMALL, f"plan={tmp_path / 'none.parquet'}"])

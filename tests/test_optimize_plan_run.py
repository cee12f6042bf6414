"""Runs with a per-device plan: each device runs its own design, in one shared simulation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_fixtures import invoke
from test_fast_engine import assert_same_run

from fogsim.data import load_dataset
from fogsim.errors import UserInputError
from fogsim.inference import run_inference
from fogsim.optimize.designs import design_names, design_space, policy
from fogsim.results import requests_frame
from fogsim.scenario import ScenarioError, load_scenario
from fogsim.scenario.failures import Recovery
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
    planned = simulate(scenario, space.assign(np.full(scenario.device_count, d))).columns
    assert set(planned.pop("design")) == {"fmnist-int8@0.40"}
    alone = _single_run(scenario, space.designs[d])
    pd.testing.assert_frame_equal(requests_frame(planned), requests_frame(alone))


def test_each_device_computes_as_its_own_design_would(city):
    scenario, space = city
    rng = np.random.default_rng(3)
    picks = [space.index(n) for n in ("fmnist-binary@1.00", "fmnist-fp32@0.40", "fmnist-int4@2.40")]
    planned = rng.choice(picks, scenario.device_count)
    mixed = simulate(scenario, space.assign(planned)).columns
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


def test_the_design_names_validate_reads_are_the_design_space_s(city):
    scenario, space = city
    assert design_names(scenario) == space.names
    assert not any(name.startswith("fmnist-3tier") for name in space.names)  # no fog here


def test_validate_refuses_a_plan_naming_designs_the_scenario_lacks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sets = [a for s in SMALL for a in ("--set", s)]
    made = invoke("optimize", str(CITY), "--objective", "latency", *sets, "-o", "P.parquet")
    assert made.code == 0, made.stderr
    table = pq.read_table("P.parquet")
    names = table.column("design").to_pylist()
    names[7] = "fmnist-3tier@1.00"  # a real checkpoint, but this city has no fog to run it
    bad = table.set_column(table.schema.get_field_index("design"), "design", pa.array(names))
    pq.write_table(bad, "Q.parquet")
    checked = invoke("validate", str(CITY), *sets, "--set", "plan=Q.parquet")
    assert checked.code == 2 and "names designs scenario" in checked.stderr
    assert "fmnist-3tier@1.00" in checked.stderr
    ran = invoke("run", str(CITY), *sets, "--set", "plan=Q.parquet", "-o", "run", "-q")
    assert ran.code != 0 and "fmnist-3tier@1.00" in ran.stderr
    assert not (tmp_path / "run").exists()


def test_a_plan_refuses_what_it_does_not_model(city):
    scenario, space = city
    planned = space.assign(np.zeros(scenario.device_count, dtype=np.int64))
    with pytest.raises(UserInputError, match=r"a plan \(plan:\) cannot run with recovery:"):
        simulate(scenario.model_copy(update={"recovery": Recovery(timeout="1 s")}), planned)


def _both_engines(scenario, assignment):
    """The plan on SimPy and on auto, which must pick the fast engine and agree bit for bit."""
    reference = simulate(scenario, assignment, engine="simpy")
    auto = simulate(scenario, assignment, engine="auto")
    assert (reference.engine, auto.engine) == ("simpy", "fast")
    assert_same_run(reference, auto)
    return auto


def test_a_plan_of_six_designs_gives_the_same_run_on_both_engines(city):
    scenario, space = city
    rng = np.random.default_rng(11)
    # One design per checkpoint, at thresholds that send many requests on to the cloud.
    checkpoints = sorted({name.split("@")[0] for name in space.names})
    picks = [space.index(f"{c}@{rng.choice(['0.00', '0.20', '0.40'])}") for c in checkpoints]
    assert len(picks) == 6
    planned = rng.choice(picks, scenario.device_count)
    fast = _both_engines(scenario, space.assign(planned)).columns
    # Each request kept its device's design, and the designs met on the shared stages.
    np.testing.assert_array_equal(fast["design"], np.array(space.names)[planned[fast["device"]]])
    assert len(set(fast["design"])) == 6
    assert (fast["bytes_sent"] > 0).sum() > 300


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_plans_give_the_same_run_on_both_engines(city, seed):
    scenario, space = city
    rng = np.random.default_rng(seed)
    sending = [d for d, design in enumerate(space.designs) if design.threshold <= 1.0]
    picks = rng.choice(sending, rng.integers(2, 9), replace=False)
    groups = rng.choice(picks, len(scenario.devices))  # some groups one design, some mixed
    planned = np.repeat(groups, [g.count for g in scenario.devices])
    mixed = rng.random(scenario.device_count) < 0.5
    planned[mixed] = rng.choice(picks, mixed.sum())
    _both_engines(scenario, space.assign(planned))


def test_a_run_of_a_plan_writes_the_same_bytes_on_both_engines(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sets = [a for s in SMALL for a in ("--set", s)]
    goal = ["--objective", "latency", "--constraint", "accuracy>=0.9"]  # two designs, some sent
    made = invoke("optimize", str(CITY), *goal, *sets, "-o", "P.parquet")
    assert made.code == 0, made.stderr
    for engine in ("simpy", "fast", "auto"):
        ran = invoke(
            "run", str(CITY), *sets, "--set", "plan=P.parquet", "-o", engine, "-q",
            "--engine", engine,
        )  # fmt: skip
        assert ran.code == 0, ran.stderr
        summary = json.loads((tmp_path / engine / "summary.json").read_text())
        assert summary["engine"] == ("simpy" if engine == "simpy" else "fast")
    for name in ("requests.parquet", "stages.parquet"):
        simpy, fast, auto = ((tmp_path / e / name).read_bytes() for e in ("simpy", "fast", "auto"))
        assert simpy == fast == auto
    requests = pd.read_parquet(tmp_path / "fast/requests.parquet")
    assert requests["design"].nunique() == 2 and (requests["bytes_sent"] > 0).sum() > 100

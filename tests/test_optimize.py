"""Planning a design per device: the referee, the proxy's reused ranking, the learned
predictor and optimiser, and ``fogsim optimize``'s contract."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from cli_fixtures import invoke

from fogsim.errors import UserInputError
from fogsim.optimize import exhaustive, methods, proxy, rank
from fogsim.optimize.designs import design_space
from fogsim.optimize.goal import NoDesignMeetsError, make_goal, parse_constraint
from fogsim.optimize.plan import read_plan
from fogsim.optimize.population import population
from fogsim.optimize.truth import ground_truth
from fogsim.partition import profiler
from fogsim.scenario import load_scenario
from fogsim.sim.routes import Kinds

ROOT = Path(__file__).resolve().parents[1]
CITY = ROOT / "scenarios/city-heterogeneous.yaml"
SMALL = ["duration=30 s"] + [f"devices[{i}].count=40" for i in range(4)]
GOAL = ("energy", ["accuracy>=0.88", "latency<=100 ms"])


@pytest.fixture(scope="module")
def city():
    scenario = load_scenario(CITY, SMALL)
    space, devices = design_space(scenario), population(scenario)
    return scenario, space, devices, ground_truth(scenario, space, devices)


def _brute_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    c = d = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        a, b = np.sign(x[j] - x[i]), np.sign(y[j] - y[i])
        c += a * b > 0
        d += a * b < 0
        tx += a == 0
        ty += b == 0
    pairs = len(x) * (len(x) - 1) / 2
    return (c - d) / np.sqrt((pairs - tx) * (pairs - ty))


def test_kendall_tau_is_tau_b_with_ties():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 5, 12).astype(float)
    values = rng.integers(0, 5, (7, 12)).astype(float)
    got = rank.kendall_tau(ref, values)
    np.testing.assert_allclose(got, [_brute_tau_b(ref, v) for v in values], rtol=1e-12)
    assert rank.kendall_tau(ref, ref[None])[0] == pytest.approx(1.0)
    assert rank.kendall_tau(np.arange(5.0), -np.arange(5.0)[None])[0] == pytest.approx(-1.0)


def test_regret_is_the_relative_excess_over_the_optimum():
    cost = np.array([[1.0, 2.0, 4.0], [3.0, 1.5, 6.0]])
    np.testing.assert_allclose(rank.regret(cost, np.array([2, 1]), np.array([0, 1])), [3.0, 0.0])


def test_constraints_read_units_and_bad_ones_name_the_fix():
    assert parse_constraint("latency<=50 ms").bound == pytest.approx(0.05)
    assert parse_constraint("energy <= 2 mJ").bound == pytest.approx(0.002)
    assert parse_constraint("accuracy>=0.9").op == ">="
    for bad in ("speed<=3", "latency<50 ms", "latency<=50", "accuracy>=high"):
        with pytest.raises(UserInputError, match="constraint"):
            parse_constraint(bad)
    with pytest.raises(UserInputError, match="energy, latency, error"):
        make_goal("throughput", [])


def test_exhaustive_takes_each_devices_least_feasible_design(city):
    _, _, devices, truth = city
    goal = make_goal(*GOAL)
    chosen = exhaustive.best_designs(goal, truth)
    ok = goal.feasible(truth)
    cost = np.where(ok, goal.cost(truth), np.inf)
    rows = np.arange(devices.size)
    assert ok[rows, chosen].all()
    np.testing.assert_array_equal(cost[rows, chosen], cost.min(axis=1))


def test_a_goal_no_design_meets_is_an_error_naming_the_reachable_bound(city):
    _, _, _, truth = city
    with pytest.raises(NoDesignMeetsError, match="accuracy >= 0.9"):
        exhaustive.best_designs(make_goal("energy", ["accuracy>=0.99"]), truth)


def test_the_proxy_profile_splits_into_trunk_and_exit_head(city):
    _, space, _, _ = city
    profiles = proxy.load_profiles(space)
    for profile in profiles:
        trunk, exits = proxy.device_rows_seconds(profile)
        table = profile.table
        names = table["layer"].tolist()
        split = max(i for i, n in enumerate(names) if n.startswith("net.split_quant"))
        assert trunk + exits == pytest.approx(table["time_s"].iloc[1 : split + 1].sum())
        assert 0 < exits < trunk


def test_each_checkpoint_takes_its_own_recorded_profile(city):
    scenario, space, _, _ = city
    profiles = proxy.load_profiles(space)
    stems = [c.stem for c in proxy.checkpoints(space)]
    assert [p.meta["model"] for p in profiles] == stems
    base = proxy.proxy_predictions(scenario, space, profiles)
    # Slow one checkpoint's rows down: only its designs' predicted compute changes, by
    # exactly its device part's added seconds, on the kinds that run on the device.
    slow = stems.index("fmnist-binary")
    table = profiles[slow].table.assign(time_s=profiles[slow].table["time_s"] * 3)
    changed = list(profiles)
    changed[slow] = profiler.Profile(table, profiles[slow].meta)
    after = proxy.proxy_predictions(scenario, space, changed)
    added = 2 * sum(proxy.device_rows_seconds(profiles[slow]))
    for d, design in enumerate(space.designs):
        kinds = Kinds(space.models[design.model])
        runs = np.array([bool(kinds.device_ops(k)) for k in range(kinds.count)], dtype=float)
        expected = added * (design.kind_share @ runs) if design.model == slow else 0.0
        assert after.latency_s[0, d] - base.latency_s[0, d] == pytest.approx(expected, abs=1e-15)


def test_proxy_profiles_missing_mismatched_or_given_as_one_file(city, tmp_path):
    _, space, _, _ = city
    stems = [c.stem for c in proxy.checkpoints(space)]
    folder = proxy.profile_folder(space)
    for stem in stems[1:]:
        shutil.copy(folder / f"{stem}.parquet", tmp_path / f"{stem}.parquet")
    with pytest.raises(UserInputError, match=f"fogsim profile .*{stems[0]}.pt"):
        proxy.load_profiles(space, tmp_path)
    shutil.copy(folder / f"{stems[1]}.parquet", tmp_path / f"{stems[0]}.parquet")
    with pytest.raises(UserInputError, match=f"profiles '{stems[1]}', not '{stems[0]}'"):
        proxy.load_profiles(space, tmp_path)
    with pytest.raises(UserInputError, match="does not exist"):
        proxy.load_profiles(space, tmp_path / "none")
    one = proxy.load_profiles(space, folder / "fmnist-fp32.parquet")
    assert len(one) == len(stems) and all(p is one[0] for p in one)


def test_proxy_reuses_one_ranking_and_checks_feasibility_on_each_device(city):
    scenario, space, devices, truth = city
    profiles = proxy.load_profiles(space)
    only_accuracy = make_goal("energy", ["accuracy>=0.88"])
    choice = proxy.choose(scenario, space, devices, only_accuracy, profiles)
    assert choice.checks == 0 and np.unique(choice.design).size == 1
    # The most accurate designs send the most: under the tightest latency bound that every
    # device meets, devices pass over them, each down the same ranking.
    bound_ms = truth.latency_s.min(axis=1).max() * 1.01e3
    tight = make_goal("error", [f"latency<={bound_ms} ms"])
    choice = proxy.choose(scenario, space, devices, tight, profiles)
    assert tight.feasible(truth)[np.arange(devices.size), choice.design].all()
    assert choice.checks > devices.size
    # Each device took the first design of the proxy's order that it can run.
    position = {d: i for i, d in enumerate(choice.order)}
    ok = tight.feasible(truth)
    for device, design in enumerate(choice.design):
        earlier = choice.order[: position[design]]
        assert not ok[device, earlier].any()


def test_the_proxy_ranks_once_then_assigns_each_device(city):
    scenario, space, devices, _ = city
    profiles = proxy.load_profiles(space)
    for constraints in (["accuracy>=0.86"], GOAL[1]):
        goal = make_goal(GOAL[0], constraints)
        ranking = proxy.rank(scenario, space, goal, profiles)
        design, checks = proxy.assign(scenario, space, devices, goal, ranking)
        whole = proxy.choose(scenario, space, devices, goal, profiles)
        np.testing.assert_array_equal(design, whole.design)
        if constraints == ["accuracy>=0.86"]:  # nothing to check on the devices
            assert checks == 0 and (design == ranking.order[0]).all()


def test_the_optimiser_computes_only_the_allowed_logits_and_picks_as_the_whole_net(city):
    import torch

    from fogsim.optimize.features import design_features
    from fogsim.optimize.learned import Optimiser, Predictor, bounds_vector

    scenario, space, devices, truth = city
    goal = make_goal(*GOAL)
    design_x, x = design_features(space), devices.features
    predictor = Predictor.fit(design_x, x, truth, 2000, 1, steps=50)
    optimiser = Optimiser.fit(predictor, design_x, x, goal, truth, 500, 1, steps=50)
    assert 0 < optimiser.allowed.sum() < optimiser.allowed.size
    whole = np.hstack([x, np.repeat(bounds_vector(goal)[None], x.shape[0], 0)])
    with torch.no_grad():
        logits = optimiser.net(optimiser.scaler(whole)).numpy()
    expected = np.where(optimiser.allowed, logits, -np.inf).argmax(axis=1)
    np.testing.assert_array_equal(optimiser.choose(x, goal), expected)


@pytest.mark.slow
def test_learned_predicts_held_out_devices_and_plans_the_same_each_time(city):
    scenario, space, devices, truth = city
    goal = make_goal(*GOAL)
    first = methods.plan("learned", scenario, space, devices, goal)
    again = methods.plan("learned", scenario, space, devices, goal)
    np.testing.assert_array_equal(first.design, again.design)
    error = first.report["predictor_mape"]
    assert error["latency_pct"] < 5 and error["energy_pct"] < 5
    scored = methods.score(goal, truth, first.design)
    assert scored["regret"]["within_2pct"] >= 0.8


def _optimize(tmp_path: Path, *extra: str):
    out = tmp_path / "plan.parquet"
    sets = [a for s in SMALL for a in ("--set", s)]
    args = ["optimize", str(CITY), "--objective", GOAL[0], *sets]
    args += [a for c in GOAL[1] for a in ("--constraint", c)]
    return invoke(*args, "-o", str(out), *extra), out


@pytest.mark.parametrize("method", ["exhaustive", "proxy", "learned"])
def test_optimize_writes_a_plan_and_prints_one_json_object(tmp_path, method, city):
    scenario, space, _, truth = city
    result, out = _optimize(tmp_path, "--method", method, "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {"devices", "violations", "true_objective_mean", "seconds"} <= set(summary)
    # The whole method is its one-off setup plus the per-device planning step.
    assert 0 < summary["plan_seconds"] <= summary["seconds"]
    assert summary["setup_seconds"] == pytest.approx(summary["seconds"] - summary["plan_seconds"])
    if method == "exhaustive":
        assert summary["setup_seconds"] == 0
    assert summary["devices"] == scenario.device_count == 160
    table = pq.read_table(out).to_pandas()
    assert {"device", "design"} <= set(table.columns)
    np.testing.assert_array_equal(table["device"], np.arange(160))
    chosen = read_plan(out, scenario, space.names)
    # The objective is the true one of the chosen designs, not a prediction.
    true_energy = truth.energy_j[np.arange(160), chosen].mean()
    assert summary["true_objective_mean"] == pytest.approx(true_energy)
    assert summary["violations"] == int((~table["feasible"]).sum())
    if method == "exhaustive":
        assert summary["violations"] == 0
        assert summary["true_objective_mean"] == pytest.approx(summary["optimum_objective_mean"])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--method", "annealing"], "unknown; use one of exhaustive, proxy, learned"),
        (["--constraint", "accuracy>=0.99"], "no design meets"),
        (["--constraint", "latency<=1 us"], "no design meets"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, extra, message):
    result, out = _optimize(tmp_path, *extra)
    assert result.code != 0 and message in result.stderr
    assert not out.exists()


def test_a_plan_from_another_scenario_is_refused(tmp_path, city):
    scenario, space, _, _ = city
    result, out = _optimize(tmp_path)
    assert result.code == 0, result.stderr
    bigger = load_scenario(CITY, [*SMALL, "devices[0].count=41"])
    with pytest.raises(UserInputError, match="plans 160 devices but scenario"):
        read_plan(out, bigger, space.names)
    with pytest.raises(UserInputError, match="designs scenario .* does not have"):
        read_plan(
            out,
            scenario,
            [n for n in space.names if not n.startswith("fmnist-fp32")] + ["other@0.00"],
        )
    with pytest.raises(UserInputError, match="not found"):
        read_plan(tmp_path / "none.parquet", scenario, space.names)


def test_the_contracts_command_needs_no_objective(tmp_path):
    out = tmp_path / "plan.parquet"
    sets = [a for s in SMALL for a in ("--set", s)]
    result = invoke("optimize", str(CITY), *sets, "--method", "proxy", "-o", str(out), "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["objective"] == "energy" and summary["constraints"] == []
    assert summary["violations"] == 0 and out.is_file()


def test_the_same_scenario_and_seed_give_the_same_plan_bytes(tmp_path):
    first, out = _optimize(tmp_path, "--method", "proxy")
    assert first.code == 0, first.stderr
    once = out.read_bytes()
    again, _ = _optimize(tmp_path, "--method", "proxy")
    assert again.code == 0 and out.read_bytes() == once

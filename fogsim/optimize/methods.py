"""The three ways to plan: exhaustive, proxy and learned, each timed, each scored by the
true model, and the referee's optimum beside them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fogsim.errors import UserInputError
from fogsim.optimize import exhaustive, proxy, rank
from fogsim.optimize.designs import DesignSpace
from fogsim.optimize.features import design_features
from fogsim.optimize.goal import Goal, require_feasible
from fogsim.optimize.learned import Optimiser, Predictor, one_thread
from fogsim.optimize.population import Population
from fogsim.optimize.truth import Truth, ground_truth
from fogsim.scenario.models import Scenario
from fogsim.sim.rng import Streams

METHODS = ("exhaustive", "proxy", "learned")
TRAIN_DEVICES = 500  # devices the learned method measures every design on, at most
TRAIN_PAIRS = 20_000  # (device, design) pairs drawn from them for the predictor
OPTIMISER_SAMPLES = 8_000  # (device, bounds) samples for the optimiser network


@dataclass
class Planned:
    """Each device's design, what it took, and what the method reports of itself."""

    method: str
    design: np.ndarray  # (devices,)
    seconds: float  # the whole method: measuring, training, ranking, planning
    plan_seconds: float  # planning the devices once the method is built (the decision)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def setup_seconds(self) -> float:
        """What is done once, before any device is planned: loading the proxy's profile
        and ranking on it, or measuring training devices and training the networks."""
        return self.seconds - self.plan_seconds


def check_method(method: str) -> None:
    if method not in METHODS:
        raise UserInputError(f"--method {method!r}: unknown; use one of {', '.join(METHODS)}")


def plan(
    method: str,
    scenario: Scenario,
    space: DesignSpace,
    devices: Population,
    goal: Goal,
    profile: Path | None = None,
) -> Planned:
    """Plan every device with ``method``."""
    check_method(method)
    return {"exhaustive": _exhaustive, "proxy": _proxy, "learned": _learned}[method](
        scenario, space, devices, goal, profile
    )


def _exhaustive(
    scenario: Scenario, space: DesignSpace, devices: Population, goal: Goal, _: Path | None
) -> Planned:
    started = time.perf_counter()
    design = exhaustive.best_designs(goal, ground_truth(scenario, space, devices))
    seconds = time.perf_counter() - started
    return Planned("exhaustive", design, seconds, seconds)


def _proxy(
    scenario: Scenario, space: DesignSpace, devices: Population, goal: Goal, path: Path | None
) -> Planned:
    started = time.perf_counter()
    ranking = proxy.rank(scenario, space, goal, proxy.load_profiles(space, path))
    planning = time.perf_counter()
    design, checks = proxy.assign(scenario, space, devices, goal, ranking)
    done = time.perf_counter()
    truth = ground_truth(scenario, space, devices)
    tau = rank.kendall_tau(goal.cost(ranking.predicted)[0], goal.cost(truth))
    report = {
        "profile": str(path or proxy.profile_folder(space)),
        "feasibility_checks": checks,
        "kendall_tau": _stats(tau),
    }
    return Planned("proxy", design, done - started, done - planning, report)


def _learned(
    scenario: Scenario, space: DesignSpace, devices: Population, goal: Goal, _: Path | None
) -> Planned:
    with one_thread():
        return _learn_and_plan(scenario, space, devices, goal)


def _learn_and_plan(
    scenario: Scenario, space: DesignSpace, devices: Population, goal: Goal
) -> Planned:
    started = time.perf_counter()
    train, held = split_devices(scenario, devices)
    design_x = design_features(space)
    measured = ground_truth(scenario, space, devices, train)
    require_feasible(goal, measured)
    seed = scenario.seed
    predictor = Predictor.fit(design_x, devices.features[train], measured, TRAIN_PAIRS, seed)
    optimiser = Optimiser.fit(
        predictor, design_x, devices.features[train], goal, measured, OPTIMISER_SAMPLES, seed
    )
    planning = time.perf_counter()
    design = optimiser.choose(devices.features, goal)
    done = time.perf_counter()
    report = {
        "train_devices": int(train.size),
        "train_pairs": TRAIN_PAIRS,
        "train_seconds": planning - started,
        "predictor_mape": predictor_error(scenario, space, devices, predictor, design_x, held),
    }
    return Planned("learned", design, done - started, done - planning, report)


def split_devices(scenario: Scenario, devices: Population) -> tuple[np.ndarray, np.ndarray]:
    """Training devices (seeded, stream optimize/learned) and the held-out rest."""
    rng = Streams(scenario.seed).stream("optimize/learned")
    order = rng.permutation(devices.size)
    count = min(TRAIN_DEVICES, max(1, devices.size // 2))
    return np.sort(order[:count]), np.sort(order[count:])


def predictor_error(
    scenario: Scenario,
    space: DesignSpace,
    devices: Population,
    predictor: Predictor,
    design_x: np.ndarray,
    held: np.ndarray,
    most: int = 1000,
) -> dict[str, float]:
    """Mean absolute percentage error of latency and energy on (up to ``most``) held-out
    devices, every design; accuracy's absolute error in points."""
    if held.size == 0:
        return {}
    held = held[:: max(1, held.size // most)]
    truth = ground_truth(scenario, space, devices, held)
    guess = predictor.predict(design_x, devices.features[held])
    return {
        "latency_pct": _mape(guess.latency_s, truth.latency_s),
        "energy_pct": _mape(guess.energy_j, truth.energy_j),
        "accuracy_points": float(np.mean(np.abs(guess.accuracy - truth.accuracy)) * 100),
    }


def _mape(guess: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(guess - truth) / truth) * 100)


def _stats(values: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "min": float(values.min()),
        "p05": float(np.quantile(values, 0.05)),
    }


def score(goal: Goal, truth: Truth, design: np.ndarray) -> dict[str, Any]:
    """The plan under the true model: its objective, violations, and regret against the
    exhaustive optimum."""
    rows = np.arange(design.size)
    cost = goal.cost(truth)
    violations = ~goal.feasible(truth)[rows, design]
    best = np.where(goal.feasible(truth), cost, np.inf).argmin(axis=1)
    regret = rank.regret(cost, design, best)
    return {
        "true_objective_mean": float(cost[rows, design].mean()),
        "optimum_objective_mean": float(cost[rows, best].mean()),
        "violations": int(violations.sum()),
        "regret": {
            "mean": float(regret.mean()),
            "p95": float(np.quantile(regret, 0.95)),
            "within_2pct": float(np.mean(regret <= 0.02)),
        },
        "mean_accuracy": float(truth.accuracy[design].mean()),
        "mean_latency_s": float(truth.latency_s[rows, design].mean()),
        "mean_energy_j": float(truth.energy_j[rows, design].mean()),
    }

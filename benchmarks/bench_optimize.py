"""Many devices, one optimiser (issue 14): every target figure, measured on the heterogeneous
city (10,000 devices, the shipped checkpoints that fit Fashion-MNIST x 13 thresholds).

1. The learned predictor's error on held-out devices (every design on each): MAPE of
   latency and energy, accuracy's absolute error.
2. Each method's plan under the true model: violations, regret against exhaustive search,
   the share of held-out devices within 2% of the optimum; the proxy's Kendall tau.
3. Time to plan the 10,000 devices per method (median of --repeats), split into the
   planning step (the per-device decision: the proxy's feasibility checks down its
   ranking, the learned optimiser's one forward pass) and the setup done once before it
   (loading the proxy's profile and ranking on it; measuring training devices and training
   the learned networks); the speed-up over exhaustive search, planning alone and with the
   setup; and against an exhaustive search that would simulate every design (one
   whole-city simulation of one design, timed, times the number of designs: extrapolated,
   not run). The planning steps are timed again interleaved, each repeat timing all three
   in turn, so that a shared machine's load falls on them alike (``--timing-only``: just
   these).
4. The per-device plan (exhaustive and learned) against the best single design for every
   device, both simulated on the same workload: accuracy, deadline-miss rate, mean device
   energy per request.

5. ``--proxy-only``: the proxy's Kendall tau and regret alone, with each checkpoint's own
   measured table (the default) and with the fp32 network's table for every checkpoint.

    python benchmarks/bench_optimize.py [--repeats 3] [--timing-only | --proxy-only]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from fogsim.optimize import exhaustive, methods, proxy
from fogsim.optimize.designs import design_space
from fogsim.optimize.features import design_features
from fogsim.optimize.goal import make_goal
from fogsim.optimize.learned import Optimiser, Predictor, one_thread
from fogsim.optimize.planned import best_single_design, headline, run_single
from fogsim.optimize.population import population
from fogsim.optimize.truth import ground_truth
from fogsim.results import requests_frame, summarize
from fogsim.scenario import load_scenario
from fogsim.sim.engine import simulate

CITY = Path(__file__).resolve().parents[1] / "scenarios/city-heterogeneous.yaml"
GOALS = [
    ("energy", ["accuracy>=0.88", "latency<=100 ms"]),
    ("energy", ["accuracy>=0.86"]),
    ("energy", ["accuracy>=0.9"]),
    ("latency", ["accuracy>=0.89"]),
]


def median_time(run, repeats: int) -> tuple[float, object]:  # noqa: ANN001
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return float(np.median(times)), result


def predictor_error(scenario, space, devices) -> dict:  # noqa: ANN001
    """Every held-out device, every design."""
    train, held = methods.split_devices(scenario, devices)
    design_x = design_features(space)
    measured = ground_truth(scenario, space, devices, train)
    with one_thread():
        predictor = Predictor.fit(
            design_x, devices.features[train], measured, methods.TRAIN_PAIRS, scenario.seed
        )
        return methods.predictor_error(
            scenario, space, devices, predictor, design_x, held, most=held.size
        ) | {"held_out_devices": int(held.size), "train_devices": int(train.size)}


def interleaved_planning(scenario, space, devices, goal, repeats: int) -> dict:  # noqa: ANN001
    """The planning steps alone, timed in turn within each repeat (exhaustive search, the
    proxy's assignment down its ranking, the optimiser's forward pass), so that a shared
    machine's load falls on all three alike; setup (profile, ranking, training) done once."""
    ranking = proxy.rank(scenario, space, goal, proxy.load_profiles(space))
    train, _ = methods.split_devices(scenario, devices)
    design_x, x = design_features(space), devices.features
    measured = ground_truth(scenario, space, devices, train)
    steps = {
        "exhaustive": lambda: exhaustive.best_designs(goal, ground_truth(scenario, space, devices)),
        "proxy": lambda: proxy.assign(scenario, space, devices, goal, ranking),
    }
    seconds: dict[str, list[float]] = {name: [] for name in (*steps, "learned")}
    with one_thread():
        seed, pairs = scenario.seed, methods.TRAIN_PAIRS
        predictor = Predictor.fit(design_x, x[train], measured, pairs, seed)
        optimiser = Optimiser.fit(
            predictor, design_x, x[train], goal, measured, methods.OPTIMISER_SAMPLES, seed
        )
        steps["learned"] = lambda: optimiser.choose(x, goal)
        for _ in range(repeats):
            for name, step in steps.items():
                started = time.perf_counter()
                step()
                seconds[name].append(time.perf_counter() - started)
    median = {name: float(np.median(times)) for name, times in seconds.items()}
    return {
        "plan_seconds_median": median,
        "speedup_over_exhaustive": {
            m: median["exhaustive"] / median[m] for m in ("proxy", "learned")
        },
    }


def simulated(scenario, space, planned, single: int) -> dict:  # noqa: ANN001
    sim = simulate(scenario, space.assign(planned))
    ours = headline(summarize(scenario, requests_frame(sim.columns), sim.summary_extra()))
    theirs = headline(run_single(scenario, space, single, progress=False))
    return {
        "plan": ours,
        "best_single": {"design": space.names[single], **theirs},
        "active_energy_saving": 1 - ours["mean_active_energy_j"] / theirs["mean_active_energy_j"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="Print one JSON object only.")
    parser.add_argument(
        "--timing-only", action="store_true", help="Only the interleaved planning times."
    )
    parser.add_argument(
        "--proxy-only", action="store_true", help="Only the proxy's tau and regret, two ways."
    )
    args = parser.parse_args()
    scenario = load_scenario(CITY)
    space, devices = design_space(scenario), population(scenario)
    if args.proxy_only:
        print(json.dumps(proxy_tables(scenario, space, devices), indent=2))
        return
    if args.timing_only:
        timing = {
            make_goal(*g).describe(): interleaved_planning(
                scenario, space, devices, make_goal(*g), args.repeats
            )
            for g in GOALS
        }
        print(json.dumps({"devices": devices.size, "repeats": args.repeats, **timing}, indent=2))
        return
    truth = ground_truth(scenario, space, devices)
    _, held = methods.split_devices(scenario, devices)
    one_design_s, _ = median_time(
        lambda: run_single(scenario, space, 0, progress=False), max(1, args.repeats // 3)
    )
    report: dict = {
        "simulate_one_design_s": one_design_s,
        "exhaustive_by_simulation_s_extrapolated": one_design_s * len(space.designs),
        "devices": devices.size,
        "designs": len(space.designs),
        "predictor_error_held_out": predictor_error(scenario, space, devices),
        "goals": [],
    }
    for objective, constraints in GOALS:
        goal = make_goal(objective, constraints)
        entry: dict = {"goal": goal.describe(), "methods": {}}
        plans = {}
        for method in methods.METHODS:
            runs = [
                methods.plan(method, scenario, space, devices, goal) for _ in range(args.repeats)
            ]
            planned = runs[-1]
            # The methods' own clocks: scoring and reporting (tau, predictor error) excluded.
            seconds = float(np.median([r.seconds for r in runs]))
            scored = methods.score(goal, truth, planned.design)
            held_scored = methods.score(goal, _rows(truth, held), planned.design[held])
            entry["methods"][method] = {
                "seconds_median": seconds,
                # The per-device decision alone, and what is done once before it.
                "plan_seconds_median": float(np.median([r.plan_seconds for r in runs])),
                "setup_seconds_median": float(np.median([r.setup_seconds for r in runs])),
                "violations": scored["violations"],
                "true_objective_mean": scored["true_objective_mean"],
                "regret": scored["regret"],
                "held_out_within_2pct": held_scored["regret"]["within_2pct"],
                **{k: v for k, v in planned.report.items() if k == "kendall_tau"},
            }
            plans[method] = planned.design
        timed = entry["methods"]
        by_simulation = report["exhaustive_by_simulation_s_extrapolated"]
        for name, referee in (
            ("speedup_over_exhaustive", timed["exhaustive"]["seconds_median"]),
            ("speedup_over_exhaustive_by_simulation", by_simulation),
        ):
            entry[name] = {
                f"{m}_{what}": referee / timed[m][f"{key}_median"]
                for m in ("proxy", "learned")
                for what, key in (("planning", "plan_seconds"), ("with_setup", "seconds"))
            }
        entry["planning_interleaved"] = interleaved_planning(
            scenario, space, devices, goal, args.repeats
        )
        single = best_single_design(scenario, space, goal)
        entry["simulated"] = {
            m: simulated(scenario, space, plans[m], single) for m in ("exhaustive", "learned")
        }
        report["goals"].append(entry)
    print(json.dumps(report, indent=2))


def proxy_tables(scenario, space, devices) -> dict:  # noqa: ANN001
    """The proxy's plan under every goal with each checkpoint's own table and with the fp32
    network's table for all: tau, regret and the designs it chose."""
    truth = ground_truth(scenario, space, devices)
    tables = {
        "own_table_per_checkpoint": None,
        "fp32_table_for_all": proxy.profile_folder(space) / "fmnist-fp32.parquet",
    }
    report: dict = {}
    for label, path in tables.items():
        report[label] = {}
        for objective, constraints in GOALS:
            goal = make_goal(objective, constraints)
            planned = methods.plan("proxy", scenario, space, devices, goal, path)
            report[label][goal.describe()] = {
                "kendall_tau": planned.report["kendall_tau"],
                "regret": methods.score(goal, truth, planned.design)["regret"],
                "designs": sorted({space.designs[d].name for d in set(planned.design.tolist())}),
            }
    return report


def _rows(truth, rows):  # noqa: ANN001, ANN202
    return type(truth)(truth.latency_s[rows], truth.energy_j[rows], truth.accuracy, truth.exit_rate)


if __name__ == "__main__":
    main()

"""Run a sweep on Dask: validate every point, infer once per network, simulate each point.

The client writes each finished point itself (workers only compute), so a sweep on
a remote ``--scheduler`` needs no filesystem shared with its workers, and one
writer means markers never race.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fogsim.errors import UserInputError
from fogsim.scenario import Problem, Scenario, ScenarioError, load_scenario, preflight
from fogsim.scenario.footprint import parse_memory
from fogsim.scenario.source import Loc
from fogsim.sweeping.spec import Point, SweepSpec, is_sweep_file, load_sweep_file, spec_from_options
from fogsim.sweeping.store import SweepResult, SweepStore, load_sweep

if TYPE_CHECKING:
    from distributed import Client

    from fogsim.inference import InferenceOutcomes


def sweep(
    scenario: str | Path | SweepSpec,
    grid: list[str] | dict[str, list[Any]] | None = None,
    *,
    replications: int = 1,
    seeds: list[int] | None = None,
    overrides: list[str] | None = None,
    out_dir: str | Path | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    client: Client | None = None,
    progress: bool = False,
    max_memory: float | str | None = None,
    engine: str = "auto",
) -> SweepResult:
    """Run (or resume) a sweep and return its results; failed points are in ``.failed``.

    ``scenario`` is a scenario file with ``grid``/``replications``/``seeds``, a sweep
    YAML, or a ``SweepSpec``. ``overrides`` apply to every point before the grid's.
    Without ``client`` or ``scheduler``, a local cluster of ``workers`` processes
    (default: one per core) runs it. A point estimated to need more memory than
    ``max_memory`` (bytes, or text like "8GB"; default: half the memory available
    here) makes the sweep refuse before anything runs. ``engine`` solves each point's
    shared stages (``fogsim.sim.engine.ENGINES``); a point the fast engine cannot run
    exactly fails, naming why, under ``engine="fast"``.
    """
    from fogsim.sim.engine import ENGINES

    if engine not in ENGINES:
        raise UserInputError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if isinstance(max_memory, str):
        max_memory = parse_memory(max_memory, "max_memory")
    given = [name for name, value in (("client", client), ("scheduler", scheduler)) if value]
    if len(given) > 1 or (given and workers is not None):
        raise UserInputError("give one of: a client, a scheduler address, or a worker count")
    spec = _spec(scenario, grid, replications, seeds)
    if overrides:
        spec = dataclasses.replace(spec, overrides=[*spec.overrides, *overrides])
    base, scenarios, points = validate_points(spec, max_memory)
    directory = Path(out_dir) if out_dir else Path("sweeps") / base.name
    store = SweepStore(directory)
    store.open(spec.to_data(base.seed), spec.scenario)
    done = store.done_ids()
    pending = [point for point in points if point.id not in done]
    try:
        if pending:
            with dask_client(client, scheduler, workers) as active:
                _execute(active, store, pending, scenarios, len(points), progress, engine)
    finally:
        # Even after an interrupt, the table shows what finished.
        store.write_points_table()
    result = load_sweep(directory)
    if len(result.failed):
        warnings.warn(failure_report(result), stacklevel=2)
    return result


def validate_points(
    spec: SweepSpec, max_memory: float | None = None
) -> tuple[Scenario, dict[str, Scenario], list[Point]]:
    """Load the base and every point's scenario, and check what running each needs.

    Raises one error listing every problem: invalid values, unreadable checkpoints or
    datasets (checked once per distinct pair), points over the memory limit.
    """
    overrides = spec.overrides
    base = load_scenario(spec.scenario, overrides)
    points = spec.points(base.seed)
    scenarios: dict[str, Scenario] = {}
    problems: dict[str, list[str]] = {}
    files_checked: dict[str, list[tuple[Loc, str]]] = {}
    for point in points:
        try:
            scenario = load_scenario(spec.scenario, overrides + point.overrides)
        except ScenarioError as exc:
            for problem in exc.problems:
                problems.setdefault(str(problem), []).append(_label(point))
            continue
        scenarios[point.id] = scenario
        key = _outcome_key(scenario)
        if key not in files_checked:
            files_checked[key] = preflight.file_problems(scenario)
        found = files_checked[key] + preflight.memory_problems(scenario, max_memory)
        for loc, message in found:
            problems.setdefault(str(Problem(loc, message)), []).append(_label(point))
    if problems:
        lines = [f"  - {text}  [{_few(labels)}]" for text, labels in problems.items()]
        bad = len({label for labels in problems.values() for label in labels})
        raise UserInputError(
            f"{spec.scenario}: {bad} of {len(points)} sweep points are invalid; "
            "nothing was run:\n" + "\n".join(lines)
        )
    return base, scenarios, points


def failure_report(result: SweepResult) -> str:
    """One line per failed point: its grid values, seed and error."""
    failed = result.failed
    lines = [f"{len(failed)} of {len(result.points)} points failed:"]
    for _, row in failed.iterrows():
        values = "".join(f"{key}={row[key]}, " for key in result.spec["grid"])
        lines.append(f"  - point {row['point']} ({values}seed {row['seed']}): {row['error']}")
    return "\n".join(lines)


def _execute(
    client: Client,
    store: SweepStore,
    pending: list[Point],
    scenarios: dict[str, Scenario],
    total: int,
    progress: bool,
    engine: str,
) -> None:
    from distributed import as_completed
    from tqdm import tqdm  # not tqdm.auto: it warns in notebooks without ipywidgets

    # One inference task per distinct network and dataset; every point of it waits on it.
    outcomes = {}
    for point in pending:
        key = _outcome_key(scenarios[point.id])
        if key not in outcomes:
            outcomes[key] = client.submit(
                outcomes_task, scenarios[point.id], key=f"outcomes-{key}", pure=False
            )
    futures = {
        client.submit(
            simulate_task,
            scenarios[point.id],
            outcomes[_outcome_key(scenarios[point.id])],
            point,
            engine,
            key=f"point-{point.id}",
            pure=False,
        ): point
        for point in pending
    }
    bar = tqdm(total=total, initial=total - len(pending), unit="point", disable=not progress)
    with bar:
        for future in as_completed(futures):
            point = futures.pop(future)
            if future.status == "finished":
                parquet, summary, wall_s = future.result()
                store.write_done(point, parquet, summary, wall_s)
            elif future.status == "error":
                error = future.exception()
                store.write_failed(point, f"{type(error).__name__}: {error}")
            else:  # cancelled, e.g. by a scheduler that went away
                store.write_failed(point, f"the task was {future.status}")
            future.release()
            bar.update(1)


def outcomes_task(scenario: Scenario) -> InferenceOutcomes:
    """A worker's share: the network's outcomes on the scenario's dataset (cached on disk)."""
    from fogsim.runner import outcomes_for

    return outcomes_for(scenario)


def simulate_task(
    scenario: Scenario, outcomes: InferenceOutcomes, point: Point, engine: str = "auto"
) -> tuple[bytes, dict[str, Any], float]:
    """A worker's share: simulate one point; return its requests as Parquet, summary, wall time.

    Encoding Parquet here, not in the client, keeps the one writer from becoming the
    bottleneck, and bytes cross to a remote client more cheaply than a pickled frame.
    """
    from fogsim.results import requests_frame, summarize
    from fogsim.sim.engine import simulate
    from fogsim.sweeping.store import point_parquet

    started = time.perf_counter()
    result = simulate(scenario, outcomes, engine=engine)
    frame = requests_frame(result.columns)
    summary = summarize(scenario, frame, result.summary_extra())
    wall_s = time.perf_counter() - started
    return point_parquet(frame, point), summary, wall_s


@contextlib.contextmanager
def dask_client(
    client: Client | None, scheduler: str | None, workers: int | None
) -> Iterator[Client]:
    """The given client, one to ``scheduler``, or a local cluster of ``workers`` processes."""
    from distributed import Client, LocalCluster

    if client is not None:
        yield client
        return
    if scheduler is not None:
        with Client(scheduler) as remote:
            yield remote
        return
    n_workers = workers or len(os.sched_getaffinity(0))
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as local,
    ):
        yield local


def _spec(
    scenario: str | Path | SweepSpec,
    grid: list[str] | dict[str, list[Any]] | None,
    replications: int,
    seeds: list[int] | None,
) -> SweepSpec:
    if isinstance(scenario, SweepSpec):
        return scenario
    path = Path(scenario)
    if path.is_file() and is_sweep_file(path):
        if grid or seeds or replications != 1:
            raise UserInputError(f"{path} is a sweep file; put grid and seeds in it, not here")
        return load_sweep_file(path)
    return spec_from_options(path, grid, replications, seeds)


def _outcome_key(scenario: Scenario) -> str:
    text = f"{scenario.model.checkpoint}|{scenario.dataset.model_dump_json()}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _label(point: Point) -> str:
    values = ", ".join(f"{k}={v}" for k, v in point.params.items())
    return f"{values}, seed={point.seed}" if values else f"seed={point.seed}"


def _few(labels: list[str], shown: int = 3) -> str:
    more = f" and {len(labels) - shown} more" if len(labels) > shown else ""
    return "; ".join(labels[:shown]) + more

"""Checks before a run: the files a scenario names can be read, and the run fits in memory.

They read files (a checkpoint, a dataset's layout) but run no inference, so
``fogsim validate`` finds in seconds what ``fogsim run`` would reject later.
"""

from __future__ import annotations

import zipfile
from typing import Any

import numpy as np

from fogsim.errors import CheckpointError, DatasetNotFoundError, UserInputError
from fogsim.scenario import footprint
from fogsim.scenario.drift import run_problems as drift_problems
from fogsim.scenario.models import DatasetSpec, Scenario
from fogsim.scenario.source import Loc


def problems(scenario: Scenario, max_memory: float | None = None) -> list[tuple[Loc, str]]:
    """Everything that would stop ``scenario`` from running, with where it is in the scenario.

    ``max_memory`` is the memory limit in bytes; None means the default limit.
    """
    return file_problems(scenario) + memory_problems(scenario, max_memory)


def file_problems(scenario: Scenario) -> list[tuple[Loc, str]]:
    """The checkpoint and the dataset: present, and readable as what they claim to be."""
    found = []
    checkpoint = checkpoint_problem(scenario)
    if checkpoint:
        found.append((("model", "checkpoint"), checkpoint))
    dataset = dataset_problem(scenario.dataset)
    if dataset:
        where = ("dataset", "path") if scenario.dataset.path is not None else ("dataset", "name")
        found.append((where, dataset))
    if not (checkpoint or dataset):
        fit = fit_problem(scenario)
        if fit:
            found.append((("model", "checkpoint"), fit))
    if not checkpoint:
        found += part_problems(scenario)
    plan = plan_problem(scenario, designs=not (checkpoint or dataset))
    if plan:
        found.append((("plan",), plan))
    return found


def plan_problem(scenario: Scenario, designs: bool = True) -> str | None:
    """A plan (``plan:``) must be a Parquet table with one row per device of this scenario,
    naming designs of its design space (read from the checkpoints, without inference; only
    where the checkpoint and dataset are readable: ``designs``)."""
    if scenario.plan is None:
        return None
    from fogsim.optimize.designs import design_names
    from fogsim.optimize.plan import plan_table, unknown_designs

    try:
        table = plan_table(scenario.plan, scenario)
        if not designs:
            return None
        known = set(design_names(scenario))
    except (UserInputError, CheckpointError) as exc:  # no plan, or no design space to check
        return str(exc)
    return unknown_designs(scenario.plan, scenario, set(table["design"]), known)


def part_problems(scenario: Scenario) -> list[tuple[Loc, str]]:
    """The network's parts against the scenario: a fog part needs a fog server for every
    device group, and one threshold per exit needs as many thresholds as exits."""
    from fogsim.nn.checkpoint_info import checkpoint_info
    from fogsim.topology import Topology

    # The checkpoint's parts and exits, read without torch where it was read before.
    model = checkpoint_info(scenario.model.checkpoint)
    found: list[tuple[Loc, str]] = list(
        drift_problems(
            scenario.devices, scenario.drift, model.exit_tiers, list(model.card.get("classes", []))
        )
    )
    threshold = getattr(scenario.policy, "threshold", None)
    exits = len(model.exit_tiers)
    if isinstance(threshold, list) and len(threshold) != exits:
        found.append(
            (
                ("policy", "threshold"),
                f"{len(threshold)} thresholds, but the network has {exits} exits "
                f"({', '.join(model.exit_tiers)}); give one number, or one per exit",
            )
        )
    if scenario.policy.name == "adaptive_exit":
        found += _adaptive_problems(scenario, model)
    if "fog" not in model.tiers or scenario.policy.name in ("device_only", "edge_only"):
        return found
    topology = Topology(scenario)
    for g, group in enumerate(scenario.devices):
        for gateway in group.gateways:
            if topology.fog_for(g, gateway) is None:
                found.append(
                    (
                        ("devices", g, "fog"),
                        f"the network has a fog part ({scenario.model.checkpoint.name}: "
                        f"{', '.join(model.tiers)}), but no fog server serves gateway "
                        f"{gateway!r}; add one under fog: (at: {gateway}) or set fog:",
                    )
                )
                break
    return found


def _adaptive_problems(scenario: Scenario, checkpoint: Any) -> list[tuple[Loc, str]]:
    """The adaptive policy against the network's exits and the card's thresholds."""
    from fogsim.policies import TIERS
    from fogsim.sim import adaptive

    policy = scenario.policy
    model = checkpoint
    exits = len(model.exit_tiers)
    threshold = policy.threshold
    if isinstance(threshold, list) and len(threshold) != exits:
        return []  # reported above
    if threshold is None:
        thresholds = checkpoint.default_thresholds(exits)
    else:
        thresholds = threshold if isinstance(threshold, list) else [threshold] * exits
    tiers = [TIERS.index(tier) for tier in model.exit_tiers]
    rule = policy.rule or checkpoint.default_rule
    return adaptive.problems(scenario, np.array(tiers), rule, np.array(thresholds))


def fit_problem(scenario: Scenario) -> str | None:
    """Whether the checkpoint can run on the scenario's images (loads the split: about a
    second for CIFAR-10's test zip, milliseconds once cached)."""
    from fogsim.data import load_dataset
    from fogsim.nn.checkpoint_info import checkpoint_info, require_fit

    spec = scenario.dataset
    try:
        dataset = load_dataset(spec.name, path=spec.path, split=spec.split)
        require_fit(
            checkpoint_info(scenario.model.checkpoint),
            dataset,
            allow_mismatch=scenario.model.allow_dataset_mismatch,
            how_to_insist=INSIST,
        )
    except (UserInputError, DatasetNotFoundError, CheckpointError) as exc:
        return str(exc)
    return None


INSIST = "set `model: {allow_dataset_mismatch: true}` in the scenario"


def memory_problems(scenario: Scenario, max_memory: float | None) -> list[tuple[Loc, str]]:
    limit = footprint.default_limit() if max_memory is None else max_memory
    message = footprint.check(footprint.estimate(scenario), limit)
    return [((), message)] if message else []


def checkpoint_problem(scenario: Scenario) -> str | None:
    from fogsim.nn.checkpoint_info import checkpoint_info

    try:
        checkpoint_info(scenario.model.checkpoint)
    except CheckpointError as exc:
        return str(exc)
    return None


def dataset_problem(spec: DatasetSpec) -> str | None:
    """Why the dataset cannot be found or is in no layout fogsim reads; None when it is fine."""
    from fogsim.data import resolve_dataset
    from fogsim.data.locations import offline
    from fogsim.data.registry import spec_for

    try:
        where = resolve_dataset(spec.name, spec.path, split=spec.split)
    except DatasetNotFoundError as exc:
        if spec.path is None and spec.name and spec_for(spec.name) and not offline():
            return None  # the run downloads it
        return str(exc)
    except UserInputError as exc:
        return str(exc)
    if where.suffix.lower() == ".zip" and not zipfile.is_zipfile(where):
        return f"{where} is not a zip archive (corrupt, truncated, or another kind of file)"
    return None

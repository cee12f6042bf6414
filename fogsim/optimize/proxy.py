"""Approach 1: predictors on one proxy device, its ranking reused on every device.

The proxy is this machine, measured with ``fogsim profile`` (a table of median seconds per
row of the network): a request's compute on the proxy is the sum of the measured rows its
device part runs, to its exit or to the split (a lookup table, as nn-Meter and Ren et al.
build). Each checkpoint has its own profile (``models/profiles/<checkpoint>.parquet``,
recorded, so that a plan does not depend on this machine's load): a quantized network's
rows time what its layers really execute here, fake quantization included, in fp32
arithmetic; this machine has no binary or int4 kernels. The proxy sends over the first
device group's radio at its nominal rate and draws that group's active power while it
computes. Designs are ranked on the proxy by the predicted objective; each device then
takes the first design in that order that passes a feasibility check on the device itself
(one design at a time, under the true model), as Ren et al. reuse a proxy's ranking relying
on monotonicity between devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fogsim.errors import UserInputError
from fogsim.optimize.designs import DesignSpace
from fogsim.optimize.goal import Goal, require_feasible
from fogsim.optimize.population import Population
from fogsim.optimize.truth import Truth, ground_truth
from fogsim.partition import profiler
from fogsim.partition.profiler import Profile
from fogsim.scenario.models import Scenario
from fogsim.sim.radio import send_energy
from fogsim.sim.routes import Kinds


@dataclass(frozen=True)
class ProxyChoice:
    """Each device's design, the proxy's ranking and predictions, and the checks it cost."""

    design: np.ndarray  # (devices,)
    order: np.ndarray  # design indices, best first on the proxy
    predicted: Truth  # (1, designs): the proxy's predicted costs
    checks: int  # (device, design) feasibility checks made on the devices


def profile_folder(space: DesignSpace) -> Path:
    """``models/profiles/`` beside the shipped checkpoints."""
    return space.designs[0].checkpoint.parent / "profiles"


def checkpoints(space: DesignSpace) -> list[Path]:
    """The checkpoint of each of ``space.models``, in that order."""
    found: dict[int, Path] = {}
    for design in space.designs:
        found.setdefault(design.model, design.checkpoint)
    return [found[m] for m in range(len(space.models))]


def load_profiles(space: DesignSpace, path: Path | None = None) -> tuple[Profile, ...]:
    """The proxy's profile of each checkpoint (one per ``space.models``): from a folder of
    ``<checkpoint>.parquet`` (default ``models/profiles/``), or one profile file for them
    all. A checkpoint without its profile is an error naming the command that measures it."""
    path = profile_folder(space) if path is None else Path(path)
    wanted = checkpoints(space)
    if not path.exists():
        raise UserInputError(f"proxy profile {path} does not exist; write it with `fogsim profile`")
    if path.is_file():
        return (profiler.load(path),) * len(wanted)
    missing = [c for c in wanted if not (path / f"{c.stem}.parquet").is_file()]
    if missing:
        how = "; ".join(f"`fogsim profile {c} -o {path}/{c.stem}.parquet`" for c in missing)
        raise UserInputError(f"no proxy profile in {path} for {len(missing)} checkpoint(s): {how}")
    profiles = tuple(profiler.load(path / f"{c.stem}.parquet") for c in wanted)
    for checkpoint, profile in zip(wanted, profiles, strict=True):
        if profile.meta.get("model", checkpoint.stem) != checkpoint.stem:
            raise UserInputError(
                f"{path}/{checkpoint.stem}.parquet profiles {profile.meta['model']!r}, not "
                f"{checkpoint.stem!r}; measure it with `fogsim profile {checkpoint}`"
            )
    return profiles


def device_rows_seconds(profile: Profile) -> tuple[float, float]:
    """Seconds of the device part's trunk (stem and blocks to the split) and of its exit
    heads, summed from the profile's rows."""
    table = profile.table
    names = table["layer"].astype(str).tolist()
    # The split's quantizer is one row at fp32 (an Identity), two below (BN, ActQuant).
    at_split = [i for i, n in enumerate(names) if n.split(".")[:2] == ["net", "split_quant"]]
    if not at_split:
        raise UserInputError(
            "the proxy profile is not of a fogsim checkpoint (no net.split_quant row); "
            "profile a shipped checkpoint with `fogsim profile models/NAME.pt`"
        )
    split = at_split[-1]
    trunk = exits = 0.0
    in_exit = False
    rows = table["time_s"].iloc[1 : split + 1]
    for name, seconds in zip(names[1 : split + 1], rows, strict=True):
        if name.startswith("net."):
            in_exit = name.startswith("net.exits.")
        # Function rows (relu, mean) belong to the module row before them.
        if in_exit:
            exits += float(seconds)
        else:
            trunk += float(seconds)
    return trunk, exits


def proxy_predictions(scenario: Scenario, space: DesignSpace, profiles: Sequence[Profile]) -> Truth:
    """The proxy's predicted latency and energy of every design (a 1 x designs table), each
    from its checkpoint's profile (``profiles``, one per ``space.models``)."""
    if len(profiles) != len(space.models):
        raise ValueError(f"{len(profiles)} profiles for {len(space.models)} checkpoints")
    device_s = [sum(device_rows_seconds(p)) for p in profiles]
    group = scenario.devices[0]
    radio, power = group.radio, group.profile.active_power
    latency, energy = [], []
    for design in space.designs:
        kinds = Kinds(space.models[design.model])
        runs = np.array([bool(kinds.device_ops(k)) for k in range(kinds.count)], dtype=float)
        compute_s = runs * device_s[design.model]
        sends = design.kind_bits > 0
        airtime = design.kind_bits / radio.uplink
        send_s = np.where(sends, airtime + radio.delay, 0.0)
        send_j = send_energy(radio, design.kind_bits, airtime)
        latency.append(design.kind_share @ (compute_s + send_s))
        energy.append(design.kind_share @ (compute_s * power + send_j))
    accuracy = space.accuracy
    exit_rate = np.array([d.exit_rate for d in space.designs])
    return Truth(np.array([latency]), np.array([energy]), accuracy, exit_rate)


@dataclass(frozen=True)
class Ranking:
    """The designs in the proxy's order (best first, those the device-independent bounds
    rule out left out), and the proxy's predicted costs: made once, for every device."""

    order: np.ndarray
    predicted: Truth  # (1, designs)


def rank(
    scenario: Scenario, space: DesignSpace, goal: Goal, profiles: Sequence[Profile]
) -> Ranking:
    """The designs ranked on the proxy by the predicted objective."""
    predicted = proxy_predictions(scenario, space, profiles)
    # Device-independent constraints (accuracy, exit rate) are known exactly: they prune
    # the ranking once; only the others need a check on each device.
    alone = Goal(goal.objective, tuple(c for c in goal.constraints if _design_only(c.metric)))
    cost = goal.cost(predicted)[0]
    ok = alone.feasible(predicted)[0]
    if not ok.any():
        require_feasible(goal, predicted)  # names the constraint no design meets
    return Ranking(np.flatnonzero(ok)[np.argsort(cost[ok], kind="stable")], predicted)


def assign(
    scenario: Scenario, space: DesignSpace, devices: Population, goal: Goal, ranking: Ranking
) -> tuple[np.ndarray, int]:
    """Each device's first design in the ranking that it can run within the goal, and the
    (device, design) checks that took: the planning step proper."""
    order = ranking.order
    chosen = np.full(devices.size, -1)
    on_device = tuple(c for c in goal.constraints if not _design_only(c.metric))
    if not on_device:
        chosen[:] = order[0]
        return chosen, 0
    checks, left = 0, np.arange(devices.size)
    check = Goal(goal.objective, on_device)
    for design in order:
        truth = ground_truth(scenario, space, devices, left, np.array([design]))
        checks += left.size
        passes = check.feasible(truth)[:, 0]
        chosen[left[passes]] = design
        left = left[~passes]
        if left.size == 0:
            break
    if left.size:
        require_feasible(goal, ground_truth(scenario, space, devices, left))
    return chosen, checks


def choose(
    scenario: Scenario,
    space: DesignSpace,
    devices: Population,
    goal: Goal,
    profiles: Sequence[Profile],
) -> ProxyChoice:
    """Each device's first design, in the proxy's order, that it can run within the goal."""
    ranking = rank(scenario, space, goal, profiles)
    design, checks = assign(scenario, space, devices, goal, ranking)
    return ProxyChoice(design, ranking.order, ranking.predicted, checks)


def _design_only(metric: str) -> bool:
    return metric in ("accuracy", "error", "exit_rate")

"""What a plan minimises and what it must keep: ``--objective`` and ``--constraint``.

Objectives are minimised: ``energy`` (J per request on the device), ``latency`` (s per
request on the device) or ``error`` (1 - accuracy). A constraint bounds one metric
(``accuracy>=0.88``, ``latency<=50 ms``, ``energy<=2 mJ``, ``exit_rate>=0.5``); times and
energies carry units, shares are plain numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from fogsim.errors import UserInputError
from fogsim.optimize.truth import Truth
from fogsim.units import ENERGY, TIME, Dimension, parse

OBJECTIVES = ("energy", "latency", "error")
METRICS: dict[str, Dimension | None] = {
    "energy": ENERGY,
    "latency": TIME,
    "accuracy": None,
    "error": None,
    "exit_rate": None,
}
_CONSTRAINT = re.compile(r"^\s*([a-z_]+)\s*(<=|>=)\s*(.+?)\s*$")


class NoDesignMeetsError(UserInputError):
    """Some device has no design that meets the constraints."""


def metric(costs: Truth, name: str) -> np.ndarray:
    """(devices, designs) values of a metric (device-independent ones broadcast)."""
    shape = costs.latency_s.shape
    values = {
        "energy": lambda: costs.energy_j,
        "latency": lambda: costs.latency_s,
        "accuracy": lambda: costs.accuracy,
        "error": lambda: 1.0 - costs.accuracy,
        "exit_rate": lambda: costs.exit_rate,
    }[name]()
    return np.broadcast_to(values, shape)


@dataclass(frozen=True)
class Constraint:
    """``metric <= bound`` or ``metric >= bound`` (bound in base units)."""

    metric: str
    op: str
    bound: float
    text: str

    def holds(self, costs: Truth) -> np.ndarray:
        values = metric(costs, self.metric)
        return values <= self.bound if self.op == "<=" else values >= self.bound


def parse_constraint(text: str) -> Constraint:
    """``accuracy>=0.88``, ``latency<=50 ms``, ``energy<=2 mJ``."""
    match = _CONSTRAINT.match(text)
    if match is None or match[1] not in METRICS:
        raise UserInputError(
            f"--constraint {text!r}: write METRIC<=VALUE or METRIC>=VALUE with METRIC one of "
            f"{', '.join(METRICS)}, e.g. 'accuracy>=0.88' or 'latency<=50 ms'"
        )
    name, op, value = match[1], match[2], match[3]
    dim = METRICS[name]
    try:
        bound = float(value) if dim is None else parse(value, dim)
    except ValueError as exc:
        raise UserInputError(f"--constraint {text!r}: {exc}") from None
    return Constraint(name, op, bound, text.strip())


@dataclass(frozen=True)
class Goal:
    """An objective to minimise under constraints."""

    objective: str
    constraints: tuple[Constraint, ...] = ()

    def cost(self, costs: Truth) -> np.ndarray:
        return metric(costs, self.objective)

    def feasible(self, costs: Truth) -> np.ndarray:
        ok = np.ones(costs.latency_s.shape, dtype=bool)
        for constraint in self.constraints:
            ok &= constraint.holds(costs)
        return ok

    def describe(self) -> str:
        bounds = " and ".join(c.text for c in self.constraints)
        return f"minimise {self.objective}" + (f" with {bounds}" if bounds else "")


def make_goal(objective: str, constraints: list[str]) -> Goal:
    if objective not in OBJECTIVES:
        raise UserInputError(
            f"--objective {objective!r}: unknown; give one of {', '.join(OBJECTIVES)} "
            "(objectives are minimised)"
        )
    return Goal(objective, tuple(parse_constraint(c) for c in constraints))


def require_feasible(goal: Goal, truth: Truth) -> np.ndarray:
    """The (devices, designs) feasibility mask; an error if some device has no design."""
    ok = goal.feasible(truth)
    stuck = ~ok.any(axis=1)
    if stuck.any():
        raise NoDesignMeetsError(
            f"no design meets {' and '.join(c.text for c in goal.constraints)} on "
            f"{int(stuck.sum())} of {stuck.size} devices (the first: device "
            f"{int(np.flatnonzero(stuck)[0])}); {_closest(goal, truth, stuck)}"
        )
    return ok


def _closest(goal: Goal, truth: Truth, stuck: np.ndarray) -> str:
    """What each constraint reaches at best on the stuck devices: the bound to loosen."""
    hints = []
    for c in goal.constraints:
        values = metric(truth, c.metric)[stuck]
        best = values.min(axis=1) if c.op == "<=" else values.max(axis=1)
        reach = best.max() if c.op == "<=" else best.min()
        dim = METRICS[c.metric]
        unit = f" {dim.base}" if dim is not None else ""
        hints.append(f"{c.metric} {c.op} {reach:.4g}{unit} is reachable on all of them")
    return "loosen the constraint: " + "; ".join(hints)

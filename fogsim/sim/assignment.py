"""Which design each device runs: a network's per-image outcomes under an exit policy.

A run usually gives every device one design, the scenario's checkpoint under its policy
(``Assignment.single``). A plan (``fogsim optimize``) gives each device its own
(``Assignment.per_device``). Either way the engine (``fogsim.sim.engine``) routes and
computes each design's requests on its own devices, then lets all of them meet in the
shared stages, where queueing and contention count across designs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fogsim.errors import UserInputError
from fogsim.inference import InferenceOutcomes
from fogsim.policies import AdaptiveExit, Policy
from fogsim.scenario.models import Scenario
from fogsim.sim.workload import Workload


@dataclass(frozen=True)
class RunDesign:
    """One design as a run needs it: a name, its network's outcomes, its policy."""

    name: str
    outcomes: InferenceOutcomes
    policy: Policy


@dataclass(frozen=True)
class Assignment:
    """The designs, and each device's (``of_device``; None: ``designs[0]`` on every device)."""

    designs: tuple[RunDesign, ...]
    of_device: np.ndarray | None = None  # (devices,) index into designs

    @classmethod
    def single(cls, outcomes: InferenceOutcomes, policy: Policy) -> Assignment:
        """Every device runs one network under one policy (the degenerate assignment)."""
        return cls((RunDesign("", outcomes, policy),))

    @classmethod
    def per_device(cls, designs: tuple[RunDesign, ...], of_device: np.ndarray) -> Assignment:
        """Device i runs ``designs[of_device[i]]``; the run records each request's design."""
        return cls(designs, np.asarray(of_device, dtype=np.int64))

    @property
    def planned(self) -> bool:
        """Whether devices run designs of their own (a plan), rather than one for all."""
        return self.of_device is not None

    @property
    def labels(self) -> np.ndarray:
        """The dataset's labels (every design reads the same dataset)."""
        return self.designs[0].outcomes.labels

    def shares(self, workload: Workload) -> list[tuple[int, np.ndarray]]:
        """Each design in use and its requests (indices into ``workload``, in order)."""
        if self.of_device is None:
            return [(0, np.arange(workload.size))]
        design_of = self.of_device[workload.device]
        return [(int(d), np.flatnonzero(design_of == d)) for d in np.unique(design_of)]


def not_with_a_plan(scenario: Scenario) -> list[str]:
    """What a scenario holds that a run of per-device designs does not model yet: each of
    these acts on the one network every device runs."""
    found = []
    if scenario.drift:
        found.append("drift:")
    if scenario.recovery is not None:
        found.append("recovery:")
    if isinstance(scenario.policy, AdaptiveExit):
        found.append("the adaptive_exit policy")
    if scenario.mobility is not None:
        found.append("mobility:")
    return found


def refuse_with_a_plan(scenario: Scenario) -> None:
    """A clear error where a plan meets what ``not_with_a_plan`` lists."""
    unplanned = not_with_a_plan(scenario)
    if unplanned:
        raise UserInputError(
            f"a plan (plan:) cannot run with {' or '.join(unplanned)} yet: a plan run "
            "simulates each device's design on steady devices; remove one or the other"
        )

"""The design space: the shipped checkpoints that fit a scenario's dataset, each with an exit
threshold on a grid, and what real inference says of each design. Three-part checkpoints
count only in a scenario with fog servers, where their middle part can run.

A design runs one checkpoint under the ``early_exit`` policy with the entropy rule and one
threshold shared by every exit. What it does on an image does not depend on the device, so
its accuracy, its exit rate and how often each request kind occurs are read once from the
inference outcomes (cached on disk), over every image of the dataset, uniformly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fogsim.data import load_dataset
from fogsim.errors import UserInputError
from fogsim.inference import InferenceOutcomes, run_inference
from fogsim.nn.checkpoint import dataset_mismatch, load_checkpoint
from fogsim.policies import EarlyExit, Tier
from fogsim.scenario.models import Scenario
from fogsim.sim.assignment import Assignment, RunDesign
from fogsim.sim.routes import Kinds

# Entropy thresholds (natural log): 0 never exits, 2.4 (above ln 10) always does.
THRESHOLDS = tuple(round(float(t), 2) for t in np.linspace(0.0, 2.4, 13))


@dataclass(frozen=True)
class Design:
    """One checkpoint at one exit threshold, with what real inference says of it."""

    name: str  # "<checkpoint stem>@<threshold>"
    checkpoint: Path
    threshold: float
    accuracy: float  # hybrid accuracy over the dataset's images
    exit_rate: float  # share of requests answered before the cloud
    kind_share: np.ndarray  # (kinds,) share of requests of each kind (fogsim.sim.routes)
    kind_bits: np.ndarray  # (kinds,) mean bits the device sends for a request of that kind
    model: int  # index of its checkpoint in DesignSpace.models


@dataclass(frozen=True)
class DesignSpace:
    """Every design, and the checkpoints' outcomes they read."""

    designs: tuple[Design, ...]
    models: tuple[InferenceOutcomes, ...]

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.designs]

    def index(self, name: str) -> int:
        return self.names.index(name)

    @property
    def accuracy(self) -> np.ndarray:
        return np.array([d.accuracy for d in self.designs])

    def assign(self, planned: np.ndarray) -> Assignment:
        """What a run needs of a plan: device i runs design ``planned[i]``."""
        designs = tuple(
            RunDesign(d.name, self.models[d.model], policy(d.threshold)) for d in self.designs
        )
        return Assignment.per_device(designs, planned)


def design_name(checkpoint: Path, threshold: float) -> str:
    return f"{checkpoint.stem}@{threshold:.2f}"


def shipped_checkpoints(scenario: Scenario) -> list[Path]:
    """The checkpoints beside the scenario's own (models/) that fit its dataset."""
    spec = scenario.dataset
    dataset = load_dataset(spec.name, path=spec.path, split=spec.split, progress=False)
    found = [
        path
        for path in sorted(scenario.model.checkpoint.parent.glob("*.pt"))
        if not dataset_mismatch(load_checkpoint(path), dataset)
    ]
    if not found:
        raise UserInputError(
            f"no checkpoint in {scenario.model.checkpoint.parent} fits {dataset.name}; "
            "the design space is the shipped checkpoints trained on the scenario's dataset"
        )
    return found


def design_names(scenario: Scenario, thresholds: tuple[float, ...] = THRESHOLDS) -> list[str]:
    """The names of ``design_space(scenario)``'s designs, read from the checkpoints alone,
    without inference (``fogsim validate`` checks a plan against them)."""
    names = []
    for path in shipped_checkpoints(scenario):
        if "fog" in load_checkpoint(path).build().tiers and not scenario.fog:
            continue  # as design_space: a three-part network needs a fog server
        names += [design_name(path, threshold) for threshold in thresholds]
    return names


def design_space(
    scenario: Scenario, thresholds: tuple[float, ...] = THRESHOLDS, *, progress: bool = False
) -> DesignSpace:
    """Every shipped checkpoint that fits the scenario's dataset, at every threshold."""
    spec = scenario.dataset
    dataset = load_dataset(spec.name, path=spec.path, split=spec.split, progress=progress)
    designs: list[Design] = []
    models: list[InferenceOutcomes] = []
    for path in shipped_checkpoints(scenario):
        outcomes = run_inference(path, dataset, progress=progress)
        if outcomes.fog_ops and not scenario.fog:
            continue  # a three-part network needs a fog server to run its middle part
        models.append(outcomes)
        for threshold in thresholds:
            designs.append(describe(path, outcomes, threshold, len(models) - 1))
    return DesignSpace(tuple(designs), tuple(models))


def describe(path: Path, outcomes: InferenceOutcomes, threshold: float, model: int) -> Design:
    """What a checkpoint does at ``threshold`` on every image of its outcomes."""
    images = np.arange(outcomes.n_images)
    decision = policy(threshold).route(outcomes, images)
    kinds = Kinds(outcomes)
    kind = kinds.of(decision)
    answered = np.where(
        decision.exit_index >= 0,
        outcomes.exit_pred[images, np.maximum(decision.exit_index, 0)],
        outcomes.cloud_pred,
    )
    share = np.bincount(kind, minlength=kinds.count) / len(kind)
    sent = np.array([kinds.tier(k) != Tier.DEVICE for k in range(kinds.count)])[kind]
    feature_bits = outcomes.compressed_feature_bytes.astype(np.float64) * 8.0 * sent
    bits = np.bincount(kind, weights=feature_bits, minlength=kinds.count)
    bits = np.divide(bits, share * len(kind), out=np.zeros(kinds.count), where=share > 0)
    return Design(
        name=design_name(path, threshold),
        checkpoint=path,
        threshold=threshold,
        accuracy=float(np.mean(answered == outcomes.labels)),
        exit_rate=float(np.mean(decision.exit_index >= 0)),
        kind_share=share,
        kind_bits=bits,
        model=model,
    )


def policy(threshold: float) -> EarlyExit:
    """The policy a design runs under."""
    return EarlyExit(threshold=threshold, rule="entropy")

"""Offloading policies: at which tier (device, fog, cloud) each request is answered.

A policy is a pydantic model (its scenario parameters, with ``name`` as the
registry key) with one method, ``route``. Its decision depends only on the
image's inference outcome, never on simulated time, so it is computed for all
requests at once before the event loop starts. The scenario's ``policy`` block
is resolved through the registry: a subclass with a new ``name`` is a new policy.
"""

from __future__ import annotations

import typing
from enum import IntEnum
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from fogsim import units
from fogsim.errors import UserInputError

if TYPE_CHECKING:
    from fogsim.inference import InferenceOutcomes

TIERS = ("device", "fog", "cloud")
# A time in a policy's parameters (fogsim.scenario's types import this module).
PositiveSeconds = Annotated[
    float,
    BeforeValidator(units.TIME.parse),
    Field(gt=0),
    PlainSerializer(units.TIME.format, return_type=str),
]


class Tier(IntEnum):
    """Where a request is answered."""

    DEVICE = 0
    FOG = 1
    CLOUD = 2


class Decision(BaseModel):
    """A policy's verdict for a batch of images: the answering tier, whether the raw image
    is sent (nothing runs on the device), and the exit that answers (-1: the final output)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    tier: np.ndarray  # int8 Tier per request
    raw: np.ndarray  # bool: the raw input leaves the device
    exit_index: np.ndarray  # int16: the exit head that answers, or -1 for the final output


def exit_tiers(outcomes: InferenceOutcomes) -> np.ndarray:
    """The tier (a Tier value) of each exit of the network."""
    return np.array([TIERS.index(name) for name in outcomes.exit_tiers], dtype=np.int8)


class Policy(BaseModel):
    """Base class: parameters from the scenario plus ``route``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    registry: ClassVar[dict[str, type[Policy]]] = {}

    def route(self, outcomes: InferenceOutcomes, image_ids: np.ndarray) -> Decision:
        raise NotImplementedError

    def raw_bytes(self, outcomes: InferenceOutcomes) -> int:
        """Bytes a request sends when its raw input leaves the device: the image's."""
        return outcomes.input_bytes

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: object) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        field = cls.model_fields.get("name")
        for name in typing.get_args(field.annotation) if field else ():
            Policy.registry[name] = cls


def _decision(tier: np.ndarray, raw: np.ndarray, exit_index: np.ndarray) -> Decision:
    return Decision(
        tier=tier.astype(np.int8), raw=raw.astype(bool), exit_index=exit_index.astype(np.int16)
    )


class EarlyExit(Policy):
    """Answer at the first exit whose confidence passes its threshold, at that exit's tier;
    else send the features on to the cloud."""

    name: Literal["early_exit"] = "early_exit"
    threshold: float | list[float] | None = Field(
        default=None,
        description="entropy below it, or max-probability above it, exits: one number for "
        "every exit or one per exit; default: the checkpoint's own thresholds",
    )
    rule: Literal["entropy", "maxprob"] | None = None

    def thresholds(self, outcomes: InferenceOutcomes) -> np.ndarray:
        """One threshold per exit."""
        n_exits = outcomes.exit_pred.shape[1]
        if self.threshold is None:
            return np.array(outcomes.default_thresholds, dtype=np.float64)
        if isinstance(self.threshold, list):
            if len(self.threshold) != n_exits:
                raise UserInputError(
                    f"policy.threshold: {len(self.threshold)} thresholds for a network with "
                    f"{n_exits} exits; give one number for all, or one per exit"
                )
            return np.array(self.threshold, dtype=np.float64)
        return np.full(n_exits, self.threshold, dtype=np.float64)

    def route(self, outcomes: InferenceOutcomes, image_ids: np.ndarray) -> Decision:
        rule = self.rule or outcomes.default_rule
        limits = self.thresholds(outcomes)
        if rule == "entropy":
            confident = outcomes.exit_entropy[image_ids] < limits
        else:
            confident = outcomes.exit_maxprob[image_ids] > limits
        exits = confident.any(axis=1)
        first = np.argmax(confident, axis=1)
        tier = np.where(exits, exit_tiers(outcomes)[first], Tier.CLOUD)
        return _decision(tier, np.zeros(len(image_ids), bool), np.where(exits, first, -1))


class AdaptiveExit(EarlyExit):
    """Early exit whose device exits loosen when answers come back late.

    Each device watches only what it can: the round-trip times of its own answers
    (smoothed) and how long its oldest unanswered request has waited. The later of the two,
    against ``target``, sets how far its device exits' thresholds move from ``threshold``
    towards ``degraded_threshold``: not at all at or below the target, fully at twice it.
    So a device keeps more answers to itself while the way to the fog or cloud is slow or
    broken, and goes back to the fixed thresholds once answers are fast again. Exits past
    the device keep their fixed thresholds. Decided per request when the device has run
    its part, during the simulation (``fogsim.sim.adaptive``).
    """

    name: Literal["adaptive_exit"] = "adaptive_exit"  # type: ignore[assignment]
    degraded_threshold: float = Field(
        description="the device exits' threshold when answers are late (entropy: higher "
        "than threshold, maxprob: lower; either way it lets more requests exit)"
    )
    target: PositiveSeconds = Field(
        description="the round trip a device is content with, e.g. 200 ms"
    )
    smoothing: float = Field(
        default=0.3, gt=0, le=1, description="weight of the newest round trip in the average"
    )
    window: PositiveSeconds = Field(
        default=5.0, description="a request unanswered for longer is given up on, not watched"
    )

    def level(self, late_s: float) -> float:
        """How far (0 to 1) the thresholds move, for answers ``late_s`` seconds in coming."""
        return min(1.0, max(0.0, late_s / self.target - 1.0))


class DeviceOnly(Policy):
    """Never offload: every request is answered by the device's last exit."""

    name: Literal["device_only", "edge_only"] = "device_only"  # edge_only: its older name

    def route(self, outcomes: InferenceOutcomes, image_ids: np.ndarray) -> Decision:
        on_device = np.flatnonzero(exit_tiers(outcomes) == Tier.DEVICE)
        if on_device.size == 0:
            raise UserInputError(f"policy {self.name}: the network has no exit on the device")
        n = len(image_ids)
        return _decision(np.full(n, Tier.DEVICE), np.zeros(n, bool), np.full(n, on_device[-1]))


class RawOffload(Policy):
    """Base of the policies that send the raw input away: what a request carries."""

    payload_bytes: int | None = Field(
        default=None,
        gt=0,
        description="bytes each request sends in place of the raw image (e.g. a peer "
        "simulator's message size); default: the dataset's image size",
    )

    def raw_bytes(self, outcomes: InferenceOutcomes) -> int:
        return outcomes.input_bytes if self.payload_bytes is None else self.payload_bytes


class FogOnly(RawOffload):
    """Send every raw image to the device's fog server, which runs the whole network."""

    name: Literal["fog_only"] = "fog_only"

    def route(self, outcomes: InferenceOutcomes, image_ids: np.ndarray) -> Decision:
        n = len(image_ids)
        return _decision(np.full(n, Tier.FOG), np.ones(n, bool), np.full(n, -1))


class CloudOnly(RawOffload):
    """Send every raw image to the cloud, which runs the whole network."""

    name: Literal["cloud_only"] = "cloud_only"

    def route(self, outcomes: InferenceOutcomes, image_ids: np.ndarray) -> Decision:
        n = len(image_ids)
        return _decision(np.full(n, Tier.CLOUD), np.ones(n, bool), np.full(n, -1))


def policy_spec() -> object:
    """The scenario's ``policy`` type: every registered policy, told apart by ``name``."""
    members = tuple(dict.fromkeys(Policy.registry.values()))
    return Annotated[typing.Union[members], Field(discriminator="name")]  # noqa: UP007


PolicySpec = policy_spec()

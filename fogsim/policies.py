"""Offloading policies: which requests exit at the edge and which go to the cloud.

A policy is a pydantic model (its scenario parameters, with ``name`` as the
registry key) with one method, ``route``. Its decision depends only on the
image's inference outcome, never on simulated time, so it is computed for all
requests at once before the event loop starts.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from fogsim.inference import InferenceOutcomes


class Route(IntEnum):
    """Where a request is answered, and what the device sends for it."""

    EDGE = 0  # answered by an edge exit; nothing is sent
    FEATURES = 1  # the edge part ran; its split features go to the cloud
    RAW = 2  # nothing runs at the edge; the raw image goes to the cloud


class Decision(BaseModel):
    """A policy's verdict for a batch of images: a route and, for EDGE, the exit used."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    route: np.ndarray  # int8 Route per request
    exit_index: np.ndarray  # int16: exit head that answered (EDGE), else the last head run, or -1


class Policy(BaseModel):
    """Base class: parameters from the scenario plus ``route``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    registry: ClassVar[dict[str, type[Policy]]] = {}

    def route(self, outcomes: InferenceOutcomes, image_ids: np.ndarray) -> Decision:
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.model_fields["name"].default if "name" in cls.model_fields else None
        if name:
            Policy.registry[name] = cls


class EarlyExit(Policy):
    """Exit at the first edge head whose confidence passes the threshold; else offload features."""

    name: Literal["early_exit"] = "early_exit"
    threshold: float | None = Field(
        default=None,
        description="entropy below it, or max-probability above it, exits; "
        "default: the checkpoint's own default threshold",
    )
    rule: Literal["entropy", "maxprob"] | None = None

    def route(self, outcomes: InferenceOutcomes, image_ids: np.ndarray) -> Decision:
        rule = self.rule or outcomes.default_rule
        threshold = outcomes.default_threshold if self.threshold is None else self.threshold
        if rule == "entropy":
            confident = outcomes.exit_entropy[image_ids] < threshold
        else:
            confident = outcomes.exit_maxprob[image_ids] > threshold
        exits = confident.any(axis=1)
        first = np.argmax(confident, axis=1)
        last_head = confident.shape[1] - 1
        return Decision(
            route=np.where(exits, Route.EDGE, Route.FEATURES).astype(np.int8),
            exit_index=np.where(exits, first, last_head).astype(np.int16),
        )


class EdgeOnly(Policy):
    """Never offload: every request is answered by the last edge exit."""

    name: Literal["edge_only"] = "edge_only"

    def route(self, outcomes: InferenceOutcomes, image_ids: np.ndarray) -> Decision:
        n = len(image_ids)
        last_head = outcomes.exit_pred.shape[1] - 1
        return Decision(
            route=np.full(n, Route.EDGE, dtype=np.int8),
            exit_index=np.full(n, last_head, dtype=np.int16),
        )


class CloudOnly(Policy):
    """Send every raw image to the cloud, which runs the whole network."""

    name: Literal["cloud_only"] = "cloud_only"

    def route(self, outcomes: InferenceOutcomes, image_ids: np.ndarray) -> Decision:
        n = len(image_ids)
        return Decision(
            route=np.full(n, Route.RAW, dtype=np.int8),
            exit_index=np.full(n, -1, dtype=np.int16),
        )


PolicySpec = Annotated[EarlyExit | EdgeOnly | CloudOnly, Field(discriminator="name")]

"""How a link or a server fails and recovers (MTBF and MTTR, exponential, or scripted
outages), what becomes of the work it was doing, and how a request whose work was lost
or whose answer is overdue tries again (``recovery``)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fogsim.scenario.quantities import PositiveSeconds, Seconds
from fogsim.sim.failures import Outages, exponential_outages, scripted_outages


class Failures(BaseModel):
    """``{mtbf: 10 min, mttr: 30 s}`` (exponential up and down periods) or
    ``{at: [[60 s, 90 s], ...]}`` (down from the first time until the second), and
    ``work``: what becomes of the work in progress when the element fails."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mtbf: PositiveSeconds | None = Field(default=None, description="mean time between failures")
    mttr: PositiveSeconds | None = Field(default=None, description="mean time to repair")
    at: list[tuple[Seconds, Seconds]] | None = Field(
        default=None, description="scripted outages: [down, up] pairs in time order"
    )
    work: Literal["resume", "restart", "lost"] = Field(
        default="resume",
        description="the work in progress at a failure: resume where it stopped once the "
        "element is up, restart from scratch then, or lost (its requests recover as "
        "the scenario's recovery says)",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Failures:
        random = self.mtbf is not None or self.mttr is not None
        if random == (self.at is not None):
            raise ValueError("give failures either mtbf and mttr, or at (scripted outages)")
        if random and (self.mtbf is None or self.mttr is None):
            raise ValueError("exponential failures need both mtbf and mttr")
        if self.at is not None:
            list(scripted_outages(self.at))  # refuses overlapping or backward outages
        return self

    def outages(self, rng: np.random.Generator) -> Outages:
        """The element's outage schedule; ``rng`` is the element's own named stream."""
        if self.at is not None:
            return scripted_outages(self.at)
        assert self.mtbf is not None and self.mttr is not None
        return exponential_outages(self.mtbf, self.mttr, rng)


class Recovery(BaseModel):
    """What a device does when an answer does not come: it gives each attempt ``timeout``
    from when the request reaches the shared network, waits ``backoff`` (times ``factor``
    after each retry) and sends again, at most ``retries`` times; then it answers with its
    own early exit (``then: fallback``) or gives the request up (``then: drop``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: PositiveSeconds = Field(description="how long an attempt may take")
    retries: int = Field(default=3, ge=0, le=100, description="attempts after the first")
    backoff: Seconds = Field(default=0.1, description="the wait before the first retry")
    factor: float = Field(
        default=2.0, ge=1.0, le=100.0, description="each wait is the previous one times this"
    )
    then: Literal["fallback", "drop"] = Field(
        default="drop",
        description="after the last attempt fails: fallback answers with the device's last "
        "exit where the device ran its part; drop (or no such exit) drops the request",
    )

    def wait_s(self, retry: int) -> float:
        """The back-off before retry number ``retry`` (0 for the first)."""
        return self.backoff * self.factor**retry

"""How a link or a server fails and recovers: MTBF and MTTR (exponential), or scripted
outages. A failed element pauses its work and resumes it when it is back up."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fogsim.scenario.quantities import PositiveSeconds, Seconds
from fogsim.sim.failures import Outages, exponential_outages, scripted_outages


class Failures(BaseModel):
    """``{mtbf: 10 min, mttr: 30 s}`` (exponential up and down periods) or
    ``{at: [[60 s, 90 s], ...]}`` (down from the first time until the second)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mtbf: PositiveSeconds | None = Field(default=None, description="mean time between failures")
    mttr: PositiveSeconds | None = Field(default=None, description="mean time to repair")
    at: list[tuple[Seconds, Seconds]] | None = Field(
        default=None, description="scripted outages: [down, up] pairs in time order"
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

"""The fast engine: the shared stages of a feed-forward run solved exactly without events.

SimPy (``fogsim.sim.shared``) stays the reference that defines the model; this
engine fills the same ``StageTimes`` bit for bit, one resource at a time, with
compiled loops (``links``, ``servers``) in topological order (``stages``), and
refuses what it cannot reproduce exactly (``support``). Only ``stages`` imports numba,
which takes a while: import it where there is something to solve.
"""

from fogsim.sim.fast.support import FastEngineUnsupported, NotExact, why_not_fast

__all__ = ["FastEngineUnsupported", "NotExact", "why_not_fast"]

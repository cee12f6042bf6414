"""Parameter sweeps: a grid of scenario overrides times seeds, run on Dask, resumable."""

from fogsim.sweeping.execute import sweep
from fogsim.sweeping.spec import Point, SweepSpec, load_sweep_file, spec_from_options
from fogsim.sweeping.store import SweepResult, load_sweep

__all__ = [
    "Point",
    "SweepResult",
    "SweepSpec",
    "load_sweep",
    "load_sweep_file",
    "spec_from_options",
    "sweep",
]

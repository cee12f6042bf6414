"""fogsim: a discrete-event simulator of fog computing for early-exit and split networks.

``fogsim.run`` and ``fogsim.sweep`` mirror the command line; they are imported on
first use so that ``import fogsim`` stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["load_run", "load_sweep", "run", "sweep"]

if TYPE_CHECKING:
    from fogsim.rundir import load_run
    from fogsim.runner import run
    from fogsim.sweeping import load_sweep, sweep

_LAZY = {
    "run": ("fogsim.runner", "run"),
    "load_run": ("fogsim.rundir", "load_run"),
    "sweep": ("fogsim.sweeping", "sweep"),
    "load_sweep": ("fogsim.sweeping", "load_sweep"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'fogsim' has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])

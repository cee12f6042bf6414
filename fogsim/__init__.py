"""fogsim: a discrete-event simulator of fog computing for early-exit and split networks."""

__version__ = "0.1.0"

"""The device's compute time: a roofline over the part a request runs on the device.

A part's time is the larger of its compute time (its MACs at each precision over
the device's throughput at that precision) and its memory time (the bytes it moves,
weights and activations at their bitwidths, over the device's memory bandwidth),
plus a fixed overhead per conv/linear layer. The roofline is taken once over the
whole part a request runs (the device part up to its exit), not layer by layer:
``InferenceOutcomes`` holds per-part byte and layer counts, not per-layer ones.
A profile without ``memory_bandwidth`` and ``layer_overhead`` is compute-bound
with no overhead: MACs over throughput, as before.

Energy follows the same split: with ``compute_energy: active_power`` the device
draws active_power over the whole roofline time (memory-bound or not, overhead
included); with ``per_op`` it is the MACs' energy alone, as before.
"""

from __future__ import annotations

import numpy as np


def roofline_seconds(
    compute_s: np.ndarray,
    bytes_moved: np.ndarray | float,
    layers: np.ndarray | float,
    memory_bps: np.ndarray | float | None,
    layer_overhead_s: np.ndarray | float,
) -> np.ndarray:
    """max(compute time, bytes x 8 / memory bandwidth in bit/s) + layers x overhead.

    Elementwise over numpy arrays (e.g. devices x request kinds); a part with no
    compute (nothing run on the device) takes no time, overhead included.
    """
    compute_s = np.asarray(compute_s, dtype=np.float64)
    memory_s = 0.0 if memory_bps is None else np.asarray(bytes_moved) * 8.0 / memory_bps
    busy = np.maximum(compute_s, memory_s)
    runs = np.asarray(layers) > 0
    return np.where(runs | (compute_s > 0), busy + np.asarray(layers) * layer_overhead_s, 0.0)

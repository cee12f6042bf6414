"""Rank agreement and regret: how far one ranking of the designs is from each device's own."""

from __future__ import annotations

import numpy as np


def kendall_tau(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between ``reference`` (designs,) and each row of ``values``
    (devices, designs); ties count as in tau-b, and a row with no order at all gives 0."""
    i, j = np.triu_indices(reference.size, k=1)
    ref = np.sign(reference[j] - reference[i])
    out = np.empty(values.shape[0])
    # Pairs in chunks of devices: the sign matrix is devices x pairs.
    for start in range(0, values.shape[0], 1024):
        own = np.sign(values[start : start + 1024, j] - values[start : start + 1024, i])
        concordance = (own * ref).sum(axis=1)
        tied_ref, tied_own = (ref == 0).sum(), (own == 0).sum(axis=1)
        pairs = ref.size
        denominator = np.sqrt((pairs - tied_ref) * (pairs - tied_own).astype(np.float64))
        out[start : start + 1024] = np.divide(
            concordance, denominator, out=np.zeros(own.shape[0]), where=denominator > 0
        )
    return out


def regret(cost: np.ndarray, chosen: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Relative excess of each device's chosen design over its optimum, (chosen - best) / best."""
    rows = np.arange(cost.shape[0])
    optimum = cost[rows, best]
    return (cost[rows, chosen] - optimum) / np.where(optimum > 0, optimum, 1.0)

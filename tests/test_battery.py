"""Batteries: spent in order, the request that empties one keeps what was left."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fogsim.sim.battery import drain, spent_before


def test_the_request_that_empties_the_battery_keeps_what_was_left() -> None:
    """Hand-computed: 1.7 J per request from a 3 J battery; the second request finds
    1.3 J left, which covers its 1 J of idle time and 0.3 J of its compute."""
    device = np.array([0, 0, 0, 1])
    idle = np.array([1.0, 1.0, 1.0, 1.0])
    compute = np.array([0.5, 0.5, 0.5, 0.5])
    radio = np.array([0.2, 0.2, 0.2, 0.2])
    empty = drain(np.array([3.0, 3.0, 3.0, np.inf]), device, [idle, compute, radio])
    assert empty.tolist() == [False, True, True, False]
    np.testing.assert_allclose(idle, [1.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(compute, [0.5, 0.3, 0.0, 0.5])
    np.testing.assert_allclose(radio, [0.2, 0.0, 0.0, 0.2])


def test_spent_before_restarts_at_each_device() -> None:
    spent = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    np.testing.assert_allclose(spent_before(spent, np.array([0, 0, 0, 1, 1])), [0, 1, 3, 0, 8])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.floats(0, 2), st.floats(0, 2)), max_size=40),
    st.floats(0.1, 10),
)
def test_an_emptied_battery_is_spent_exactly(rows: list, capacity: float) -> None:
    rows.sort(key=lambda row: row[0])
    device = np.array([r[0] for r in rows], dtype=np.int64)
    parts = [np.array([r[1] for r in rows]), np.array([r[2] for r in rows])]
    original = sum(p.copy() for p in parts)
    empty = drain(np.full(device.size, capacity), device, parts)
    for dev in np.unique(device):
        mine = device == dev
        total = sum(p[mine].sum() for p in parts)
        if empty[mine].any():
            assert total == pytest.approx(capacity, rel=1e-9)
            first = np.flatnonzero(mine & empty)[0]
            assert empty[mine][np.flatnonzero(mine) >= first].all(), "empty stays empty"
        else:
            assert total == pytest.approx(original[mine].sum()) and total <= capacity + 1e-9

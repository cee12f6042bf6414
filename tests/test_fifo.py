"""Vectorised FIFO queues: exact Lindley recursion per server, bounded variant with drops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fogsim.sim.fifo import solve_fifo


def reference(server, arrival, service, capacity=None):
    """One request at a time: the textbook recursion, with a list of who is still there."""
    start = np.full(len(arrival), np.nan)
    end = np.full(len(arrival), np.nan)
    dropped = np.zeros(len(arrival), dtype=bool)
    free_at: dict[int, float] = {}
    present: dict[int, list[float]] = {}
    for i, (k, a, s) in enumerate(zip(server, arrival, service, strict=True)):
        still = [e for e in present.get(k, []) if e > a]
        if capacity is not None and len(still) >= capacity:
            dropped[i] = True
            present[k] = still
            continue
        start[i] = max(a, free_at.get(k, -np.inf))
        end[i] = start[i] + s
        free_at[k] = end[i]
        present[k] = [*still, end[i]]
    return start, end, dropped


@st.composite
def queues(draw, max_servers=4, max_size=30):
    n = draw(st.integers(1, max_size))
    server = np.sort(draw(st.lists(st.integers(0, max_servers), min_size=n, max_size=n)))
    arrival = np.array(draw(st.lists(st.floats(0, 20), min_size=n, max_size=n)))
    service = np.array(draw(st.lists(st.floats(0, 3), min_size=n, max_size=n)))
    order = np.lexsort((arrival, server))
    return server[order], arrival[order], service[order]


def test_hand_worked_example():
    result = solve_fifo(
        np.array([0, 0, 0, 3, 3]), np.array([0.0, 0.5, 4.0, 0.0, 3.0]), np.ones(5) * 2.0
    )
    np.testing.assert_array_equal(result.start_s, [0.0, 2.0, 4.0, 0.0, 3.0])
    np.testing.assert_array_equal(result.end_s, [2.0, 4.0, 6.0, 2.0, 5.0])
    assert not result.dropped.any()


def test_capacity_drops_arrivals_that_find_the_server_full():
    result = solve_fifo(np.zeros(4, int), np.array([0.0, 0.1, 0.2, 1.0]), np.ones(4), capacity=2)
    np.testing.assert_array_equal(result.dropped, [False, False, True, False])
    np.testing.assert_array_equal(result.end_s[[0, 1, 3]], [1.0, 2.0, 3.0])
    assert np.isnan(result.start_s[2]) and np.isnan(result.end_s[2])


def test_a_departure_at_the_arrival_instant_frees_its_place():
    result = solve_fifo(np.zeros(2, int), np.array([0.0, 1.0]), np.ones(2), capacity=1)
    assert not result.dropped.any()


def test_empty_input():
    result = solve_fifo(np.zeros(0, int), np.zeros(0), np.zeros(0), capacity=3)
    assert result.end_s.size == 0 and result.dropped.size == 0


@pytest.mark.parametrize(
    ("server", "arrival", "service", "capacity", "message"),
    [
        ([1, 0], [0.0, 0.0], [1.0, 1.0], None, "grouped by server"),
        ([0, 0], [1.0, 0.0], [1.0, 1.0], None, "sorted by time"),
        ([0, 0], [0.0, 1.0], [-1.0, 1.0], None, "non-negative"),
        ([0, 0], [0.0, np.nan], [1.0, 1.0], None, "finite"),
        ([0], [0.0, 1.0], [1.0], None, "one length"),
        ([0], [0.0], [1.0], 0, "capacity"),
    ],
)
def test_bad_input_is_rejected(server, arrival, service, capacity, message):
    with pytest.raises(ValueError, match=message):
        solve_fifo(np.array(server), np.array(arrival), np.array(service), capacity=capacity)


@settings(max_examples=200, deadline=None)
@given(queues())
def test_matches_the_request_by_request_recursion(data):
    start, end, dropped = reference(*data)
    result = solve_fifo(*data)
    np.testing.assert_allclose(result.start_s, start, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(result.end_s, end, rtol=1e-12, atol=1e-9)
    assert not result.dropped.any()


@settings(max_examples=200, deadline=None)
@given(queues(), st.integers(1, 4))
def test_bounded_queue_never_holds_more_than_capacity(data, capacity):
    server, arrival, service = data
    result = solve_fifo(server, arrival, service, capacity=capacity)
    start, end, dropped = reference(server, arrival, service, capacity)
    np.testing.assert_array_equal(result.dropped, dropped)
    np.testing.assert_allclose(result.end_s, end, rtol=1e-12, atol=1e-9)
    kept = ~result.dropped
    for k in np.unique(server):
        mine = kept & (server == k)
        for a in arrival[mine]:
            in_system = np.sum((arrival[mine] <= a) & (result.end_s[mine] > a))
            assert in_system <= capacity


def test_large_capacity_equals_the_unbounded_queue():
    rng = np.random.default_rng(3)
    server = np.repeat(np.arange(50), 200)
    arrival = np.sort(rng.random((50, 200)) * 100, axis=1).ravel()
    service = rng.exponential(0.4, server.size)
    bounded = solve_fifo(server, arrival, service, capacity=10_000)
    unbounded = solve_fifo(server, arrival, service)
    np.testing.assert_array_equal(bounded.end_s, unbounded.end_s)
    assert not bounded.dropped.any()

"""Link: exact processor sharing and FIFO serialization, propagation delay, counters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from fogsim.sim.fifo import solve_fifo
from fogsim.sim.link import Link


@pytest.fixture
def env() -> simpy.Environment:
    return simpy.Environment()


def run_transfers(
    link: Link, arrivals: list[float], sizes: list[float], on_finish=None
) -> np.ndarray:
    """Send ``sizes[i]`` at ``arrivals[i]``; return when each last bit arrived."""
    env = link.env
    finished = np.full(len(sizes), np.nan)

    def finish(i: int):
        def record(_event: simpy.Event) -> None:
            finished[i] = env.now
            if on_finish is not None:
                on_finish()

        return record

    def start(i: int):
        return lambda _event: link.transmit(sizes[i]).callbacks.append(finish(i))

    for i, t in enumerate(arrivals):
        env.timeout(t).callbacks.append(start(i))
    env.run()
    return finished


def brute_force_ps(arrivals: list[float], sizes: list[float], capacity: float) -> np.ndarray:
    """Processor sharing stepped from event to event with remaining sizes: slow, obvious."""
    remaining = {}
    finished = np.full(len(sizes), np.nan)
    order = sorted(range(len(arrivals)), key=lambda i: arrivals[i])
    t, nxt = 0.0, 0
    while nxt < len(order) or remaining:
        next_arrival = arrivals[order[nxt]] if nxt < len(order) else math.inf
        rate = capacity / len(remaining) if remaining else 0.0
        next_finish = t + min(remaining.values()) / rate if remaining else math.inf
        step_to = min(next_arrival, next_finish)
        for i in remaining:
            remaining[i] -= (step_to - t) * rate
        t = step_to
        for i in [i for i, left in remaining.items() if left <= 1e-9 * sizes[i]]:
            finished[i] = t
            del remaining[i]
        if next_arrival <= next_finish:
            remaining[order[nxt]] = sizes[order[nxt]]
            nxt += 1
    return finished


def test_single_transfer_takes_serialization_plus_delay(env):
    link = Link(env, "uplink", bandwidth_bps=1e6, delay_s=0.02)
    finished = run_transfers(link, [1.0], [5e5])
    assert finished[0] == pytest.approx(1.0 + 0.5 + 0.02)
    assert link.bits_carried == 5e5 and link.transfers_done == 1
    assert link.busy_time_s == pytest.approx(0.5)


def test_delivery_value_is_serialization_end(env):
    link = Link(env, "uplink", bandwidth_bps=100.0, delay_s=3.0)
    event = link.transmit(200.0)
    env.run()
    assert event.value == pytest.approx(2.0) and env.now == pytest.approx(5.0)


def test_delivery_says_when_the_sender_began(env):
    """FIFO: the second transfer waits for the first (10 bits at 10 bit/s) before it
    begins; processor sharing: both begin on arrival."""
    fifo = Link(env, "f", bandwidth_bps=10.0, delay_s=0.5, discipline="fifo")
    ps = Link(env, "p", bandwidth_bps=10.0, delay_s=0.5)
    sent = [link.transmit(10.0) for link in (fifo, fifo, ps, ps)]
    env.run()
    assert [d.started_s for d in sent] == [0.0, 1.0, 0.0, 0.0]
    assert [d.value for d in sent] == pytest.approx([1.0, 2.0, 2.0, 2.0])


def test_zero_size_transfer_takes_only_the_propagation_delay(env):
    link = Link(env, "l", bandwidth_bps=10.0, delay_s=0.25)
    finished = run_transfers(link, [0.0, 0.0], [100.0, 0.0])
    assert finished[1] == pytest.approx(0.25)
    assert finished[0] == pytest.approx(10.25)  # not slowed by the empty transfer
    assert link.transfers_done == 2 and link.peak_concurrency == 1


def test_ps_shares_equally_and_a_late_small_transfer_overtakes(env):
    link = Link(env, "l", bandwidth_bps=10.0, delay_s=0.5)
    finished = run_transfers(link, [0.0, 0.0, 1.0], [10.0, 20.0, 5.0])
    # 0-1 s: two flows at 5 bit/s; then three at 10/3 bit/s until 10 and 5 finish.
    np.testing.assert_allclose(finished, [3.0, 4.0, 3.0])
    assert link.peak_concurrency == 3
    assert link.busy_time_s == pytest.approx(3.5)
    assert link.bits_carried == pytest.approx(35.0)


def test_fifo_sends_one_at_a_time_in_arrival_order(env):
    link = Link(env, "l", bandwidth_bps=10.0, delay_s=0.5, discipline="fifo")
    finished = run_transfers(link, [0.0, 0.0, 1.0], [10.0, 20.0, 5.0])
    np.testing.assert_allclose(finished, [1.5, 3.5, 4.0])
    assert link.peak_concurrency == 2


def test_counters_count_only_finished_serialization(env):
    link = Link(env, "l", bandwidth_bps=10.0, delay_s=0.0, discipline="fifo")
    link.transmit(10.0)
    link.transmit(10.0)
    env.run(until=1.5)
    assert link.transfers_done == 1 and link.bits_carried == 10.0 and link.active == 1
    assert link.busy_time_s == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bandwidth_bps": 0.0}, "bandwidth"),
        ({"bandwidth_bps": math.inf}, "bandwidth"),
        ({"delay_s": -1.0}, "delay"),
        ({"delay_s": math.nan}, "delay"),
        ({"discipline": "lifo"}, "discipline"),
    ],
)
def test_bad_parameters_are_rejected(env, kwargs, message):
    params = {"bandwidth_bps": 1.0, "delay_s": 0.0} | kwargs
    with pytest.raises(ValueError, match=message):
        Link(env, "l", **params)


@pytest.mark.parametrize("bits", [-1.0, math.nan, math.inf])
def test_bad_transfer_sizes_are_rejected(env, bits):
    with pytest.raises(ValueError, match="transfer size"):
        Link(env, "l", 1.0, 0.0).transmit(bits)


transfers = st.lists(
    st.tuples(
        st.floats(0.0, 10.0, allow_nan=False),
        st.floats(1e-3, 50.0, allow_nan=False),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(transfers, st.floats(0.5, 20.0))
def test_ps_matches_brute_force_and_conserves_bits(pairs, capacity):
    arrivals = [a for a, _ in pairs]
    sizes = [b for _, b in pairs]
    env = simpy.Environment()
    link = Link(env, "l", capacity, delay_s=0.0)
    capacity_respected = []

    def check_capacity() -> None:
        capacity_respected.append(
            link.bits_carried <= capacity * link.busy_time_s * (1 + 1e-9) + 1e-9
        )

    finished = run_transfers(link, arrivals, sizes, on_finish=check_capacity)
    assert not np.isnan(finished).any(), "every transfer finishes"
    np.testing.assert_allclose(finished, brute_force_ps(arrivals, sizes, capacity), rtol=1e-9)
    assert all(capacity_respected)
    # Conservation and work conservation: all bits carried, at full rate while busy.
    assert link.bits_carried == pytest.approx(sum(sizes), rel=1e-12)
    assert link.busy_time_s * capacity == pytest.approx(sum(sizes), rel=1e-9)
    assert link.transfers_done == len(sizes) and link.active == 0


@settings(max_examples=100, deadline=None)
@given(transfers, st.floats(0.5, 20.0), st.floats(0.0, 2.0))
def test_fifo_matches_the_lindley_recursion(pairs, capacity, delay):
    pairs = sorted(pairs)
    arrivals = [a for a, _ in pairs]
    sizes = [b for _, b in pairs]
    link = Link(simpy.Environment(), "l", capacity, delay_s=delay, discipline="fifo")
    finished = run_transfers(link, arrivals, sizes)
    expected = solve_fifo(
        np.zeros(len(sizes), dtype=int), np.array(arrivals), np.array(sizes) / capacity
    ).end_s
    np.testing.assert_allclose(finished, expected + delay, rtol=1e-12, atol=1e-12)
    assert link.busy_time_s * capacity == pytest.approx(sum(sizes), rel=1e-9)

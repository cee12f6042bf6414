"""The fast engine's compiled loops against the SimPy resources they stand in for:
same arrivals in, bit-identical times and counters out (``fogsim.sim.fast``)."""

from __future__ import annotations

import math

import numpy as np
import simpy
from hypothesis import event, given, settings
from hypothesis import strategies as st

from fogsim.sim.fast.links import solve_link
from fogsim.sim.fast.servers import fsum, solve_server
from fogsim.sim.fast.tables import index_dtype, route_outputs, stage_dtype
from fogsim.sim.link import Link
from fogsim.sim.server import Server

UNTIL = 50.0
# Arrival instants on a coarse grid now and then, so that ties and simultaneous groups occur.
instants = st.one_of(
    st.floats(0.0, 10.0, allow_nan=False, allow_subnormal=False),
    st.integers(0, 40).map(lambda k: k * 0.25),
)


def _feed(env: simpy.Environment, arrive: list[float], act) -> None:
    def feeder():
        for i, at in enumerate(arrive):
            if at > env.now:
                yield env.timeout(at - env.now)
            act(i)

    env.process(feeder())


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b, equal_nan=True)


def _feeder_clock(arrive: list[float]) -> np.ndarray:
    """The instants the feeder above really acts at: its clock moves by ``at - now``."""
    out, now = [], 0.0
    for at in arrive:
        if at > now:
            now = now + (at - now)
        out.append(now)
    return np.array(out)


@settings(max_examples=300, deadline=None)
@given(
    arrive=st.lists(instants, min_size=1, max_size=40).map(sorted),
    sizes=st.lists(st.sampled_from([0.0, 1e3, 8e3, 12_345.0, 1e5]), min_size=40, max_size=40),
    bandwidth=st.sampled_from([1e6, 3e6, 1e7, 2.5e7]),
    delay=st.sampled_from([0.0, 0.003, 0.02]),
    sharing=st.sampled_from(["ps", "fifo"]),
    until=st.sampled_from([UNTIL, 2.0]),
)
def test_link_loop_matches_the_simpy_link(arrive, sizes, bandwidth, delay, sharing, until):
    env = simpy.Environment()
    link = Link(env, "l", bandwidth, delay, sharing)
    n = len(arrive)
    got = {name: np.full(n, np.nan) for name in ("start", "sent", "delivered")}
    order: list[int] = []

    def send(i: int) -> None:
        def done(event) -> None:
            got["start"][i], got["sent"][i], got["delivered"][i] = (
                event.started_s,
                event.value,
                env.now,
            )
            order.append(i)

        link.transmit(sizes[i]).callbacks.append(done)

    _feed(env, arrive, send)
    env.run(until=until)
    at = _feeder_clock(arrive)
    keep = at < until
    solved = solve_link(at[keep], np.array(sizes[:n])[keep], bandwidth, delay, sharing, until)
    event("refused" if solved is None else "solved")
    if solved is None:  # a tie the loop cannot order: refused, never guessed
        return
    arrived = solved.delivered_s < until
    assert _same(np.where(arrived, solved.start_s, np.nan), got["start"][keep])
    assert _same(np.where(arrived, solved.sent_s, np.nan), got["sent"][keep])
    assert _same(np.where(arrived, solved.delivered_s, np.nan), got["delivered"][keep])
    # ``order`` is the order deliveries were scheduled: SimPy processes them by time, then so.
    scheduled = [int(i) for i in solved.order if arrived[i]]
    assert sorted(scheduled, key=lambda i: solved.delivered_s[i]) == order
    assert solved.bits_carried == link.bits_carried
    assert solved.transfers == link.transfers_done
    assert solved.busy_s == link.busy_time_s
    assert solved.peak_concurrency == link.peak_concurrency


@settings(max_examples=300, deadline=None)
@given(
    arrive=st.lists(instants, min_size=1, max_size=40).map(sorted),
    works=st.lists(st.sampled_from([0.0, 0.001, 0.0013, 0.004, 0.1 / 3]), min_size=40, max_size=40),
    workers=st.integers(1, 3),
    max_batch=st.integers(1, 5),
    max_wait=st.sampled_from([0.0, 0.002, 0.05]),
    capacity=st.sampled_from([None, 0, 1, 3]),
    overhead=st.sampled_from([0.0, 0.002, 0.01]),
    until=st.sampled_from([UNTIL, 2.0]),
)
def test_server_loop_matches_the_simpy_server(
    arrive, works, workers, max_batch, max_wait, capacity, overhead, until
):
    env = simpy.Environment()
    server = Server(env, "s", workers, lambda _size: overhead, max_batch, max_wait, capacity)
    n = len(arrive)
    got = {name: np.full(n, np.nan) for name in ("start", "end", "share")}
    size = np.zeros(n, np.int32)
    dropped = np.zeros(n, bool)
    order: list[int] = []

    def submit(i: int) -> None:
        def done(event) -> None:
            outcome = event.value
            if outcome.dropped is not None:
                dropped[i] = True
                return
            got["start"][i], got["end"][i], got["share"][i] = (
                outcome.start_s,
                outcome.end_s,
                outcome.share,
            )
            size[i] = outcome.batch_size
            order.append(i)

        server.submit(i, works[i]).callbacks.append(done)

    _feed(env, arrive, submit)
    env.run(until=until)
    at = _feeder_clock(arrive)
    keep = at < until
    solved = solve_server(
        at[keep],
        np.array(works[:n])[keep],
        workers=workers,
        max_batch=max_batch,
        max_wait_s=max_wait,
        queue_capacity=capacity,
        overhead_s=overhead,
        until_s=until,
    )
    event("refused" if solved is None else "solved")
    if solved is None:
        return
    assert _same(solved.start_s, got["start"][keep])
    assert _same(solved.end_s, got["end"][keep])
    assert _same(np.where(size[keep] > 0, solved.share, np.nan), got["share"][keep])
    assert (solved.batch_size == size[keep]).all()
    assert (solved.dropped == dropped[keep]).all()
    assert solved.order.tolist() == order
    counters = solved.counters
    assert (counters.submitted, counters.completed, counters.dropped, counters.peak_queue) == (
        server.submitted,
        server.completed,
        server.dropped,
        server.peak_queue,
    )
    assert counters.busy_time_s == server.busy_time_s


def test_simultaneous_arrival_and_wake_up_is_refused_not_guessed() -> None:
    # 1,000 bits at 1 Mbit/s end at 1 ms, exactly when the second transfer arrives.
    solved = solve_link(np.array([0.0, 0.001]), np.array([1e3, 1e3]), 1e6, 0.0, "ps", 1.0)
    assert solved is None


@given(st.lists(st.floats(-1e12, 1e12, allow_nan=False, allow_subnormal=False), max_size=30))
def test_fsum_is_math_fsum(values: list[float]) -> None:
    assert fsum(np.array(values, dtype=np.float64)) == math.fsum(values)


def test_fsum_rounds_half_even_like_math_fsum() -> None:
    values = [1.0, 1e-16, 1e-16, 1e100, -1e100, 2.0**-53, 2.0**-106]
    assert fsum(np.array(values)) == math.fsum(values)


def test_indices_are_narrowed_only_where_exact() -> None:
    assert index_dtype(2**31 - 1) is np.int32
    assert index_dtype(2**31) is np.int64
    assert stage_dtype(127) is np.int8
    assert stage_dtype(128) is np.int16
    assert stage_dtype(2**40) is np.int64


def test_route_outputs_are_the_same_for_narrow_and_wide_indices() -> None:
    # Two plans over three resources: plan 0 goes 0 -> 2 (a timer of 1 s before 2), plan 1
    # goes 1 -> done; rows leave a resource in a shuffled order.
    rng = np.random.default_rng(7)
    plan = rng.integers(0, 2, 50).astype(np.int16)
    resource = np.array([[0, 2, -1], [1, -1, -1]], np.int64)
    before = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    back_fixed = np.array([0.5, 0.25])
    rows64 = rng.permutation(50)
    done = np.sort(rng.uniform(0, 10, 50))
    outs = []
    for rows, stage in (
        (rows64, np.ones(50, np.int64)),
        (rows64.astype(np.int32), np.ones(50, np.int8)),
    ):
        answer = np.full(50, np.nan)
        out = route_outputs(
            rows, done, plan, stage, resource, before, back_fixed, answer, 9.0, 0, 3
        )
        assert out[4].dtype == rows.dtype
        _, at, source, offsets, order = out  # at and source are set where routed (order)
        outs.append((at[order], source[order], offsets, order, answer))
    for wide, narrow in zip(*outs, strict=True):
        np.testing.assert_array_equal(wide, narrow)

"""Links and servers that fail and recover: outage schedules, preemptive resume, and the
M/M/1 queue with server breakdowns."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from fogsim.sim.failures import (
    Availability,
    exponential_outages,
    scripted_outages,
    with_outages,
)
from fogsim.sim.link import Link
from fogsim.sim.ratefn import RateFunction
from fogsim.sim.server import Server


def _down_link(env: simpy.Environment, discipline: str, periods) -> Link:
    rate = RateFunction(with_outages(iter([(0.0, 1000.0)]), scripted_outages(periods)))
    return Link(env, "l", 1000.0, 0.0, discipline, rate)  # type: ignore[arg-type]


def test_outages_set_the_rate_to_zero_and_back_to_the_base_rate() -> None:
    base = iter([(0.0, 5.0), (10.0, 7.0), (20.0, 3.0)])
    periods = [(0, 1), (5, 12), (12, 13), (20, 21)]
    assert list(with_outages(base, scripted_outages(periods))) == [
        (0.0, 0.0), (1.0, 5.0), (5.0, 0.0), (13.0, 7.0), (20.0, 0.0), (21.0, 3.0),
    ]


@pytest.mark.parametrize("periods", [[(2, 1)], [(1, 3), (2, 4)], [(-1, 1)]])
def test_a_bad_script_is_refused(periods) -> None:
    with pytest.raises(ValueError, match="outage"):
        list(scripted_outages(periods))


@pytest.mark.parametrize("discipline", ["ps", "fifo"])
def test_a_transfer_pauses_during_a_link_outage_and_resumes(discipline: str) -> None:
    # 2000 bits at 1000 bit/s with the link down from 1 s to 3 s: 1 s + 2 s down + 1 s.
    env = simpy.Environment()
    link = _down_link(env, discipline, [(1.0, 3.0)])
    done = link.transmit(2000)
    env.run()
    assert done.value == pytest.approx(4.0)


def test_shared_transfers_both_pause_on_a_processor_sharing_link() -> None:
    # Two 1000-bit transfers share 1000 bit/s: 500 bits each by 1 s, down until 3 s, 1 s more.
    env = simpy.Environment()
    link = _down_link(env, "ps", [(1.0, 3.0)])
    first, second = link.transmit(1000), link.transmit(1000)
    env.run()
    assert first.value == pytest.approx(4.0) and second.value == pytest.approx(4.0)


def _run_server(workers: int, periods_of, arrivals, work_s: float = 2.0, max_batch: int = 1):
    env = simpy.Environment()
    server = Server(
        env, "s", workers, lambda _n: 0.0, max_batch=max_batch,
        outages=lambda w: scripted_outages(periods_of(w)),
    )
    events = []

    def feed():
        for at in arrivals:
            yield env.timeout(at - env.now)
            events.append(server.submit(len(events), work_s))

    env.process(feed())
    env.run(until=10_000)
    return server, [e.value for e in events]


def test_a_batch_pauses_while_its_worker_is_down() -> None:
    # 2 s of work from 0, down from 1 s to 2.5 s: it ends at 3.5 s; the next starts then.
    _, (first, second) = _run_server(1, lambda _w: [(1.0, 2.5)], [0.0, 1.5])
    assert (first.start_s, first.end_s) == (0.0, pytest.approx(3.5))
    assert (second.start_s, second.end_s) == (pytest.approx(3.5), pytest.approx(5.5))


def test_a_down_worker_takes_no_batch() -> None:
    # Worker 0 is down until 1.5 s: the first item goes to worker 1, the second waits for
    # whichever is free and up first (worker 0 at 1.5 s, before worker 1 is done at 2 s).
    _, (first, second) = _run_server(2, lambda w: [(0.0, 1.5)] if w == 0 else [], [0.0, 0.5])
    assert (first.worker, first.start_s) == (1, 0.0)
    assert (second.worker, second.start_s, second.end_s) == (0, 1.5, 3.5)


def _breakdown_mm1_sojourn(lam: float, mu: float, fail: float, repair: float) -> float:
    """Mean sojourn time of an M/M/1 queue whose server fails at rate ``fail`` (busy or
    idle) and is repaired at rate ``repair``, preemptive resume: from the stationary law
    of its Markov chain (customers, up/down), truncated far out, and Little's law."""
    n = 600
    size = 2 * n
    q = np.zeros((size, size))

    def at(k: int, up: int) -> int:
        return 2 * k + up

    for k in range(n):
        for up in (0, 1):
            i = at(k, up)
            if k + 1 < n:
                q[i, at(k + 1, up)] += lam
            if up and k > 0:
                q[i, at(k - 1, up)] += mu
            q[i, at(k, 1 - up)] += fail if up else repair
    np.fill_diagonal(q, -q.sum(axis=1))
    a = np.vstack([q.T, np.ones(size)])
    b = np.zeros(size + 1)
    b[-1] = 1.0
    p = np.linalg.lstsq(a, b, rcond=None)[0]
    customers = sum(k * (p[at(k, 0)] + p[at(k, 1)]) for k in range(n))
    return customers / lam


def test_mm1_with_breakdowns_matches_the_markov_chain_within_3_percent() -> None:
    lam, mu, mtbf_s, mttr_s = 0.5, 1.0, 20.0, 2.0
    expected = _breakdown_mm1_sojourn(lam, mu, 1 / mtbf_s, 1 / mttr_s)
    env = simpy.Environment()
    rng = np.random.default_rng(17)
    server = Server(
        env, "mm1", 1, lambda _n: 0.0,
        outages=lambda _w: exponential_outages(mtbf_s, mttr_s, np.random.default_rng(3)),
    )
    events = []
    customers = 200_000

    def feed():
        for _ in range(customers):
            yield env.timeout(rng.exponential(1 / lam))
            events.append(server.submit(None, rng.exponential(1 / mu)))

    env.run(until=env.process(feed()))
    env.run(until=events[-1])  # FIFO: the last one in is the last one out
    # Leave out the first customers, who found the queue empty rather than stationary.
    sojourn = [e.value.end_s - e.value.enqueued_s for e in events[customers // 20 :]]
    assert np.mean(sojourn) == pytest.approx(expected, rel=0.03)


outage_lists = st.lists(
    st.tuples(st.floats(0.0, 5.0), st.floats(0.01, 5.0)), max_size=6
).map(lambda gaps: list(_periods(gaps)))


def _periods(gaps):
    t = 0.0
    for gap, length in gaps:
        t += gap
        yield t, t + length
        t += length


@settings(max_examples=40, deadline=None)
@given(
    schedules=st.lists(outage_lists, min_size=1, max_size=3),
    arrivals=st.lists(st.floats(0.0, 20.0), min_size=1, max_size=15).map(sorted),
    max_batch=st.integers(1, 3),
)
def test_every_item_is_served_once_never_by_a_down_worker_and_alike_on_a_rerun(
    schedules, arrivals, max_batch
) -> None:
    periods_of = schedules.__getitem__
    server, outcomes = _run_server(len(schedules), periods_of, arrivals, 1.0, max_batch)
    again = _run_server(len(schedules), periods_of, arrivals, 1.0, max_batch)[1]
    assert outcomes == again
    assert server.completed == len(arrivals) == len(outcomes)
    assert all(o is not None and o.dropped is None for o in outcomes)
    for o in outcomes:
        downs = schedules[o.worker]
        # The batch starts while its worker is up and gets its full work in up time.
        assert not any(d <= o.start_s < u for d, u in downs)
        lost = sum(max(0.0, min(u, o.end_s) - max(d, o.start_s)) for d, u in downs)
        assert o.end_s - o.start_s - lost == pytest.approx(o.batch_size * 1.0, abs=1e-9)
    batches = {(o.worker, o.start_s) for o in outcomes}
    for worker in range(len(schedules)):
        spans = sorted((o.start_s, o.end_s) for o in outcomes if o.worker == worker)
        assert all(a[1] <= b[0] + 1e-12 for a, b in itertools.pairwise(dict.fromkeys(spans)))
    assert len(batches) == server.batches


@pytest.mark.parametrize(
    ("work", "expected"),
    [("resume", (4.0, "paused")), ("restart", (6.0, "restarted")), ("lost", (2.0, "lost"))],
)
def test_work_caught_by_a_failure_resumes_restarts_or_is_lost(work: str, expected) -> None:
    # 3 s of work from 0 s, down from 2 s to 3 s: resumed, its last second ends at 4 s;
    # restarted from scratch at 3 s it ends at 6 s; lost, it ends at 2 s undone.
    up = Availability(scripted_outages([(2.0, 3.0)]))
    assert up.attempt(0.0, 3.0, work) == expected
    assert up.attempt(3.0, 3.0, work) == (6.0, "")  # after the outage: untouched


def test_a_restart_waits_for_an_up_period_long_enough() -> None:
    # 2 s of work: the up periods [1, 2) and [3, 4) are too short, [5, inf) is not.
    up = Availability(scripted_outages([(1.0, 2.0), (2.5, 3.0), (4.0, 5.0)]))
    assert up.attempt(0.0, 2.0, "restart") == (7.0, "restarted")
    assert up.next_down_s(0.0) == 1.0 and up.next_down_s(1.5) == 1.5
    assert up.up_s(1.5) == 2.0 and up.up_s(2.2) == 2.2
    assert up.down_s_between(0.0, 10.0) == pytest.approx(2.5)
    assert up.next_down_s(6.0) == math.inf


def _link_with_work(env: simpy.Environment, discipline: str, periods, work: str) -> Link:
    schedule, own = itertools.tee(scripted_outages(periods))
    rate = RateFunction(with_outages(iter([(0.0, 1000.0)]), schedule))
    return Link(env, "l", 1000.0, 0.5, discipline, rate, Availability(own), work)  # type: ignore[arg-type]


@pytest.mark.parametrize("discipline", ["ps", "fifo"])
@pytest.mark.parametrize(
    ("work", "sent", "hit"),
    [("resume", 4.0, "paused"), ("restart", 5.0, "restarted"), ("lost", 1.0, "lost")],
)
def test_a_link_failure_pauses_restarts_or_loses_a_transfer(
    discipline: str, work: str, sent: float, hit: str
) -> None:
    # 2000 bits at 1000 bit/s, 0.5 s of propagation, down from 1 s to 3 s: resumed, the
    # last bit leaves at 4 s; restarted at 3 s, at 5 s; lost, it ends at 1 s, undelivered.
    env = simpy.Environment()
    link = _link_with_work(env, discipline, [(1.0, 3.0)], work)
    done = link.transmit(2000)
    env.run()
    assert (done.value, done.hit) == (pytest.approx(sent), hit)
    if hit != "lost":
        assert env.now == pytest.approx(sent + 0.5)  # then it arrives
    assert link.lost == (hit == "lost") and link.bits_carried == (0 if hit == "lost" else 2000)


def test_processor_sharing_restarts_every_transfer_in_progress() -> None:
    # Two 1000-bit transfers share 1000 bit/s; down at 1 s (500 bits each) until 3 s:
    # both start again; at 4 s a 0.5-bit one joins (untouched) and takes 1.5 bits' time of
    # the link, so the two end together at 5 s + 1 ms / 2.
    env = simpy.Environment()
    link = _link_with_work(env, "ps", [(1.0, 3.0)], "restart")
    first, second = link.transmit(1000), link.transmit(1000)
    env.run(until=4.0)
    third = link.transmit(0.5)
    env.run()
    assert first.value == pytest.approx(5.0005) and second.value == pytest.approx(5.0005)
    assert first.hit == second.hit == "restarted" and third.hit == ""


def test_a_fifo_transfer_waiting_out_an_outage_is_not_lost() -> None:
    # The first transfer is lost at 1 s; the second, waiting behind it, begins at 3 s.
    env = simpy.Environment()
    link = _link_with_work(env, "fifo", [(1.0, 3.0)], "lost")
    first, second = link.transmit(2000), link.transmit(1000)
    env.run()
    assert (first.hit, second.hit) == ("lost", "")
    assert (second.started_s, second.value) == (3.0, pytest.approx(4.0))


def test_a_lost_batch_ends_at_the_failure_and_the_next_waits_for_the_worker() -> None:
    env = simpy.Environment()
    server = Server(
        env, "s", 1, lambda _n: 0.0, work="lost",
        outages=lambda _w: scripted_outages([(1.0, 2.5)]),
    )
    first, second = server.submit("a", 2.0), server.submit("b", 2.0)
    env.run()
    assert (first.value.end_s, first.value.hit) == (1.0, "lost")
    assert (second.value.start_s, second.value.end_s, second.value.hit) == (2.5, 4.5, "")
    assert (server.lost, server.completed) == (1, 1)

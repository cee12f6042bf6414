"""CloudServer: FIFO dynamic batching over worker processes, drops when the queue is full."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from fogsim.sim.server import CLOUD_QUEUE_FULL, CloudOutcome, CloudServer


@pytest.fixture
def env() -> simpy.Environment:
    return simpy.Environment()


def submit_at(server: CloudServer, times: list[float]) -> list[list[CloudOutcome]]:
    """Submit item ``i`` at ``times[i]``; return every outcome each item received."""
    outcomes: list[list[CloudOutcome]] = [[] for _ in times]

    def submit(i: int):
        return lambda _e: server.submit(i).callbacks.append(
            lambda event: outcomes[i].append(event.value)
        )

    for i, t in enumerate(times):
        server.env.timeout(t).callbacks.append(submit(i))
    server.env.run()
    return outcomes


def test_single_item_is_served_at_once(env):
    server = CloudServer(env, "cloud", workers=1, service_time=lambda b: 0.5)
    [[outcome]] = submit_at(server, [2.0])
    assert (outcome.enqueued_s, outcome.start_s, outcome.end_s) == (2.0, 2.0, 2.5)
    assert outcome.batch_size == 1 and outcome.dropped is None and outcome.tag == 0


def test_one_worker_serves_in_arrival_order(env):
    server = CloudServer(env, "cloud", workers=1, service_time=lambda b: 1.0)
    outcomes = submit_at(server, [0.0, 0.1, 0.2])
    assert [o[0].end_s for o in outcomes] == [1.0, 2.0, 3.0]


def test_full_batch_starts_without_waiting(env):
    sizes = []
    server = CloudServer(
        env, "cloud", 1, lambda b: sizes.append(b) or 1.0, max_batch=3, max_wait_s=10.0
    )
    outcomes = submit_at(server, [0.0, 0.5, 1.0, 1.0])
    assert sizes == [3, 1]
    assert [o[0].start_s for o in outcomes[:3]] == [1.0, 1.0, 1.0]
    # The fourth item waits for its own deadline (1 + 10 s): the worker was free at 2 s.
    assert outcomes[3][0].start_s == pytest.approx(11.0)


def test_partial_batch_starts_when_the_oldest_has_waited_max_wait(env):
    server = CloudServer(env, "cloud", 1, lambda b: 0.1 * b, max_batch=8, max_wait_s=0.3)
    outcomes = submit_at(server, [0.0, 0.1, 0.2, 0.35])
    assert [o[0].start_s for o in outcomes] == pytest.approx([0.3, 0.3, 0.3, 0.65])
    assert [o[0].batch_size for o in outcomes] == [3, 3, 3, 1]


def test_items_waiting_for_a_busy_worker_are_batched_together(env):
    server = CloudServer(env, "cloud", 1, lambda b: 1.0, max_batch=4, max_wait_s=0.0)
    outcomes = submit_at(server, [0.0, 0.2, 0.4, 0.6])
    assert [o[0].batch_size for o in outcomes] == [1, 3, 3, 3]
    assert outcomes[1][0].start_s == 1.0


def test_full_queue_drops_with_a_reason(env):
    server = CloudServer(env, "cloud", 1, lambda b: 1.0, queue_capacity=1)
    outcomes = submit_at(server, [0.0, 0.0, 0.0, 1.5])
    assert [o[0].dropped for o in outcomes] == [None, None, CLOUD_QUEUE_FULL, None]
    assert np.isnan(outcomes[2][0].end_s) and outcomes[2][0].enqueued_s == 0.0
    assert server.dropped == 1 and server.completed == 3 and server.submitted == 4


def test_zero_capacity_queue_serves_only_when_a_worker_is_free(env):
    server = CloudServer(env, "cloud", 2, lambda b: 1.0, queue_capacity=0)
    outcomes = submit_at(server, [0.0, 0.0, 0.0, 1.5])
    assert [o[0].dropped for o in outcomes] == [None, None, CLOUD_QUEUE_FULL, None]
    assert server.peak_queue == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "workers"),
        ({"workers": 1.5}, "workers"),
        ({"max_batch": 0}, "max_batch"),
        ({"max_wait_s": -0.1}, "max_wait_s"),
        ({"queue_capacity": -1}, "queue_capacity"),
    ],
)
def test_bad_parameters_are_rejected(env, kwargs, message):
    params = {"workers": 1, "service_time": lambda b: 1.0} | kwargs
    with pytest.raises(ValueError, match=message):
        CloudServer(env, "cloud", **params)


def busy_workers_at(outcomes: list[CloudOutcome], t: float) -> int:
    batches = {(o.worker, o.start_s, o.end_s) for o in outcomes}
    return sum(1 for _, start, end in batches if start <= t < end)


@settings(max_examples=120, deadline=None)
@given(
    times=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=40),
    workers=st.integers(1, 3),
    max_batch=st.integers(1, 5),
    max_wait=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
    capacity=st.one_of(st.none(), st.integers(0, 6)),
    base=st.floats(0.05, 1.0),
)
def test_batching_invariants(times, workers, max_batch, max_wait, capacity, base):
    env = simpy.Environment()
    server = CloudServer(
        env, "c", workers, lambda b: base * (1 + 0.3 * b), max_batch, max_wait, capacity
    )
    received = submit_at(server, times)
    assert all(len(r) == 1 for r in received), "every item completes or drops exactly once"
    outcomes = [r[0] for r in received]
    served = [o for o in outcomes if o.dropped is None]
    assert len(served) + server.dropped == len(times) == server.submitted
    if capacity is None:
        assert not server.dropped
    else:
        assert server.peak_queue <= capacity
    batches: dict[tuple[int, float], list[CloudOutcome]] = {}
    for o in served:
        batches.setdefault((o.worker, o.start_s), []).append(o)
    for members in batches.values():
        assert len(members) == members[0].batch_size <= max_batch
        members.sort(key=lambda o: o.enqueued_s)
        first, last = members[0].enqueued_s, members[-1].enqueued_s
        ready = first + max_wait if len(members) < max_batch else min(last, first + max_wait)
        start = members[0].start_s
        assert start >= ready - 1e-9, "no batch starts before it is ready"
        if start > ready + 1e-9:
            assert busy_workers_at(served, ready) == workers, "a ready batch waits only if busy"
    assert server.peak_busy_workers <= workers
    for t in {o.start_s for o in served}:
        assert busy_workers_at(served, t) <= workers
    # FIFO: in order of submission, served items never start earlier than those before.
    by_arrival = sorted(served, key=lambda o: (o.enqueued_s, o.tag))
    starts = [o.start_s for o in by_arrival]
    assert starts == sorted(starts)


def test_busy_time_counts_finished_and_running_batches(env):
    """Hand-computed: batches over [0, 0.5] and [2, 2.5]; stopped at 2.25 s, 0.75 s busy."""
    server = CloudServer(env, "cloud", workers=1, service_time=lambda b: 0.5)
    for t in (0.0, 2.0):
        env.timeout(t).callbacks.append(lambda _e: server.submit())
    env.run(until=2.25)
    assert server.busy_time_s == pytest.approx(0.75)
    env.run()
    assert server.busy_time_s == pytest.approx(1.0)

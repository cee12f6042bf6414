"""Servers solved without events: one compiled loop per server over its sorted arrivals.

The loop mirrors ``fogsim.sim.server.Server`` (FIFO queue, dynamic batches, ``workers``
identical workers, a bounded queue, the batching deadline timer) float operation for
float operation, so its times are bit-identical to the SimPy engine's. Servers with
failures stay in SimPy (``fogsim.sim.fast.support``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from fogsim.sim.fast.links import TIE, _heap_pop, _heap_push
from fogsim.sim.fast.tables import index_dtype


@dataclass(frozen=True, slots=True)
class ServerSolution:
    """Per arrival: its batch's start and end, size and its share of the batch's work (NaN
    and 0 where the batch did not end before the horizon), whether it was dropped;
    ``order``: the served arrivals in the order their answers were given."""

    start_s: np.ndarray
    end_s: np.ndarray
    batch_size: np.ndarray
    share: np.ndarray
    dropped: np.ndarray
    order: np.ndarray
    counters: ServerCounters


@dataclass(frozen=True, slots=True)
class ServerCounters:
    """What ``Server`` counts, read at the end of the run (see ``shared.server_energy_j``)."""

    workers: int
    submitted: int
    completed: int
    dropped: int
    peak_queue: int
    busy_time_s: float


@numba.njit(cache=True)
def fsum(values: np.ndarray) -> float:
    """The correctly rounded sum of ``values``: CPython's ``math.fsum`` (Shewchuk's
    partials, then round-half-even), which numba does not provide."""
    partials = np.empty(values.size + 1)
    count = 0
    for x in values:
        i = 0
        for k in range(count):
            y = partials[k]
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo != 0.0:
                partials[i] = lo
                i += 1
            x = hi
        partials[i] = x
        count = i + 1
    if count == 0:
        return 0.0
    n = count - 1
    hi = partials[n]
    lo = 0.0
    while n > 0:
        x = hi
        n -= 1
        y = partials[n]
        hi = x + y
        yr = hi - x
        lo = y - yr
        if lo != 0.0:
            break
    if n > 0 and ((lo < 0.0 and partials[n - 1] < 0.0) or (lo > 0.0 and partials[n - 1] > 0.0)):
        y = lo * 2.0
        x = hi + y
        yr = x - hi
        if y == yr:
            hi = x
    return hi


@numba.njit(cache=True)
def _serve(
    arrive,
    work,
    workers,
    max_batch,
    max_wait,
    capacity,
    overhead,
    until,
    start,
    end,
    size_of,
    share,
    dropped,
    order,
    stats,
):
    """Events in time order: arrivals, batch ends (by end, then dispatch order) and the
    deadline timer. Returns how many answers were given, or TIE when events of different
    kinds fell on one instant (SimPy orders those by event id, unknown here)."""
    n = arrive.size
    queue = np.empty(n, order.dtype)
    head = 0
    tail = 0
    idle = workers
    # The running batches (at most one a worker), each in a slot of its worker's: its first
    # queue slot, size, start and work; a heap of their ends, each tagged with its dispatch
    # number times ``workers`` plus its slot, so ties break in dispatch order (as SimPy's
    # event ids do) and the slot comes with it.
    b_first = np.empty(workers, np.int64)
    b_size = np.empty(workers, np.int64)
    b_start = np.empty(workers)
    b_work = np.empty(workers)
    free = np.arange(workers)  # free slots, a stack: free[:idle]
    ends = np.empty(workers)
    end_ids = np.empty(workers, np.int64)
    running = 0
    batches = 0
    timer = False
    timer_at = 0.0
    timer_deadline = 0.0
    fired = -np.inf
    submitted = 0
    n_dropped = 0
    completed = 0
    peak_queue = 0
    busy_done = 0.0
    emitted = 0
    i = 0
    while True:
        ta = arrive[i] if i < n else np.inf
        te = ends[0] if running > 0 else np.inf
        tt = timer_at if timer else np.inf
        now = min(ta, te, tt)
        if not now < until:
            break
        if (ta == te and ta == now) or (ta == tt and ta == now) or (te == tt and te == now):
            return TIE
        if ta == now:
            submitted += 1
            queue[tail] = i
            tail += 1
        elif te == now:
            b = end_ids[0] % workers
            _heap_pop(ends, end_ids, running)
            running -= 1
            busy_done += now - b_start[b]
            size = b_size[b]
            completed += size
            for k in range(b_first[b], b_first[b] + size):
                item = queue[k]
                start[item] = b_start[b]
                end[item] = now
                size_of[item] = size
                share[item] = work[item] / b_work[b] if b_work[b] > 0 else 1.0 / size
                order[emitted] = item
                emitted += 1
            free[idle] = b
            idle += 1
        else:
            timer = False
            fired = timer_deadline
        # Server._dispatch
        # An arrival's deadline is its arrival time plus max_wait (as Server.submit sets it).
        while idle > 0 and (
            tail - head >= max_batch
            or (tail > head and arrive[queue[head]] + max_wait <= (fired if fired > now else now))
        ):
            idle -= 1
            slot = free[idle]
            size = min(max_batch, tail - head)
            total = work[queue[head]] if size == 1 else fsum(work[queue[head : head + size]])
            b_first[slot] = head
            b_size[slot] = size
            b_start[slot] = now
            b_work[slot] = total
            _heap_push(ends, end_ids, running, now + (overhead + total), batches * workers + slot)
            running += 1
            batches += 1
            head += size
        if idle > 0 and tail > head and not timer:
            oldest = arrive[queue[head]] + max_wait
            if not oldest <= (fired if fired > now else now):
                gap = oldest - now
                timer = True
                timer_at = now + (gap if gap > 0.0 else 0.0)
                timer_deadline = oldest
        if ta == now:
            if capacity >= 0 and tail - head > capacity:
                tail -= 1
                dropped[i] = True
                n_dropped += 1
            peak_queue = max(peak_queue, tail - head)
            i += 1
    running_s = 0.0
    for tag in np.sort(end_ids[:running]):  # the batches still running, in dispatch order
        running_s += until - b_start[tag % workers]
    stats[0] = submitted
    stats[1] = completed
    stats[2] = n_dropped
    stats[3] = peak_queue
    stats[4] = busy_done + running_s
    return emitted


def solve_server(
    arrive_s: np.ndarray,
    work_s: np.ndarray,
    *,
    workers: int,
    max_batch: int,
    max_wait_s: float,
    queue_capacity: int | None,
    overhead_s: float,
    until_s: float,
) -> ServerSolution | None:
    """Solve one server over its arrivals (sorted as SimPy would process them, all before
    ``until_s``); None when a tie makes the order of events unknowable."""
    n = arrive_s.size
    start, end, share = (np.full(n, np.nan) for _ in range(3))
    share[:] = 0.0
    size_of = np.zeros(n, np.int32)
    dropped = np.zeros(n, np.bool_)
    order = np.empty(n, index_dtype(n))
    stats = np.zeros(5)
    capacity = -1 if queue_capacity is None else int(queue_capacity)
    emitted = _serve(
        arrive_s,
        work_s,
        int(workers),
        int(max_batch),
        float(max_wait_s),
        capacity,
        float(overhead_s),
        float(until_s),
        start,
        end,
        size_of,
        share,
        dropped,
        order,
        stats,
    )
    if emitted == TIE:
        return None
    counters = ServerCounters(
        int(workers), int(stats[0]), int(stats[1]), int(stats[2]), int(stats[3]), float(stats[4])
    )
    return ServerSolution(start, end, size_of, share, dropped, order[:emitted], counters)

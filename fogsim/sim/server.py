"""A server (fog or cloud): a FIFO queue in front of worker processes serving dynamic batches.

It consumes (item, ready time, work) and produces (start, end): the engine needs
nothing else from it, so a faster solver can stand in for its events.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from fogsim.sim.failures import LOST, WORK, Availability, Outages

CLOUD_QUEUE_FULL = "cloud_queue_full"
WITHDRAWN = "withdrawn"  # a batch whose every item was taken back (see Server.withdraw)
FOG_QUEUE_FULL = "fog_queue_full"


def _is_count(value: object, least: int) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= least


@dataclass(frozen=True, slots=True)
class ServerOutcome:
    """What happened to one submitted item; times are NaN and ``batch_size`` 0 when dropped.

    ``share`` is the item's part of its batch's work (its work over the batch's, or an
    equal part when no item carries work): its share of the batch's energy. ``hit`` says
    what a failure of its worker did to its batch: ``""`` (nothing), ``"paused"``,
    ``"restarted"`` or ``"lost"`` (``end_s`` is then when the worker failed).
    """

    tag: Any
    enqueued_s: float
    start_s: float
    end_s: float
    batch_size: int
    worker: int
    dropped: str | None = None
    share: float = 0.0
    hit: str = ""


@dataclass(slots=True)
class _Waiting:
    tag: Any
    enqueued_s: float
    deadline_s: float
    done: simpy.Event
    work_s: float
    withdrawn: bool = False


class Server:
    """``workers`` servers taking FIFO batches of up to ``max_batch`` waiting items.

    Dynamic batching: a free worker starts a batch as soon as ``max_batch`` items
    wait, or as soon as the oldest waiting item has waited ``max_wait_s``,
    whichever comes first; it takes up to ``max_batch`` items in arrival order
    and holds them for ``service_time(batch_size)`` seconds plus the sum of the
    items' own work. With ``max_wait_s``
    0 a free worker takes whatever waits at once, so ``max_batch=1`` is an M/G/c
    FIFO queue. At most ``queue_capacity`` items wait (those in service not
    counted; 0 makes a loss system); an item that would exceed it is dropped:
    its event succeeds with ``dropped=drop_reason``, nothing is raised.

    With ``outages`` (a worker's number to its outage schedule) a worker fails and
    recovers: while down it takes no batch. The batch it holds when it fails is, as
    ``work`` says, resumed where it stopped once the worker is up (preemptive resume),
    restarted from scratch then (preemptive repeat), or lost: its items end at the failure
    with ``hit="lost"``.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        workers: int,
        service_time: Callable[[int], float],
        max_batch: int = 1,
        max_wait_s: float = 0.0,
        queue_capacity: int | None = None,
        drop_reason: str = CLOUD_QUEUE_FULL,
        outages: Callable[[int], Outages] | None = None,
        work: str = "resume",
    ) -> None:
        if not _is_count(workers, 1):
            raise ValueError(
                f"server {name!r}: workers must be a positive integer, got {workers!r}"
            )
        if not _is_count(max_batch, 1):
            raise ValueError(
                f"server {name!r}: max_batch must be a positive integer: {max_batch!r}"
            )
        if not (max_wait_s >= 0 and math.isfinite(max_wait_s)):
            raise ValueError(f"server {name!r}: max_wait_s must be >= 0, got {max_wait_s!r}")
        if queue_capacity is not None and not _is_count(queue_capacity, 0):
            raise ValueError(f"server {name!r}: queue_capacity must be >= 0: {queue_capacity!r}")
        if work not in WORK:
            raise ValueError(f"server {name!r}: work must be one of {WORK}, got {work!r}")
        self.env = env
        self.name = name
        self.workers = int(workers)
        self.service_time = service_time
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_s)
        self.queue_capacity = None if queue_capacity is None else int(queue_capacity)
        self.drop_reason = drop_reason
        self.work = work
        self.submitted = 0
        self.lost = 0
        self.withdrawn = 0
        self.dropped = 0
        self.completed = 0
        self.batches = 0
        self.peak_busy_workers = 0
        self.peak_queue = 0
        self._queue: deque[_Waiting] = deque()
        self._idle: deque[tuple[int, simpy.Event]] = deque()
        self._busy = 0
        self._busy_done_s = 0.0
        self._running_since: dict[int, float] = {}
        self._holding: dict[int, list[_Waiting]] = {}  # each busy worker's batch
        self._workers: list[simpy.Process] = []
        self._timer_pending = False
        self._fired_deadline_s = -math.inf
        self._up: list[Availability] | None = None  # each worker's, with outages
        if outages is not None:
            self._up = []
            for worker in range(self.workers):
                schedule, wakeups = itertools.tee(outages(worker))
                self._up.append(Availability(schedule))
                env.process(self.recover(wakeups))
        self._workers = [env.process(self.serve(worker)) for worker in range(self.workers)]

    @property
    def busy_time_s(self) -> float:
        """Worker-seconds spent running batches so far (the batches still running included)."""
        now = self.env.now
        return self._busy_done_s + sum(now - since for since in self._running_since.values())

    @property
    def queue_length(self) -> int:
        """Items waiting for a worker now."""
        return len(self._queue)

    def submit(self, tag: Any = None, work_s: float = 0.0) -> simpy.Event:
        """Queue one item of ``work_s`` seconds of work; the event succeeds with its
        :class:`ServerOutcome`."""
        now = self.env.now
        done = self.env.event()
        self.submitted += 1
        self._queue.append(_Waiting(tag, now, now + self.max_wait_s, done, work_s))
        self._dispatch()
        # Only items left waiting count against the capacity; dispatch takes from
        # the front, so when the queue overflows the newcomer is the one at the back.
        if self.queue_capacity is not None and len(self._queue) > self.queue_capacity:
            self._queue.pop()
            self.dropped += 1
            done.succeed(ServerOutcome(tag, now, math.nan, math.nan, 0, -1, self.drop_reason))
        self.peak_queue = max(self.peak_queue, len(self._queue))
        return done

    def serve(self, worker: int) -> Generator[simpy.Event, Any, None]:
        """One worker: wait to be handed a batch, hold it for its service time, answer it."""
        env = self.env
        while True:
            handed = env.event()
            self._idle.append((worker, handed))
            self._dispatch()
            batch: list[_Waiting] = yield handed
            start = self._running_since[worker] = env.now
            self._holding[worker] = batch
            work = batch[0].work_s if len(batch) == 1 else math.fsum(i.work_s for i in batch)
            hold_s = self.service_time(len(batch)) + work
            hit = ""
            if self._up is not None:
                end, hit = self._up[worker].attempt(start, hold_s, self.work)
                hold_s = end - start
            try:
                yield env.timeout(hold_s)
            except simpy.Interrupt:
                hit = WITHDRAWN  # every item of the batch was withdrawn (see withdraw)
            end = env.now
            del self._running_since[worker], self._holding[worker]
            self._busy_done_s += end - start
            self._busy -= 1
            size = len(batch)
            if hit == WITHDRAWN:
                continue
            withdrawn = sum(item.withdrawn for item in batch) if self.withdrawn else 0
            if hit == LOST:
                self.lost += size - withdrawn
            else:
                self.completed += size - withdrawn
            for item in batch:
                if item.withdrawn:
                    continue
                share = item.work_s / work if work > 0 else 1.0 / size
                item.done.succeed(
                    ServerOutcome(
                        item.tag, item.enqueued_s, start, end, size, worker, None, share, hit
                    )
                )

    def withdraw(self, done: simpy.Event) -> bool:
        """Take back the item whose outcome ``done`` would give: out of the queue if it waits,
        and if it is in service, out of its batch's answer; a batch whose items are all
        withdrawn stops, and its worker is free at once. A batch with others in it runs to
        its end (it is one kernel). ``done`` never succeeds; False where the item is gone."""
        for i, item in enumerate(self._queue):
            if item.done is done:
                del self._queue[i]
                self.withdrawn += 1
                return True
        for worker, batch in self._holding.items():
            for item in batch:
                if item.done is done and not item.withdrawn:
                    item.withdrawn = True
                    self.withdrawn += 1
                    if all(other.withdrawn for other in batch):
                        self._workers[worker].interrupt()
                    return True
        return False

    def recover(self, outages: Outages) -> Generator[simpy.Event, Any, None]:
        """Hand waiting batches out again each time a worker is back up."""
        for _down, up in outages:
            yield self.env.timeout(up - self.env.now)
            self._dispatch()

    def _next_up_worker(self) -> simpy.Event | None:
        """Take the first idle worker that is up now, if any."""
        if self._up is None:
            return self._idle.popleft()[1] if self._idle else None
        now = self.env.now
        for i, (worker, handed) in enumerate(self._idle):
            if self._up[worker].rate_at(now) > 0:
                del self._idle[i]
                return handed
        return None

    def _ready(self) -> bool:
        queue = self._queue
        if len(queue) >= self.max_batch:
            return True
        # Compare with the deadline the timer aimed at too: now + (deadline - now)
        # can round to just below the deadline.
        return bool(queue) and queue[0].deadline_s <= max(self.env.now, self._fired_deadline_s)

    def _dispatch(self) -> None:
        """Hand batches to idle workers while a batch is ready; else wake at the next deadline."""
        while self._idle and self._ready():
            handed = self._next_up_worker()
            if handed is None:
                break  # the idle workers are down; recover dispatches again
            size = min(self.max_batch, len(self._queue))
            batch = [self._queue.popleft() for _ in range(size)]
            self._busy += 1
            self.batches += 1
            self.peak_busy_workers = max(self.peak_busy_workers, self._busy)
            handed.succeed(batch)
        # A ready queue left waiting has only down workers idle: recover dispatches it.
        if self._idle and self._queue and not self._timer_pending and not self._ready():
            # The oldest item's deadline only moves later as items leave, so one
            # pending timer that re-dispatches when it fires is never late.
            deadline = self._queue[0].deadline_s
            self._timer_pending = True
            timer = self.env.timeout(max(0.0, deadline - self.env.now), deadline)
            timer.callbacks.append(self._on_deadline)

    def _on_deadline(self, timer: simpy.Event) -> None:
        self._timer_pending = False
        self._fired_deadline_s = timer.value
        self._dispatch()


# Their names from before fog servers: the cloud was the only server.
CloudServer = Server
CloudOutcome = ServerOutcome

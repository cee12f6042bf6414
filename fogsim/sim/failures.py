"""When an element (a link, a server's worker) is down: outage schedules and what they do
to a rate.

An outage schedule is an iterator of ``(down_s, up_s)`` periods, in time order and not
overlapping. A down element does no work. What it was doing when it failed is, as the scenario
says (``WORK``): resumed where it stopped once it is up again (preemptive resume: a link
sends at 0 bit/s and a worker's batch pauses, both through :class:`RateFunction`, so
processor sharing, FIFO and batches stay exact), restarted from scratch once it is up
(preemptive repeat), or lost. :class:`Availability` answers when an element next fails
and comes back, which restarts and losses need.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

from fogsim.sim.ratefn import RateFunction

Outages = Iterator[tuple[float, float]]
WORK = ("resume", "restart", "lost")  # what becomes of the work in progress at a failure
PAUSED, RESTARTED, LOST = "paused", "restarted", "lost"  # what a failure did to one piece


def exponential_outages(mtbf_s: float, mttr_s: float, rng: np.random.Generator) -> Outages:
    """Up periods of mean ``mtbf_s`` and down periods of mean ``mttr_s``, both exponential,
    starting up at time 0; for ever."""
    if not (mtbf_s > 0 and math.isfinite(mtbf_s)) or not (mttr_s > 0 and math.isfinite(mttr_s)):
        raise ValueError(f"mtbf and mttr must be positive, got {mtbf_s!r} and {mttr_s!r}")
    t = 0.0
    while True:
        down = t + float(rng.exponential(mtbf_s))
        t = down + float(rng.exponential(mttr_s))
        if t > down:  # a repair that rounds to nothing is no outage
            yield down, t


def scripted_outages(periods: Iterable[tuple[float, float]]) -> Outages:
    """The given ``(down_s, up_s)`` periods, checked: each ends after it starts, after the
    previous one ended."""
    last_up = 0.0
    for down, up in periods:
        if not (down >= last_up and up > down and math.isfinite(up)):
            raise ValueError(
                f"an outage ({down!r} s, {up!r} s) must end after it starts and start "
                f"at or after the previous one's end ({last_up!r} s)"
            )
        last_up = up
        yield float(down), float(up)


def with_outages(changes: Iterator[tuple[float, float]], outages: Outages) -> Iterator[
    tuple[float, float]
]:
    """A rate's ``(time_s, rate)`` changes with the rate 0 during every outage."""
    base_t, base_rate = next(changes)
    pending = next(changes, None)  # the base's next change
    rate = float(base_rate)
    emitted = None  # the last rate given out, to skip changes that change nothing
    t = float(base_t)
    for down, up in outages:
        # The base's changes up to the outage, as they are.
        while pending is not None and pending[0] < down:
            if rate != emitted:
                yield t, rate
                emitted = rate
            t, rate = float(pending[0]), float(pending[1])
            pending = next(changes, None)
        if down > t and rate != emitted:
            yield t, rate
            emitted = rate
        if emitted != 0.0:
            yield down, 0.0
            emitted = 0.0
        # The base's changes during the outage only set the rate it comes back to.
        while pending is not None and pending[0] <= up:
            rate = float(pending[1])
            pending = next(changes, None)
        t = up
    if rate != emitted:
        yield t, rate
    while pending is not None:
        yield float(pending[0]), float(pending[1])
        pending = next(changes, None)


class Availability(RateFunction):
    """1 while up, 0 while down: the seconds of work done between two times, when a piece
    of work started at a time is through, and when the element next fails or recovers."""

    def __init__(self, outages: Outages) -> None:
        super().__init__(with_outages(iter([(0.0, 1.0)]), outages))

    def next_down_s(self, time_s: float) -> float:
        """When the element next fails at or after ``time_s`` (infinity: never again)."""
        i = self._index(time_s)
        while True:
            if self.rates_bps[i] == 0.0:
                return max(time_s, self.times_s[i])
            while i + 1 >= len(self.times_s) and not self._ended:
                self._extend()
            if i + 1 >= len(self.times_s):
                return math.inf
            i += 1

    def up_s(self, time_s: float) -> float:
        """``time_s`` if the element is up then, else when it is back up."""
        i = self._index(time_s)
        if self.rates_bps[i] > 0.0:
            return time_s
        while i + 1 >= len(self.times_s):
            self._extend()  # a schedule ends up (see RateFunction), so this ends
        return self.times_s[i + 1]

    def down_s_between(self, start_s: float, end_s: float) -> float:
        """Seconds the element is down between two times."""
        return (end_s - start_s) - self.bits_between(start_s, end_s)

    def attempt(self, start_s: float, work_s: float, work: str) -> tuple[float, str]:
        """When ``work_s`` seconds of work begun at ``start_s`` (the element up) end, and
        what failures did to it: ``""``, ``PAUSED``, ``RESTARTED`` or ``LOST`` (it ended,
        unfinished, when the element failed)."""
        if work == "resume":
            end = self.finish_s(start_s, work_s)
            return end, (PAUSED if self.next_down_s(start_s) < end else "")
        hit = ""
        while True:
            down = self.next_down_s(start_s)
            if start_s + work_s <= down:
                return start_s + work_s, hit
            if work == "lost":
                return down, LOST
            start_s, hit = self.up_s(down), RESTARTED


def availability(outages: Outages) -> Availability:
    """The element's :class:`Availability` over its outage schedule."""
    return Availability(outages)

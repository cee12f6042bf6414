"""Many independent FIFO single-server queues solved at once, without events.

A device's own compute queue (or its dedicated access link) serves its requests
one at a time in arrival order and interacts with nothing else, so its start and
end times follow from the Lindley recursion ``end[n] = max(end[n-1], a[n]) + s[n]``
and need no discrete-event simulation. The results are exact, not approximate:
the closed form of that recursion, evaluated per server so that float rounding
stays at the level of running the recursion request by request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, slots=True)
class FifoResult:
    """Start and end of service per request (NaN where dropped) and the drop mask."""

    start_s: np.ndarray
    end_s: np.ndarray
    dropped: np.ndarray


def _validate(server: np.ndarray, arrival_s: np.ndarray, service_s: np.ndarray) -> None:
    if not (server.shape == arrival_s.shape == service_s.shape) or server.ndim != 1:
        raise ValueError("server, arrival_s and service_s must be 1-D arrays of one length")
    if server.size == 0:
        return
    if not (np.all(np.isfinite(arrival_s)) and np.all(np.isfinite(service_s))):
        raise ValueError("arrival and service times must be finite")
    if np.any(service_s < 0):
        raise ValueError("service times must be non-negative")
    same = server[1:] == server[:-1]
    if np.any(server[1:] < server[:-1]):
        raise ValueError("requests must be grouped by server in ascending server order")
    if np.any(same & (arrival_s[1:] < arrival_s[:-1])):
        raise ValueError("each server's arrivals must be sorted by time")


def _segment_starts(server: np.ndarray) -> np.ndarray:
    """Boolean mask of the first request of each server's contiguous block."""
    first = np.ones(server.size, dtype=bool)
    first[1:] = server[1:] != server[:-1]
    return first


def _lindley(server: np.ndarray, arrival_s: np.ndarray, service_s: np.ndarray) -> np.ndarray:
    """End times of the unbounded FIFO queues: ``end = S + cummax(a - S_prev)`` per server.

    The cumulative sums and maxima restart at each server (pandas' grouped
    cumsum/cummax run sequentially per group), so no server's values are offset
    by another's, which would cost precision.
    """
    groups = pd.Series(service_s).groupby(server, sort=False)
    cum_service = groups.cumsum().to_numpy()
    backlog_free = pd.Series(arrival_s - (cum_service - service_s)).groupby(server, sort=False)
    return cum_service + backlog_free.cummax().to_numpy()


def _starts(first: np.ndarray, arrival_s: np.ndarray, end_s: np.ndarray) -> np.ndarray:
    """Service starts: the arrival, or the previous request's end if that is later."""
    previous_end = np.empty_like(end_s)
    previous_end[0:1] = -np.inf
    previous_end[1:] = end_s[:-1]
    previous_end[first] = -np.inf
    return np.maximum(arrival_s, previous_end)


def solve_fifo(
    server: np.ndarray,
    arrival_s: np.ndarray,
    service_s: np.ndarray,
    capacity: int | None = None,
) -> FifoResult:
    """Start and end times of every request at its FIFO server, exactly.

    ``server`` groups the requests: each server's requests are contiguous, in
    ascending server order, and sorted by arrival time. With ``capacity`` set
    (the most requests in the system, the one in service included), an arrival
    that finds its server full is dropped; a departure at the very instant of
    an arrival frees its place first.
    """
    server = np.asarray(server)
    arrival_s = np.asarray(arrival_s, dtype=np.float64)
    service_s = np.asarray(service_s, dtype=np.float64)
    _validate(server, arrival_s, service_s)
    if capacity is not None and (
        isinstance(capacity, bool) or not isinstance(capacity, int | np.integer) or capacity < 1
    ):
        raise ValueError(f"capacity must be a positive integer or None, got {capacity!r}")
    n = server.size
    if n == 0:
        empty = np.empty(0)
        return FifoResult(empty, empty.copy(), np.zeros(0, dtype=bool))
    first = _segment_starts(server)
    end_s = _lindley(server, arrival_s, service_s)
    start_s = _starts(first, arrival_s, end_s)
    dropped = np.zeros(n, dtype=bool)
    if capacity is not None:
        _apply_capacity(first, arrival_s, service_s, start_s, end_s, dropped, int(capacity))
    start_s[dropped] = np.nan
    end_s[dropped] = np.nan
    return FifoResult(start_s, end_s, dropped)


def _apply_capacity(
    first: np.ndarray,
    arrival_s: np.ndarray,
    service_s: np.ndarray,
    start_s: np.ndarray,
    end_s: np.ndarray,
    dropped: np.ndarray,
    capacity: int,
) -> None:
    """Redo, request by request, only the servers whose unbounded queue ever overflows.

    In a FIFO queue ends are non-decreasing, so an arrival finds the server
    full exactly when the request ``capacity`` places ahead of it has not left.
    """
    block_start = np.flatnonzero(first)
    block_end = np.append(block_start[1:], first.size)
    position = np.arange(first.size) - np.repeat(block_start, block_end - block_start)
    ahead = np.arange(first.size) - capacity
    overflow = position >= capacity
    overflow[overflow] = end_s[ahead[overflow]] > arrival_s[overflow]
    if not overflow.any():
        return
    block_of = np.cumsum(first) - 1
    for block in np.unique(block_of[overflow]):
        span = slice(int(block_start[block]), int(block_end[block]))
        _bounded_block(
            arrival_s[span], service_s[span], start_s[span], end_s[span], dropped[span], capacity
        )


def _bounded_block(
    arrival_s: np.ndarray,
    service_s: np.ndarray,
    start_s: np.ndarray,
    end_s: np.ndarray,
    dropped: np.ndarray,
    capacity: int,
) -> None:
    """The bounded Lindley recursion for one server, writing into the given views."""
    arrivals = arrival_s.tolist()
    services = service_s.tolist()
    starts = [np.nan] * len(arrivals)
    ends = [np.nan] * len(arrivals)
    accepted_ends: list[float] = []
    last_end = -np.inf
    for i, (a, s) in enumerate(zip(arrivals, services, strict=True)):
        if len(accepted_ends) >= capacity and accepted_ends[-capacity] > a:
            dropped[i] = True
            continue
        starts[i] = last_end if last_end > a else a
        last_end = starts[i] + s
        ends[i] = last_end
        accepted_ends.append(last_end)
    start_s[:] = starts
    end_s[:] = ends

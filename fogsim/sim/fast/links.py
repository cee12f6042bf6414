"""Shared links solved without events: one compiled loop per link over its sorted arrivals.

Each loop mirrors ``fogsim.sim.link.Link`` float operation for float operation (same
expressions, same order), so its times are bit-identical to the SimPy engine's. Only
constant-rate links without failures come here (``fogsim.sim.fast.support``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from fogsim.sim.fast.tables import index_dtype

TIE = -1  # a kernel's count when two events fell on one instant in an order it cannot know


@dataclass(frozen=True, slots=True)
class LinkSolution:
    """Per arrival: when its serialization started and ended and when it arrived (NaN if
    never); ``order``: the arrivals in the order their deliveries were scheduled."""

    start_s: np.ndarray
    sent_s: np.ndarray
    delivered_s: np.ndarray
    order: np.ndarray
    bits_carried: float
    transfers: int
    busy_s: float
    peak_concurrency: int


@numba.njit(cache=True)
def _heap_push(tags, ids, size, tag, ident):
    """Push (tag, ident) on a binary min-heap of ``size`` entries, ordered by tag then id."""
    i = size
    tags[i] = tag
    ids[i] = ident
    while i > 0:
        parent = (i - 1) // 2
        if tags[parent] < tags[i] or (tags[parent] == tags[i] and ids[parent] < ids[i]):
            break
        tags[parent], tags[i] = tags[i], tags[parent]
        ids[parent], ids[i] = ids[i], ids[parent]
        i = parent


@numba.njit(cache=True)
def _heap_pop(tags, ids, size):
    """Remove the root of a heap of ``size`` entries (the caller read it first)."""
    last = size - 1
    tags[0] = tags[last]
    ids[0] = ids[last]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= last:
            break
        child = left
        right = left + 1
        if right < last and (
            tags[right] < tags[left] or (tags[right] == tags[left] and ids[right] < ids[left])
        ):
            child = right
        if tags[i] < tags[child] or (tags[i] == tags[child] and ids[i] < ids[child]):
            break
        tags[child], tags[i] = tags[i], tags[child]
        ids[child], ids[i] = ids[i], ids[child]
        i = child


@numba.njit(cache=True)
def _ps(arrive, bits, bandwidth, delay, until, start, sent, delivered, order, stats):
    """Processor sharing by virtual finishing tags, as ``Link._send_ps`` and ``Link._wake``.

    Returns how many deliveries were scheduled, or TIE when an arrival fell on the
    instant of the link's own wake-up (SimPy orders those by event id, unknown here).
    """
    n = arrive.size
    tags = np.empty(n)
    ids = np.empty(n, order.dtype)
    size = 0
    virtual = 0.0
    virtual_at = 0.0
    pending = False
    wake_at = 0.0
    busy = 0.0
    busy_since = 0.0
    bits_done = 0.0
    done = 0
    peak = 0
    emitted = 0
    i = 0
    while True:
        a = arrive[i] if i < n else np.inf
        w = wake_at if pending else np.inf
        if a == w and a < until:
            return TIE
        if a < w:
            if not a < until:
                break
            now = a
            b = bits[i]
            start[i] = now
            if b == 0.0:
                stats[3] += 1.0  # zero-size transfers are counted apart, as in Link.transmit
                sent[i] = now
                delivered[i] = now + delay
                order[emitted] = i
                emitted += 1
            else:
                if size > 0:
                    virtual += (now - virtual_at) * bandwidth / size
                    virtual_at = now
                else:
                    busy_since = now
                    virtual = 0.0
                    virtual_at = now
                _heap_push(tags, ids, size, virtual + b, i)
                size += 1
                peak = max(peak, size)
                if not pending or (ids[0] == i and now + b * size / bandwidth < wake_at):
                    remaining = tags[0] - virtual
                    wait = remaining * size / bandwidth
                    pending = True
                    wake_at = now + (wait if wait > 0.0 else 0.0)
            i += 1
        else:
            if not w < until:
                break
            now = w
            pending = False
            virtual += (now - virtual_at) * bandwidth / size
            virtual_at = now
            while size > 0:
                tag = tags[0]
                left = (tag - virtual) * size
                if now + left / bandwidth > now:
                    break
                j = ids[0]
                _heap_pop(tags, ids, size)
                size -= 1
                if tag > virtual:
                    virtual = tag
                bits_done += bits[j]
                done += 1
                sent[j] = now
                delivered[j] = now + delay
                order[emitted] = j
                emitted += 1
            if size > 0:
                remaining = tags[0] - virtual
                wait = remaining * size / bandwidth
                pending = True
                wake_at = now + (wait if wait > 0.0 else 0.0)
            else:
                busy += now - busy_since
    stats[0] = bits_done
    stats[1] = done
    stats[2] = busy + (until - busy_since if size > 0 else 0.0)
    stats[4] = peak
    return emitted


@numba.njit(cache=True)
def _fifo(arrive, bits, bandwidth, delay, until, start, sent, delivered, order, stats):
    """One transfer at a time in arrival order, as ``Link._send_fifo``."""
    n = arrive.size
    ends = np.empty(n)
    sizes = np.empty(n)
    head = 0
    tail = 0
    free_at = 0.0
    work = 0.0
    bits_done = 0.0
    done = 0
    peak = 0
    for i in range(n):
        now = arrive[i]
        while head < tail and ends[head] <= now:
            bits_done += sizes[head]
            done += 1
            head += 1
        b = bits[i]
        order[i] = i
        if b == 0.0:
            stats[3] += 1.0
            start[i] = now
            sent[i] = now
            delivered[i] = now + delay
            continue
        began = free_at if free_at > now else now
        serialize = b / bandwidth
        end = began + serialize
        free_at = end
        work += serialize
        ends[tail] = end
        sizes[tail] = b
        tail += 1
        peak = max(peak, tail - head)
        start[i] = began
        sent[i] = end
        delivered[i] = now + (end - now + delay)
    while head < tail and ends[head] <= until:
        bits_done += sizes[head]
        done += 1
        head += 1
    stats[0] = bits_done
    stats[1] = done
    late = free_at - until
    stats[2] = work - (late if late > 0.0 else 0.0)
    stats[4] = peak
    return n


def solve_link(
    arrive_s: np.ndarray,
    bits: np.ndarray,
    bandwidth_bps: float,
    delay_s: float,
    sharing: str,
    until_s: float,
) -> LinkSolution | None:
    """Solve one link over its arrivals (sorted as SimPy would process them, all before
    ``until_s``); None when a tie makes the order of events unknowable."""
    n = arrive_s.size
    start, sent, delivered = (np.full(n, np.nan) for _ in range(3))
    order = np.empty(n, index_dtype(n))
    stats = np.zeros(5)
    kernel = _ps if sharing == "ps" else _fifo
    emitted = kernel(
        arrive_s,
        bits,
        float(bandwidth_bps),
        float(delay_s),
        float(until_s),
        start,
        sent,
        delivered,
        order,
        stats,
    )
    if emitted == TIE:
        return None
    return LinkSolution(
        start,
        sent,
        delivered,
        order[:emitted],
        float(stats[0]),
        int(stats[1]) + int(stats[3]),
        float(stats[2]),
        int(stats[4]),
    )

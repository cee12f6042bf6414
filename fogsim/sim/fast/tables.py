"""Compiled passes between the fast engine's resources: what each resource's arrivals
carry in, and where its outputs go, written into the ``StageTimes`` grids in one pass
each (numpy's fancy indexing over a million random rows costs several passes)."""

from __future__ import annotations

import numba
import numpy as np


def index_dtype(n: int) -> type[np.signedinteger]:
    """The narrowest exact dtype for indices below ``n``: int32 up to 2**31 rows (4
    bytes an arrival, not 8, in every inbox and kernel output), int64 past it."""
    return np.int32 if n <= np.iinfo(np.int32).max else np.int64


def stage_dtype(depth: int) -> type[np.signedinteger]:
    """The narrowest exact signed dtype for a row's stage, below ``depth``."""
    for dtype in (np.int8, np.int16, np.int32):
        if depth <= np.iinfo(dtype).max:
            return dtype
    return np.int64


@numba.njit(cache=True)
def take_inputs(
    rows, arrive, plan, stage, forward, link, payload, work, bits, answer_bits, enqueue
):
    """Per arrival: its stage, and what it brings (a link: its payload's bits, or the
    answer's on the way back; a server: its work); records the enqueue of plan stages."""
    n = rows.size
    stages = np.empty(n, stage.dtype)
    size = np.empty(n)
    for i in range(n):
        row = rows[i]
        p, k = plan[row], stage[row]
        stages[i] = k
        if k < forward[p]:
            enqueue[row, k] = arrive[i]
        if link:
            kind = payload[p, k]
            size[i] = bits[row, kind] if kind >= 0 else answer_bits
        else:
            size[i] = work[p, k]
    return stages, size


@numba.njit(cache=True)
def record_link(
    rows,
    stages,
    plan,
    forward,
    start,
    sent,
    delivered,
    order,
    until,
    on_cell,
    start_s,
    end_s,
    cell_sent_s,
    stage,
):
    """Write the transfers that arrived before ``until``; return those rows and times in
    the order the link scheduled them, each moved on to its next stage."""
    for i in range(rows.size):
        row, k = rows[i], stages[i]
        if delivered[i] < until and k < forward[plan[row]]:
            start_s[row, k] = start[i]
            end_s[row, k] = delivered[i]
            if on_cell and k == 0:
                cell_sent_s[row] = sent[i]
    return _emit(rows, order, delivered, until, stage)


@numba.njit(cache=True)
def record_server(
    rows,
    stages,
    start,
    end,
    size,
    share,
    dropped,
    drop_code,
    order,
    start_s,
    end_s,
    batch_size,
    share_s,
    dropped_s,
    stage,
):
    """Write the batches that ended and the drops; return the answered rows and their
    end times in the order the server gave them, each moved on to its next stage."""
    for i in range(rows.size):
        row, k = rows[i], stages[i]
        if dropped[i]:
            dropped_s[row] = drop_code
        elif end[i] == end[i]:  # not NaN: the batch ended before the end of the run
            start_s[row, k] = start[i]
            end_s[row, k] = end[i]
            batch_size[row, k] = size[i]
            share_s[row, k] = share[i]
    return _emit(rows, order, end, np.inf, stage)


@numba.njit(cache=True)
def _emit(rows, order, done, until, stage):
    out_rows = np.empty(order.size, rows.dtype)
    out_done = np.empty(order.size)
    m = 0
    for j in order:
        if done[j] < until:
            out_rows[m] = rows[j]
            out_done[m] = done[j]
            stage[rows[j]] += 1
            m += 1
    return out_rows[:m], out_done[:m]


@numba.njit(cache=True)
def route_outputs(
    rows, done_s, plan, stage, resource, before, back_fixed, answer_s, until, source, n_res
):
    """Where each row leaving a resource goes next, in one pass: its next resource (-1:
    the answer's fixed way back, written to ``answer_s``), when it gets there (a timer of
    ``before`` fires at ``now + before``; without one, at once) and the source id it
    arrives from (a timer is a source of its own); then the rows grouped by destination,
    each group in the order given (a stable counting sort). Indices come out in the
    dtype of ``rows``, source ids as int32."""
    n = rows.size
    dest = np.empty(n, np.int32)
    at = np.empty(n)
    source_id = np.empty(n, np.int32)
    counts = np.zeros(n_res + 1, np.int64)
    for i in range(n):
        row = rows[i]
        p, k = plan[row], stage[row]
        d = resource[p, k]
        if d < 0:
            answer_s[row] = done_s[i] + back_fixed[p]
            dest[i] = n_res
            continue
        wait = before[p, k]
        at[i] = done_s[i] + wait if wait > 0 else done_s[i]
        source_id[i] = source + n_res if wait > 0 else source
        dest[i] = d if at[i] < until else n_res
        counts[dest[i]] += 1
    offsets = np.zeros(n_res + 1, np.int64)
    for d in range(n_res):
        offsets[d + 1] = offsets[d] + counts[d]
    order = np.empty(offsets[n_res], rows.dtype)
    fill = offsets[:n_res].copy()
    for i in range(n):
        d = dest[i]
        if d < n_res:
            order[fill[d]] = i
            fill[d] += 1
    return dest, at, source_id, offsets, order

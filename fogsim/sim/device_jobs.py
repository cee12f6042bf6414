"""Work a device does besides its requests (on-device training), in its compute queue.

A job enters its device's FIFO queue at a time, like a request, and holds the device for
its duration: requests that arrive after it wait until it is done. It joins the same
Lindley recursion as the requests (``fogsim.sim.fifo``), so the times stay exact. Its
energy is charged to the first request its device starts after it (the one that waited
behind it), as compute energy, so that batteries and energy totals include it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fogsim.sim.fifo import FifoResult, solve_fifo


@dataclass
class DeviceJobs:
    """Jobs by device: when each enters the queue and how long it holds the device; the
    solver fills in when each really started and ended."""

    device: np.ndarray  # int32, global device index
    at_s: np.ndarray  # float64
    seconds: np.ndarray  # float64
    joules: np.ndarray  # float64, the device's energy for the job
    start_s: np.ndarray = field(init=False)
    end_s: np.ndarray = field(init=False)
    charged_to: np.ndarray = field(init=False)  # the request charged with it, or -1

    def __post_init__(self) -> None:
        self.start_s = np.full(self.device.size, np.nan)
        self.end_s = np.full(self.device.size, np.nan)
        self.charged_to = np.full(self.device.size, -1, dtype=np.int64)

    @classmethod
    def none(cls) -> DeviceJobs:
        return cls(np.zeros(0, np.int32), np.zeros(0), np.zeros(0), np.zeros(0))

    def per_request_j(self, n: int) -> np.ndarray:
        """Each request's share of job energy (``charge_jobs`` must have run)."""
        out = np.zeros(n)
        charged = self.charged_to >= 0
        np.add.at(out, self.charged_to[charged], self.joules[charged])
        return out


def solve_with_jobs(
    server: np.ndarray,
    arrival_s: np.ndarray,
    service_s: np.ndarray,
    capacity: int | None,
    jobs: DeviceJobs | None,
) -> FifoResult:
    """``solve_fifo`` for requests (grouped by device, each device's sorted by arrival), with
    the ``jobs`` of those devices in the same queues; a job queues behind requests that
    arrived at the same instant. Fills in the jobs' start and end times."""
    if jobs is None or jobs.device.size == 0:
        return solve_fifo(server, arrival_s, service_s, capacity)
    mine = np.flatnonzero(np.isin(jobs.device, server))
    if mine.size == 0:
        return solve_fifo(server, arrival_s, service_s, capacity)
    if capacity is not None:
        raise ValueError("a device with jobs must have an unbounded queue (no queue_capacity)")
    n = server.size
    all_server = np.concatenate([server, jobs.device[mine]])
    all_arrival = np.concatenate([arrival_s, jobs.at_s[mine]])
    all_service = np.concatenate([service_s, jobs.seconds[mine]])
    is_job = np.arange(all_server.size) >= n
    order = np.lexsort((is_job, all_arrival, all_server))
    solved = solve_fifo(all_server[order], all_arrival[order], all_service[order])
    start, end = np.empty(all_server.size), np.empty(all_server.size)
    start[order], end[order] = solved.start_s, solved.end_s
    jobs.start_s[mine], jobs.end_s[mine] = start[n:], end[n:]
    return FifoResult(start[:n], end[:n], np.zeros(n, dtype=bool))


def charge_jobs(
    jobs: DeviceJobs, device: np.ndarray, start_s: np.ndarray, idle_w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per request, the job energy it is charged (on the first request its device started
    after a job ended) and the idle energy its gap since the device's previous request
    counted while the job held the device (the job's duration at idle power), to take off."""
    job_j, idle_j = np.zeros(device.size), np.zeros(device.size)
    # Requests are grouped by device in ascending order, and a FIFO starts them in order.
    for j, (d, end) in enumerate(zip(jobs.device, jobs.end_s, strict=True)):
        lo, hi = np.searchsorted(device, d, "left"), np.searchsorted(device, d, "right")
        after = np.flatnonzero(start_s[lo:hi] >= end)  # NaN (never started) compares False
        if after.size:
            first = lo + int(after[0])
            jobs.charged_to[j] = first
            job_j[first] += jobs.joules[j]
            idle_j[first] += jobs.seconds[j] * idle_w[first]
    return job_j, idle_j

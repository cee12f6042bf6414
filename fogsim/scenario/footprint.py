"""The memory a run needs, estimated from its scenario before anything is simulated.

A run holds every request as a row of columns until it writes them, so its
memory grows with the expected number of requests: each group's arrival rate
x its device count x the duration. The estimate is compared with a limit, by
default half of the memory available now, so that a scenario that cannot fit
is refused in a second rather than after exhausting the machine.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from fogsim import units
from fogsim.errors import UserInputError
from fogsim.scenario.models import Arrival, Bursty, CsvTimestamps, Periodic, Poisson, Scenario

# Bytes each per-request column takes in the frame (fogsim.sim.engine builds them;
# tests/test_preflight.py checks that this table matches a real run's frame).
COLUMN_BYTES = {
    **dict.fromkeys(("request",), 8),
    **dict.fromkeys(("device", "image", "batch_size"), 4),
    # Text columns become categoricals of one-byte codes.
    **dict.fromkeys(
        ("group", "gateway", "fog", "path", "answered_at", "status", "reason", "failure"), 1
    ),
    **dict.fromkeys(("late", "correct"), 1),
    **dict.fromkeys(("exit", "prediction", "label", "retries", "handovers"), 2),
    **dict.fromkeys(
        (
            "t_arrival_s",
            "t_edge_start_s",
            "t_edge_end_s",
            "t_uplink_start_s",
            "t_uplink_end_s",
            "t_fog_start_s",
            "t_fog_end_s",
            "t_cloud_start_s",
            "t_cloud_end_s",
            "t_answer_s",
            "wait_device_s",
            "wait_uplink_s",
            "wait_fog_s",
            "wait_cloud_s",
            "bytes_sent",
            "latency_s",
            "latency_device_s",
            "latency_network_s",
            "latency_fog_s",
            "latency_cloud_s",
            "energy_compute_j",
            "energy_radio_j",
            "energy_idle_j",
            "energy_j",
            "energy_fog_j",
            "energy_cloud_j",
        ),
        8,
    ),
}
# Measured: a `fogsim run`'s peak resident memory grows by 318 bytes per request (city,
# early_exit) to 370 (city, cloud_only: every request crosses 4 stages), between 15 and 30
# simulated minutes (0.66M and 1.33M requests; /usr/bin/time's max RSS). With the stage
# times below, 1.5 copies of the frame's columns give 534 bytes: 44% over the larger.
PEAK_COPIES = 1.5
# Measured the same way: 540 bytes per device (400k devices, a few requests).
BYTES_PER_DEVICE = 600
# A bursty device's on/off periods, drawn whole before its arrivals: ten floats a period.
BYTES_PER_BURST = 80
LIMIT_SHARE = 0.5  # of the memory available now, for the default limit


@dataclass(frozen=True)
class Footprint:
    """What a run is expected to hold: its requests, devices and peak bytes."""

    requests: float
    devices: int
    bytes: float

    def __str__(self) -> str:
        return f"about {self.requests:,.0f} requests, {format_bytes(self.bytes)} in memory"


# The stage table is streamed to stages.parquet a row group at a time (fogsim.rundir), so
# its rows do not grow with the run; what it reads does, held until it is written: the
# shared stages' start and end times (8 bytes each, 4 stages in the city), the first stage's
# enqueue time, the devices' times and the table's layout. Measured: 162 bytes a request
# (city, cloud_only).
STAGE_INPUT_BYTES = 162


def request_bytes() -> float:
    """Peak memory per request: the frame's columns times the copies a run makes of them,
    and what the stage table reads."""
    return PEAK_COPIES * sum(COLUMN_BYTES.values()) + STAGE_INPUT_BYTES


def estimate(scenario: Scenario) -> Footprint:
    """The expected requests and peak memory of running ``scenario``."""
    duration = scenario.duration
    requests = sum(g.count * per_device(g.arrival, duration, g.count) for g in scenario.devices)
    bursts = max((_bursts(g.arrival, duration) for g in scenario.devices), default=0.0)
    peak = (
        requests * request_bytes()
        + scenario.device_count * BYTES_PER_DEVICE
        + bursts * BYTES_PER_BURST
    )
    return Footprint(requests, scenario.device_count, peak)


def per_device(arrival: Arrival, duration_s: float, count: int) -> float:
    """The expected requests of one device of a group over ``duration_s``."""
    if isinstance(arrival, Poisson):
        return arrival.rate * duration_s
    if isinstance(arrival, Periodic):
        return duration_s / arrival.period
    if isinstance(arrival, Bursty):
        on_share = arrival.mean_on / (arrival.mean_on + arrival.mean_off)
        return arrival.on_rate * on_share * duration_s
    if isinstance(arrival, CsvTimestamps):
        from fogsim.sim.arrivals import read_trace  # fogsim.sim imports the scenario models

        trace = read_trace(arrival.path, arrival.column, arrival.device_column)
        inside = trace.times < duration_s
        if trace.devices is None:
            return float(inside.sum())
        return float((inside & (trace.devices < count)).sum()) / count
    raise TypeError(f"no estimate for {type(arrival).__name__}")


def _bursts(arrival: Arrival, duration_s: float) -> float:
    if not isinstance(arrival, Bursty):
        return 0.0
    return 1.2 * duration_s / (arrival.mean_on + arrival.mean_off) + 8


def check(footprint: Footprint, limit: float, option: str = "--max-memory") -> str | None:
    """Why ``footprint`` does not fit under ``limit`` bytes, or None when it fits."""
    if footprint.bytes <= limit:
        return None
    return (
        f"the run would hold {footprint}, over the limit of {format_bytes(limit)}; "
        "shorten the duration, or lower device counts or arrival rates, "
        f"or, where the machine has the memory, raise the limit with {option} SIZE"
    )


def default_limit() -> float:
    """The limit when none is given: a share of the memory available now."""
    return LIMIT_SHARE * available_memory()


def available_memory() -> float:
    """Bytes of memory available to this process now (the lesser of the machine and cgroup)."""
    free = _meminfo_available()
    cgroup = _cgroup_room()
    return min(free, cgroup) if cgroup is not None else free


def _meminfo_available() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def _cgroup_room() -> float | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
    except OSError:
        return None
    return None if limit == "max" else float(limit) - float(used)


_HAS_UNIT = re.compile(r"[A-Za-z]")


def parse_memory(text: str, option: str = "--max-memory") -> float:
    """A memory size such as ``8GB`` or ``512 MiB`` in bytes; a bad one is a UserInputError."""
    example = f"e.g. {option} 8GB or {option} '512 MiB'"
    if not _HAS_UNIT.search(text):
        raise UserInputError(f"{option} {text!r} has no unit; {example}")
    try:
        size = units.DATA.parse(text) / 8
    except ValueError as exc:
        raise UserInputError(f"{option} {text!r}: {exc}; {example}") from None
    if not size > 0:
        raise UserInputError(f"{option} {text!r} must be more than zero; {example}")
    return size


def format_bytes(size: float) -> str:
    """A byte count for people: ``1.5 GB``."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size:.0f} B"

"""Arrival processes: when each device issues requests, drawn ahead of the run.

Each process is a small class with one method, ``sample``, that returns the
sorted arrival times in ``[0, duration_s)`` for one device. Scenarios name them
through the registry (``make_arrival("poisson", rate_per_s=2.0)``).
"""

from __future__ import annotations

import csv
import functools
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_REGISTRY: dict[str, type[ArrivalProcess]] = {}


class ArrivalProcess(ABC):
    """Base class: a point process sampled once per device and run."""

    @abstractmethod
    def sample(
        self, rng: np.random.Generator, duration_s: float, device_index: int | None = None
    ) -> np.ndarray:
        """Sorted float64 arrival times in ``[0, duration_s)`` for the device ``device_index``."""

    def sample_devices(
        self, rng: np.random.Generator, duration_s: float, count: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``sample`` for devices ``0 .. count - 1``, one after another from ``rng``: all their
        times, device by device, and each device's number of arrivals. A process may
        override it to do the same faster; the draws and the times must stay the same."""
        times = [self.sample(rng, duration_s, device_index=i) for i in range(count)]
        counts = np.array([t.size for t in times], dtype=np.int64)
        return (np.concatenate(times) if times else np.zeros(0)), counts


def register_arrival(name: str) -> Callable[[type[ArrivalProcess]], type[ArrivalProcess]]:
    """Class decorator adding an arrival process to the registry under ``name``."""

    def add(cls: type[ArrivalProcess]) -> type[ArrivalProcess]:
        if name in _REGISTRY:
            raise ValueError(f"arrival process {name!r} is already registered")
        _REGISTRY[name] = cls
        return cls

    return add


def arrival_names() -> list[str]:
    """The registered arrival process names, sorted."""
    return sorted(_REGISTRY)


def make_arrival(name: str, **params: object) -> ArrivalProcess:
    """Build the arrival process ``name``; unknown names or parameters raise ValueError."""
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"unknown arrival process {name!r}; known: {', '.join(arrival_names())}")
    accepted = list(inspect.signature(cls).parameters)
    for key in params:
        if key not in accepted:
            raise ValueError(
                f"arrival process {name!r}: unknown parameter {key!r}; accepted: "
                + ", ".join(accepted)
            )
    try:
        inspect.signature(cls).bind(**params)
    except TypeError as error:
        raise ValueError(f"arrival process {name!r}: {error}") from None
    return cls(**params)


def _check_duration(duration_s: float) -> None:
    if not (duration_s >= 0 and math.isfinite(duration_s)):
        raise ValueError(f"duration must be a finite number of seconds >= 0, got {duration_s!r}")


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _uniform_points(
    rng: np.random.Generator, start_s: float, span_s: float, count: int
) -> np.ndarray:
    return np.sort(start_s + span_s * rng.random(count))


@register_arrival("poisson")
class Poisson(ArrivalProcess):
    """Independent arrivals at a constant rate (exponential gaps)."""

    def __init__(self, rate_per_s: float) -> None:
        self.rate_per_s = _positive("rate_per_s", rate_per_s)

    def sample(
        self, rng: np.random.Generator, duration_s: float, device_index: int | None = None
    ) -> np.ndarray:
        _check_duration(duration_s)
        # Given their number, the points of a Poisson process are uniform on the window.
        count = int(rng.poisson(self.rate_per_s * duration_s))
        return _uniform_points(rng, 0.0, duration_s, count)

    def sample_devices(
        self, rng: np.random.Generator, duration_s: float, count: int
    ) -> tuple[np.ndarray, np.ndarray]:
        _check_duration(duration_s)
        mean = self.rate_per_s * duration_s
        counts = np.empty(count, dtype=np.int64)
        draws = []
        # The draws of ``sample``, in its order (a count, then that many points), device
        # after device. Scaling by a positive number keeps the order, so the points are
        # sorted as drawn and scaled once for all: the same times as sorting them scaled.
        for i in range(count):
            counts[i] = rng.poisson(mean)
            draws.append(np.sort(rng.random(counts[i])))
        return 0.0 + duration_s * (np.concatenate(draws) if draws else np.zeros(0)), counts


@register_arrival("periodic")
class Periodic(ArrivalProcess):
    """One arrival every ``period_s``, each delayed by a uniform ``[0, jitter_s)`` jitter.

    Slots lie at ``phase + k * period_s``; ``phase="random"`` draws it uniformly
    in ``[0, period_s)`` per device, so devices started together do not fire in
    lockstep, and a number fixes it. The window holds ``duration_s / period_s``
    arrivals on average, within one (two with jitter) in any sample.
    """

    def __init__(self, period_s: float, jitter_s: float = 0.0, phase: float | str = "random"):
        self.period_s = _positive("period_s", period_s)
        if not (jitter_s >= 0 and math.isfinite(jitter_s)):
            raise ValueError(f"jitter_s must be >= 0 and finite, got {jitter_s!r}")
        self.jitter_s = float(jitter_s)
        if phase != "random" and not (
            isinstance(phase, int | float) and not isinstance(phase, bool) and phase >= 0
        ):
            raise ValueError(f"phase must be 'random' or a number of seconds >= 0, got {phase!r}")
        self.phase = phase

    def sample(
        self, rng: np.random.Generator, duration_s: float, device_index: int | None = None
    ) -> np.ndarray:
        _check_duration(duration_s)
        phase = rng.random() * self.period_s if self.phase == "random" else float(self.phase)
        # Slots up to one jitter before the window can land inside it, so the
        # window's start loses no arrivals that its end does not also lose.
        first = phase - math.ceil(self.jitter_s / self.period_s) * self.period_s
        slots = np.arange(first, duration_s, self.period_s, dtype=np.float64)
        if self.jitter_s == 0:
            return slots[slots >= 0]
        times = np.sort(slots + self.jitter_s * rng.random(slots.size))
        return times[(times >= 0) & (times < duration_s)]


@register_arrival("bursty")
class Bursty(ArrivalProcess):
    """On/off bursts: Poisson at ``on_rate_per_s`` while on, silent while off.

    On and off periods are exponential with means ``mean_on_s`` and
    ``mean_off_s`` (a two-state MMPP); each device starts in the stationary
    state, so the long-run rate is ``on_rate * mean_on / (mean_on + mean_off)``.
    """

    def __init__(self, on_rate_per_s: float, mean_on_s: float, mean_off_s: float) -> None:
        self.on_rate_per_s = _positive("on_rate_per_s", on_rate_per_s)
        self.mean_on_s = _positive("mean_on_s", mean_on_s)
        self.mean_off_s = _positive("mean_off_s", mean_off_s)

    def sample(
        self, rng: np.random.Generator, duration_s: float, device_index: int | None = None
    ) -> np.ndarray:
        _check_duration(duration_s)
        starts, ends = self._on_periods(rng, duration_s)
        counts = rng.poisson(self.on_rate_per_s * (ends - starts))
        offsets = rng.random(int(counts.sum()))
        spans = np.repeat(ends - starts, counts)
        return np.sort(np.repeat(starts, counts) + offsets * spans)

    def sample_devices(
        self, rng: np.random.Generator, duration_s: float, count: int
    ) -> tuple[np.ndarray, np.ndarray]:
        _check_duration(duration_s)
        from fogsim.sim.bursts import bursty_devices  # numba: compiled once, then cached

        return bursty_devices(
            rng, float(duration_s), count, self.on_rate_per_s, self.mean_on_s, self.mean_off_s
        )

    def _on_periods(
        self, rng: np.random.Generator, duration_s: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Start and end of the on periods clipped to ``[0, duration_s)``."""
        on_share = self.mean_on_s / (self.mean_on_s + self.mean_off_s)
        starts_on = rng.random() < on_share
        # Memorylessness: the residual of the period in progress at t=0 is
        # exponential with the same mean, so the first period needs no special case.
        cycle_s = self.mean_on_s + self.mean_off_s
        pairs = max(8, int(1.2 * duration_s / cycle_s) + 8)
        boundaries = np.zeros(1)
        while boundaries[-1] < duration_s:
            on = rng.exponential(self.mean_on_s, pairs)
            off = rng.exponential(self.mean_off_s, pairs)
            steps = np.column_stack((on, off) if starts_on else (off, on)).ravel()
            boundaries = np.concatenate((boundaries, boundaries[-1] + np.cumsum(steps)))
        boundaries = np.minimum(boundaries, duration_s)
        first_on = 0 if starts_on else 1
        starts = boundaries[first_on:-1:2]
        ends = boundaries[first_on + 1 :: 2][: starts.size]
        return starts, ends


@dataclass(frozen=True)
class Trace:
    """The rows of an arrival trace: times in seconds and, if asked for, device indices."""

    times: np.ndarray  # float64, in file order
    devices: np.ndarray | None  # int64, or None without a device column


def read_trace(path: str | Path, column: str = "time_s", device_column: str | None = None) -> Trace:
    """Read and check a CSV arrival trace; any problem is a ValueError naming file and line.

    The first line names the columns; blank lines are skipped; every other row
    has as many fields as the header, a finite time >= 0 and, with
    ``device_column``, a whole device index >= 0. At least one row is required.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"arrival trace {str(path)!r} is not a file")
    stat = path.stat()
    return _read_trace(path.resolve(), stat.st_mtime_ns, stat.st_size, column, device_column)


@functools.lru_cache(maxsize=16)
def _read_trace(
    path: Path, _mtime_ns: int, _size: int, column: str, device_column: str | None
) -> Trace:
    # Cached because a sweep validates the same trace once per point.
    where = f"arrival trace {str(path)!r}"
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            try:
                header = [name.strip() for name in next(reader)]
            except StopIteration:
                raise ValueError(f"{where} is empty; its first line names the columns") from None
            wanted = [name for name in (column, device_column) if name is not None]
            indices = [_column_index(header, name, where) for name in wanted]
            rows = []
            for row in reader:
                if not any(field.strip() for field in row):
                    continue
                line = f"{where}, line {reader.line_num}"
                if len(row) != len(header):
                    raise ValueError(
                        f"{line}: {len(row)} fields where the header has {len(header)}"
                    )
                time = _number(row[indices[0]], column, line)
                if device_column is None:
                    rows.append((time,))
                else:
                    rows.append((time, _device(row[indices[1]], device_column, line)))
    except UnicodeDecodeError:
        raise ValueError(f"{where} is not a text file (it is not UTF-8)") from None
    except csv.Error as exc:
        raise ValueError(f"{where}, line {reader.line_num}: not readable CSV ({exc})") from None
    if not rows:
        raise ValueError(f"{where} has a header but no rows; give at least one arrival time")
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(wanted))
    times = table[:, 0]
    times.setflags(write=False)
    devices = None
    if device_column is not None:
        devices = table[:, 1].astype(np.int64)
        devices.setflags(write=False)
    return Trace(times, devices)


def _column_index(header: list[str], name: str, where: str) -> int:
    if name not in header:
        known = ", ".join(map(repr, header))
        raise ValueError(f"{where}, line 1: no such column {name!r} (columns: {known})")
    return header.index(name)


def _device(text: str, column: str, line: str) -> float:
    value = _number(text, column, line)
    if not value.is_integer() or value >= 2**31:
        raise ValueError(
            f"{line}: {text.strip()!r} in column {column!r}: device indices are integers "
            "from 0 (the group's first device)"
        )
    return value


def _number(text: str, column: str, line: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{line}: {text.strip()!r} in column {column!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"{line}: {text.strip()!r} in column {column!r} is not a finite number >= 0"
        )
    return value


@register_arrival("csv")
class CsvTrace(ArrivalProcess):
    """Replay of recorded request times (seconds from the start) read from a CSV file.

    Without ``device_column`` every device replays the whole trace. With it,
    device ``i`` replays the rows whose device column equals ``i`` (none: no
    requests), and ``sample`` requires ``device_index``. A replay draws no
    random numbers. Times at or after ``duration_s`` are left out.
    """

    def __init__(self, path: str | Path, column: str = "time_s", device_column: str | None = None):
        self.path = Path(path)
        self.column = column
        self.device_column = device_column
        trace = read_trace(self.path, column, device_column)
        times = trace.times
        self._by_device: dict[int, np.ndarray] = {}
        self._all = np.sort(times)
        if trace.devices is not None:
            devices = trace.devices
            order = np.lexsort((times, devices))
            devices, times = devices[order], times[order]
            self._devices, self._times = devices, times
            cuts = np.flatnonzero(np.diff(devices)) + 1
            for block in np.split(np.arange(devices.size), cuts):
                if block.size:
                    self._by_device[int(devices[block[0]])] = times[block]

    def _where(self, column: str) -> str:
        return f"arrival trace {str(self.path)!r}, column {column!r}"

    def sample_devices(
        self, rng: np.random.Generator, duration_s: float, count: int
    ) -> tuple[np.ndarray, np.ndarray]:
        _check_duration(duration_s)
        if self.device_column is None:
            times = self._all[self._all < duration_s]
            return np.tile(times, count), np.full(count, times.size, dtype=np.int64)
        # The rows sorted by device then time: devices 0 .. count - 1 are one slice, in order.
        devices, times = self._devices, self._times
        keep = (devices < count) & (times < duration_s)
        return times[keep], np.bincount(devices[keep], minlength=count).astype(np.int64)

    def sample(
        self, rng: np.random.Generator, duration_s: float, device_index: int | None = None
    ) -> np.ndarray:
        _check_duration(duration_s)
        if self.device_column is None:
            times = self._all
        elif device_index is None:
            raise ValueError(f"{self._where(self.device_column)}: sample needs a device_index")
        else:
            times = self._by_device.get(int(device_index), self._all[:0])
        return times[times < duration_s].copy()

"""Where mobile devices are, and which gateway serves them, over the whole run.

A device's track is piecewise linear in time (``Track``): a random waypoint walk or the
rows of a position trace. The gateway that serves it is the nearest one in coverage among
those its group may use (ties: the first listed), or none. Along a straight segment the
serving gateway can change only where the device crosses the perpendicular bisector of two
gateways (a linear equation in time) or a coverage circle (a quadratic), so those instants
are found exactly, and the serving gateway is read between them: a handover happens where
the nearest gateway really changes, not at a sampling step.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

POSITION_COLUMNS = ("time_s", "device", "x_m", "y_m")
ROAD_COLUMNS = ("x1_m", "y1_m", "x2_m", "y2_m")
NO_GATEWAY = -1
OUT_OF_COVERAGE = "out_of_coverage"  # the reason of what coverage did to a request


@dataclass(frozen=True)
class Track:
    """A device's position (metres) at increasing times (s), straight lines in between."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray

    def position(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.interp(times, self.t, self.x), np.interp(times, self.t, self.y)


@dataclass(frozen=True)
class Positions:
    """A position trace's rows, sorted by device and time."""

    time_s: np.ndarray
    device: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray

    def track(self, device: int, duration_s: float) -> Track:
        rows = self.device == device
        return _padded(self.time_s[rows], self.x_m[rows], self.y_m[rows], duration_s)


def _rows(path: Path, what: str, columns: tuple[str, ...]) -> np.ndarray:
    """A CSV's rows of numbers under the header ``columns``, checked, naming file and line."""
    where = f"{what} {str(path)!r}"
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if tuple(header) != columns:
            raise ValueError(f"{where}: the first line must be {','.join(columns)}")
        rows = []
        for row in reader:
            if not any(field.strip() for field in row):
                continue
            line = f"{where}, line {reader.line_num}"
            if len(row) != len(header):
                raise ValueError(f"{line}: {len(row)} fields where the header has {len(header)}")
            rows.append([_number(text, name, line) for text, name in zip(row, header, strict=True)])
    if not rows:
        raise ValueError(f"{where} has no rows")
    return np.array(rows, dtype=np.float64)


def _read_cached(path: str | Path, what: str, reader):
    """``reader(resolved path, mtime, size)``: a cached read that sees a file's edits, after
    a clear error where ``path`` is not a file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"{what} {str(path)!r} is not a file (paths are relative to the scenario file)"
        )
    stat = path.stat()
    return reader(path.resolve(), stat.st_mtime_ns, stat.st_size)


def read_roads(path: str | Path) -> nx.Graph:
    """A road network from a CSV of straight two-way roads (``x1_m,y1_m,x2_m,y2_m``); roads
    meet where their ends are the same point. It must be connected."""
    return _read_cached(path, "road file", _read_roads)


@functools.lru_cache(maxsize=16)
def _read_roads(path: Path, _mtime_ns: int, _size: int) -> nx.Graph:
    graph = nx.Graph()
    for x1, y1, x2, y2 in _rows(path, "road file", ROAD_COLUMNS).tolist():
        if (x1, y1) != (x2, y2):
            graph.add_edge((x1, y1), (x2, y2), length=math.hypot(x2 - x1, y2 - y1))
    if graph.number_of_nodes() < 2:
        raise ValueError(f"road file {str(path)!r} has no road of positive length")
    parts = nx.number_connected_components(graph)
    if parts > 1:
        raise ValueError(
            f"road file {str(path)!r}: the roads form {parts} separate parts; join them "
            "(roads meet where an end of one is an end of another)"
        )
    return graph


def road_walks(
    count: int,
    roads: nx.Graph,
    speed: tuple[float, float],
    pause: tuple[float, float],
    duration_s: float,
    rng: np.random.Generator,
) -> list[Track]:
    """Random waypoints on a road network: each device starts at a uniform crossing, drives
    the shortest way (by length) to another uniform crossing at a speed drawn uniformly in
    ``speed``, pauses, and so on."""
    nodes = sorted(roads.nodes)
    paths = functools.lru_cache(maxsize=None)(
        lambda source: nx.single_source_dijkstra_path(roads, source, weight="length")
    )
    tracks = []
    for _ in range(count):
        here = nodes[int(rng.integers(len(nodes)))]
        t, points = 0.0, [(0.0, *here)]
        while t < duration_s:
            there = nodes[int(rng.integers(len(nodes)))]
            v = float(rng.uniform(speed[0], speed[1]))
            stop = float(rng.uniform(pause[0], pause[1]))
            for a, b in zip(paths(here)[there], paths(here)[there][1:], strict=False):
                t += roads.edges[a, b]["length"] / v
                points.append((t, *b))
            t += stop
            if stop > 0:
                points.append((t, *there))
            here = there
        table = np.array(points)
        keep = np.r_[np.diff(table[:, 0]) > 0, True]
        tracks.append(_padded(table[keep, 0], table[keep, 1], table[keep, 2], duration_s))
    return tracks


def read_positions(path: str | Path) -> Positions:
    """Read and check a position trace; any problem is a ValueError naming file and line."""
    return _read_cached(path, "position trace", _read_positions)


@functools.lru_cache(maxsize=16)
def _read_positions(path: Path, _mtime_ns: int, _size: int) -> Positions:
    where = f"position trace {str(path)!r}"
    table = _rows(path, "position trace", POSITION_COLUMNS)
    early = table[:, 0] < 0
    if early.any():
        row = int(np.argmax(early))
        raise ValueError(
            f"{where}: row {row + 1}: time_s {table[row, 0]:g} is negative; times start at 0"
        )
    odd = (table[:, 1] < 0) | (table[:, 1] != np.round(table[:, 1]))
    if odd.any():
        row = int(np.argmax(odd))
        raise ValueError(
            f"{where}: row {row + 1}: device {table[row, 1]:g} is not a whole number >= 0 "
            "(the group's devices are numbered from 0)"
        )
    order = np.lexsort((table[:, 0], table[:, 1]))
    table = table[order]
    same = (np.diff(table[:, 1]) == 0) & (np.diff(table[:, 0]) == 0)
    if same.any():
        device, time = int(table[1:][same][0, 1]), table[1:][same][0, 0]
        raise ValueError(f"{where}: device {device} has two positions at {time} s; keep one")
    return Positions(table[:, 0], table[:, 1].astype(np.int64), table[:, 2], table[:, 3])


def _number(text: str, name: str, line: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{line}: {name} {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{line}: {name} must be finite, not {text.strip()!r}")
    return value


def _padded(t: np.ndarray, x: np.ndarray, y: np.ndarray, duration_s: float) -> Track:
    """The track over [0, duration]: held at its first position before it, its last after."""
    if t[0] > 0:
        t, x, y = np.r_[0.0, t], np.r_[x[0], x], np.r_[y[0], y]
    if t[-1] < duration_s:
        t, x, y = np.r_[t, duration_s], np.r_[x, x[-1]], np.r_[y, y[-1]]
    return Track(t, x, y)


def random_waypoints(
    count: int,
    area: tuple[float, float],
    speed: tuple[float, float],
    pause: tuple[float, float],
    duration_s: float,
    rng: np.random.Generator,
) -> list[Track]:
    """``count`` random waypoint tracks over [0, duration], drawn leg by leg for all devices
    at once (each leg: a destination, a speed, then a pause)."""
    width, height = area
    t = np.zeros(count)
    x, y = rng.uniform(0, width, count), rng.uniform(0, height, count)
    points = [(np.arange(count), t.copy(), x.copy(), y.copy())]
    active = np.arange(count)
    while active.size:
        k = active.size
        to_x, to_y = rng.uniform(0, width, k), rng.uniform(0, height, k)
        v = rng.uniform(speed[0], speed[1], k)
        stop = rng.uniform(pause[0], pause[1], k)
        arrive = t[active] + np.hypot(to_x - x[active], to_y - y[active]) / v
        points.append((active, arrive, to_x, to_y))
        leave = arrive + stop
        paused = stop > 0
        points.append((active[paused], leave[paused], to_x[paused], to_y[paused]))
        t[active], x[active], y[active] = leave, to_x, to_y
        active = active[leave < duration_s]
    device = np.concatenate([p[0] for p in points])
    columns = [np.concatenate([p[i] for p in points]) for i in (1, 2, 3)]
    order = np.lexsort((columns[0], device))
    device, (times, xs, ys) = device[order], [c[order] for c in columns]
    bounds = np.searchsorted(device, np.arange(count + 1))
    tracks = []
    for d in range(count):
        part = slice(bounds[d], bounds[d + 1])
        # A leg of zero length arrives when it starts: keep the later point only.
        keep = np.r_[np.diff(times[part]) > 0, True]
        tracks.append(_padded(times[part][keep], xs[part][keep], ys[part][keep], duration_s))
    return tracks


@dataclass(frozen=True)
class Sites:
    """The gateways a group may attach to: their indices, positions and coverage radii."""

    index: np.ndarray  # int, into the network's gateways
    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray

    def serving(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The nearest gateway in coverage at each point, or NO_GATEWAY."""
        d2 = (x[:, None] - self.x[None, :]) ** 2 + (y[:, None] - self.y[None, :]) ** 2
        d2 = np.where(d2 <= self.radius[None, :] ** 2, d2, np.inf)
        best = np.argmin(d2, axis=1)
        covered = np.isfinite(d2[np.arange(x.size), best])
        return np.where(covered, self.index[best], NO_GATEWAY)


def attachments(track: Track, sites: Sites, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """When the device's serving gateway changes (the first at 0) and the gateway from then on
    (NO_GATEWAY: out of coverage), exact along each straight segment."""
    times = np.r_[0.0, track.t, _crossings(track, sites), duration_s]
    cuts = np.unique(np.clip(times, 0.0, duration_s))
    serving = sites.serving(*track.position((cuts[:-1] + cuts[1:]) / 2))
    change = np.r_[True, serving[1:] != serving[:-1]]
    return cuts[:-1][change], serving[change]


def _crossings(track: Track, sites: Sites) -> np.ndarray:
    """Every instant the track crosses a bisector of two sites or a coverage circle."""
    t0, dt = track.t[:-1], np.diff(track.t)
    moving = dt > 0
    t0, dt = t0[moving], dt[moving]
    px, py = track.x[:-1][moving], track.y[:-1][moving]
    vx, vy = np.diff(track.x)[moving] / dt, np.diff(track.y)[moving] / dt
    found = []
    n = sites.x.size
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = sites.x[j] - sites.x[i], sites.y[j] - sites.y[i]
            c = (sites.x[j] ** 2 + sites.y[j] ** 2 - sites.x[i] ** 2 - sites.y[i] ** 2) / 2
            along = vx * dx + vy * dy
            with np.errstate(divide="ignore", invalid="ignore"):
                s = (c - (px * dx + py * dy)) / along
            found.append(_inside(t0, s, dt))
        ox, oy = px - sites.x[i], py - sites.y[i]
        a, b = vx**2 + vy**2, 2 * (vx * ox + vy * oy)
        disc = b**2 - 4 * a * (ox**2 + oy**2 - sites.radius[i] ** 2)
        root = np.sqrt(np.maximum(disc, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            for sign in (-1.0, 1.0):
                s = np.where((a > 0) & (disc >= 0), (-b + sign * root) / (2 * a), np.nan)
                found.append(_inside(t0, s, dt))
    return np.concatenate(found) if found else np.zeros(0)


def _inside(t0: np.ndarray, s: np.ndarray, dt: np.ndarray) -> np.ndarray:
    ok = np.isfinite(s) & (s > 0) & (s < dt)
    return t0[ok] + s[ok]

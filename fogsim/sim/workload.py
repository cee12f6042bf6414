"""The workload: every request of a run, generated up front from seeded streams.

Arrivals and image choices do not depend on anything that happens during the
run, so they are drawn before the event loop, per device, as columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fogsim.scenario.models import (
    Arrival,
    Bursty,
    CsvTimestamps,
    DeviceGroup,
    Periodic,
    Poisson,
    Scenario,
)
from fogsim.sim.arrivals import ArrivalProcess, make_arrival
from fogsim.sim.rng import Streams


@dataclass(frozen=True)
class Workload:
    """All requests, sorted by device and, within a device, by arrival time."""

    device: np.ndarray  # int32, global device index
    group: np.ndarray  # int16, index into scenario.devices
    gateway: np.ndarray  # int16, index into scenario.network.gateway_nodes (the gateways, in order)
    arrival_s: np.ndarray  # float64
    image_id: np.ndarray  # int32, index into the dataset split
    device_group: np.ndarray  # int16 per device
    device_gateway: np.ndarray  # int16 per device

    @property
    def size(self) -> int:
        return int(self.arrival_s.size)

    def group_span(self, g: int) -> tuple[int, int]:
        """Rows ``lo:hi`` of group ``g``: devices are numbered group by group and requests
        sorted by device, so each group is one contiguous block."""
        lo, hi = np.searchsorted(self.group, (g, g + 1))
        return int(lo), int(hi)

    def group_rows(self, g: int) -> np.ndarray:
        """The indices of group ``g``'s rows (``np.flatnonzero(group == g)``)."""
        return np.arange(*self.group_span(g))

    def group_rows_where(self, g: int, mask: np.ndarray) -> np.ndarray:
        """The indices of group ``g``'s rows where ``mask`` holds (``np.flatnonzero(mask &
        (group == g))``), reading only the group's block."""
        lo, hi = self.group_span(g)
        return lo + np.flatnonzero(mask[lo:hi])


def arrival_process(spec: Arrival) -> ArrivalProcess:
    """The arrival process a scenario's ``arrival`` block describes."""
    if isinstance(spec, Poisson):
        return make_arrival("poisson", rate_per_s=spec.rate)
    if isinstance(spec, Periodic):
        return make_arrival("periodic", period_s=spec.period, jitter_s=spec.jitter)
    if isinstance(spec, Bursty):
        return make_arrival(
            "bursty", on_rate_per_s=spec.on_rate, mean_on_s=spec.mean_on, mean_off_s=spec.mean_off
        )
    if isinstance(spec, CsvTimestamps):
        return make_arrival(
            "csv", path=spec.path, column=spec.column, device_column=spec.device_column
        )
    raise TypeError(f"no arrival process for {type(spec).__name__}")


def generate_workload(scenario: Scenario, labels: np.ndarray, streams: Streams) -> Workload:
    """Draw every device's arrivals and images for the whole run."""
    gateway_index = {g.name: i for i, g in enumerate(scenario.network.gateway_nodes)}
    by_class = _images_by_class(labels)
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("device", "arrival", "image")}
    device_group, device_gateway = [], []
    first_device = 0
    for g, group in enumerate(scenario.devices):
        process = arrival_process(group.arrival)
        arrivals_rng = streams.stream(f"arrivals/{group.name}")
        images_rng = streams.stream(f"images/{group.name}")
        gateways = [gateway_index[name] for name in group.gateways]
        times, counts = process.sample_devices(arrivals_rng, scenario.duration, group.count)
        ids = np.arange(first_device, first_device + group.count, dtype=np.int32)
        columns["device"].append(np.repeat(ids, counts))
        columns["arrival"].append(times)
        columns["image"].append(_group_images(group, images_rng, counts, labels, by_class))
        device_group.append(np.full(group.count, g, dtype=np.int16))
        device_gateway.append(np.resize(np.array(gateways, dtype=np.int16), group.count))
        first_device += group.count
    per_device_group = np.concatenate(device_group)
    per_device_gateway = np.concatenate(device_gateway)
    device = np.concatenate(columns["device"])
    return Workload(
        device=device,
        group=per_device_group[device],
        gateway=per_device_gateway[device],
        arrival_s=np.concatenate(columns["arrival"]).astype(np.float64),
        image_id=np.concatenate(columns["image"]).astype(np.int32),
        device_group=per_device_group,
        device_gateway=per_device_gateway,
    )


@dataclass(frozen=True, slots=True)
class _Classes:
    """The images of class ``c``: ``members[starts[c]:starts[c] + sizes[c]]``, ascending."""

    members: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray


def _images_by_class(labels: np.ndarray) -> _Classes:
    members = np.argsort(labels, kind="stable")
    sizes = np.bincount(labels, minlength=int(labels.max()) + 1)
    return _Classes(members, np.cumsum(sizes) - sizes, sizes)


def _group_images(
    group: DeviceGroup,
    rng: np.random.Generator,
    counts: np.ndarray,
    labels: np.ndarray,
    by_class: _Classes,
) -> np.ndarray:
    """The images of a group's devices (``counts`` each), device after device from ``rng``."""
    if group.class_skew is None:
        # Uniform draws for one device after another are the same numbers as one draw of all.
        return rng.integers(0, labels.size, size=int(counts.sum()))
    parts = [_draw_images(group, rng, int(n), labels, by_class) for n in counts]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _draw_images(
    group: DeviceGroup,
    rng: np.random.Generator,
    n: int,
    labels: np.ndarray,
    by_class: _Classes,
) -> np.ndarray:
    """Images one device sees: uniform over the split, or skewed by a Dirichlet class mix."""
    if group.class_skew is None:
        return rng.integers(0, labels.size, size=n)
    mix = rng.dirichlet(np.full(by_class.sizes.size, group.class_skew))
    classes = rng.choice(by_class.sizes.size, size=n, p=mix)
    sizes = by_class.sizes[classes]
    if (sizes == 0).any():
        raise ValueError(f"devices {group.name!r}: class_skew drew a class with no images")
    picks = (rng.random(n) * sizes).astype(np.int64)
    # The draw's pick among its class's images, all draws at once.
    return by_class.members[by_class.starts[classes] + picks].astype(np.int64)

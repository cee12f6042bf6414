"""What moving devices do to a run: the gateway each request leaves through, what happens
out of coverage, and the radio outages handovers cause.

A request's gateway is its device's serving gateway when the request arrives; it keeps
that path to the end (``in_flight: finish``): its answer is forwarded to wherever the device
is then. The device's radio is down during each handover's ``interruption`` and while no
gateway covers it (an outage, as in ``fogsim.sim.failures``): its sends pause and resume,
and an answer is received once the radio is up. A request that arrives out of coverage and
would leave the device is answered by the device's last exit where the device runs its part
(reason ``out_of_coverage``); a raw image, or a network without a device exit, leaves it
nothing to answer with, and the request is dropped (reason ``out_of_coverage``).

The hooks act before the shared stages and after them, never inside: both engines see the
same requests, so they stay identical with mobility.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fogsim.policies import Decision, Tier
from fogsim.scenario.mobility import PositionTrace, RandomWaypoint, RoadGraph
from fogsim.scenario.models import Scenario
from fogsim.sim.device import DeviceStage
from fogsim.sim.failures import Availability, availability, scripted_outages
from fogsim.sim.movement import (
    NO_GATEWAY,
    Sites,
    Track,
    attachments,
    random_waypoints,
    read_positions,
    read_roads,
    road_walks,
)
from fogsim.sim.rng import Streams
from fogsim.sim.routes import Kinds
from fogsim.sim.workload import Workload

OUT_OF_COVERAGE = "out_of_coverage"


@dataclasses.dataclass(frozen=True)
class Attachment:
    """One mobile device: when its serving gateway changes, to which, and its radio."""

    at_s: np.ndarray  # change times, the first 0
    gateway: np.ndarray  # serving gateway from each change on (NO_GATEWAY: none)
    handover_s: np.ndarray  # when it attached to a gateway after time 0
    outages: list[tuple[float, float]]  # its radio's down periods, merged, in order

    def radio(self) -> Availability:
        return availability(scripted_outages(self.outages))


def track_devices(scenario: Scenario, streams: Streams) -> dict[int, Attachment]:
    """Every mobile device's attachments over the run, keyed by global device index."""
    mobility = scenario.mobility
    assert mobility is not None
    index = {g.name: i for i, g in enumerate(scenario.network.gateway_nodes)}
    interruption = mobility.handover.interruption
    found: dict[int, Attachment] = {}
    first = 0
    for group in scenario.devices:
        move = mobility.movement(group.name)
        if move is not None:
            placed = [mobility.site(name) for name in group.gateways]
            sites = Sites(
                np.array([index[s.name] for s in placed if s is not None]),
                np.array([s.x for s in placed if s is not None]),
                np.array([s.y for s in placed if s is not None]),
                np.array([s.coverage for s in placed if s is not None]),
            )
            for local, track in enumerate(_tracks(scenario, move, group.count, streams)):
                at, gateway = attachments(track, sites, scenario.duration)
                found[first + local] = _attachment(at, gateway, interruption, scenario.duration)
        first += group.count
    return found


def _tracks(
    scenario: Scenario,
    move: RandomWaypoint | PositionTrace | RoadGraph,
    count: int,
    streams: Streams,
) -> list[Track]:
    duration = scenario.duration
    if isinstance(move, PositionTrace):
        positions = read_positions(move.path)
        return [positions.track(d, duration) for d in range(count)]
    rng = streams.stream(f"mobility/{move.group}")
    if isinstance(move, RoadGraph):
        return road_walks(count, read_roads(move.roads), move.speed, move.pause, duration, rng)
    area = scenario.mobility.area  # type: ignore[union-attr]
    assert area is not None
    return random_waypoints(count, (area.width, area.height), move.speed, move.pause, duration, rng)


def _attachment(
    at: np.ndarray, gateway: np.ndarray, interruption_s: float, duration_s: float
) -> Attachment:
    ends = np.r_[at[1:], duration_s]
    handover = at[1:][gateway[1:] != NO_GATEWAY]
    periods = [
        (float(a), float(b))
        for a, b, g in zip(at, ends, gateway, strict=True)
        if g == NO_GATEWAY and b > a
    ]
    if interruption_s > 0:
        periods += [(float(h), float(h) + interruption_s) for h in handover]
    merged: list[tuple[float, float]] = []
    # An interruption too short to move the clock is no outage.
    for down, up in sorted(p for p in periods if p[1] > p[0]):
        if merged and down <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], up))
        else:
            merged.append((down, up))
    return Attachment(at, gateway, handover, merged)


class MobilityRun:
    """The mobile devices of one run and the hooks that apply their movement."""

    def __init__(self, scenario: Scenario, workload: Workload, streams: Streams) -> None:
        self.scenario = scenario
        self.devices = track_devices(scenario, streams)
        gateway = workload.gateway.copy()
        self.uncovered = np.zeros(workload.size, dtype=bool)
        self.on_device = np.zeros(workload.size, dtype=bool)  # answered there for coverage
        for d, rows in self._rows(workload):
            moves = self.devices[d]
            k = np.searchsorted(moves.at_s, workload.arrival_s[rows], side="right") - 1
            serving = moves.gateway[k]
            self.uncovered[rows] = serving == NO_GATEWAY
            gateway[rows] = np.where(serving == NO_GATEWAY, gateway[rows], serving)
        self.workload = dataclasses.replace(workload, gateway=gateway.astype(np.int16))

    def _rows(self, workload: Workload) -> list[tuple[int, np.ndarray]]:
        """(device, its request rows) for every mobile device with requests."""
        mobile = np.isin(workload.device, np.fromiter(self.devices, dtype=np.int64))
        rows = np.flatnonzero(mobile)
        if rows.size == 0:
            return []
        rows = rows[np.argsort(workload.device[rows], kind="stable")]
        devices, starts = np.unique(workload.device[rows], return_index=True)
        return list(zip(devices.tolist(), np.split(rows, starts[1:]), strict=True))

    def decide(self, decision: Decision, kinds: Kinds) -> Decision:
        """Requests out of coverage that would leave the device are answered by its last exit,
        where it runs its part; the others stay as they are (and are dropped, see ``cut_off``)."""
        device_exits = np.flatnonzero(kinds.exit_tier == Tier.DEVICE)
        if device_exits.size == 0:
            return decision
        leaves = decision.tier != Tier.DEVICE
        self.on_device = self.uncovered & leaves & ~decision.raw
        if not self.on_device.any():
            return decision
        tier, exit_index = decision.tier.copy(), decision.exit_index.copy()
        tier[self.on_device] = Tier.DEVICE
        exit_index[self.on_device] = int(device_exits[-1])
        return Decision(tier=tier, raw=decision.raw, exit_index=exit_index)

    def cut_off(self, workload: Workload, device: DeviceStage) -> None:
        """Drop what must leave a device out of coverage; pause the sends its radio's
        outages interrupt (first in, first out, as on its own link)."""
        drop = self.uncovered & (device.bits > 0) & (device.drop_reason == None)  # noqa: E711
        device.drop_reason[drop] = OUT_OF_COVERAGE
        device.bits[drop] = 0.0
        for column in (device.uplink_start_s, device.uplink_sent_s, device.uplink_end_s):
            column[drop] = np.nan
        for d, rows in self._rows(workload):
            moves = self.devices[d]
            rows = rows[~np.isnan(device.uplink_start_s[rows])]
            if not moves.outages or rows.size == 0:
                continue
            rows = rows[np.argsort(device.compute_end_s[rows], kind="stable")]
            service = device.uplink_sent_s[rows] - device.uplink_start_s[rows]
            delay = device.uplink_end_s[rows] - device.uplink_sent_s[rows]
            radio, free = moves.radio(), 0.0
            for row, send_s, delay_s in zip(rows.tolist(), service, delay, strict=True):
                start = radio.up_s(max(float(device.compute_end_s[row]), free))
                free = radio.finish_s(start, float(send_s))
                device.uplink_start_s[row], device.uplink_sent_s[row] = start, free
                device.uplink_end_s[row] = free + delay_s

    def receive(self, workload: Workload, answer_s: np.ndarray) -> np.ndarray:
        """When each answer reached its device, its reception paused while the radio is down."""
        answer_s = answer_s.copy()
        bits = self.scenario.network.answer_size
        downlink = np.array([g.radio.downlink for g in self.scenario.devices])
        for d, rows in self._rows(workload):
            moves = self.devices[d]
            rows = rows[np.isfinite(answer_s[rows])]
            if not moves.outages or rows.size == 0:
                continue
            radio = moves.radio()
            for row in rows.tolist():
                rx_s = bits / downlink[workload.group[row]]
                answer_s[row] = radio.finish_s(float(answer_s[row]) - rx_s, rx_s)
        return answer_s

    def finish_columns(self, columns: dict[str, np.ndarray]) -> None:
        """Name what coverage did to each request, and count the handovers in its life."""
        columns["gateway"][self.uncovered] = ""
        answered = columns["status"] == "answered_edge"
        reason = columns["reason"]
        reason[self.on_device & answered & (reason == "")] = OUT_OF_COVERAGE
        # A request's life: to its answer, to the end of the run if it is still pending,
        # and none at all if it was dropped (it ended where it was refused).
        answer = columns["t_answer_s"]
        end = np.where(np.isfinite(answer), answer, self.scenario.duration)
        end = np.where(columns["status"] == "dropped", columns["t_arrival_s"], end)
        handovers = columns["handovers"]
        for d, rows in self._rows(self.workload):
            times = self.devices[d].handover_s
            if times.size:
                arrival = columns["t_arrival_s"][rows]
                counts = np.searchsorted(times, end[rows], side="right")
                handovers[rows] = counts - np.searchsorted(times, arrival, side="right")

    def summary(self, columns: dict[str, np.ndarray]) -> dict[str, object]:
        """The run's mobility figures for ``summary.json``."""
        handovers = sum(int(m.handover_s.size) for m in self.devices.values())
        down_s = sum(b - a for m in self.devices.values() for a, b in m.outages)
        no_cover_s = sum(
            float(np.sum(np.diff(np.r_[m.at_s, self.scenario.duration])[m.gateway == NO_GATEWAY]))
            for m in self.devices.values()
        )
        status = columns["status"]
        handover = self.scenario.mobility.handover  # type: ignore[union-attr]
        return {
            "mobile_devices": len(self.devices),
            "handovers": handovers,
            "handovers_per_device_min": handovers
            / max(len(self.devices), 1)
            / (self.scenario.duration / 60.0),
            "interruption_s": handover.interruption,
            "in_flight": handover.in_flight,
            "out_of_coverage_device_s": no_cover_s,
            "radio_down_device_s": down_s,
            "requests_out_of_coverage": int(self.uncovered.sum()),
            "answered_on_device_out_of_coverage": int(
                (self.on_device & (status == "answered_edge")).sum()
            ),
            "dropped_out_of_coverage": int(
                ((status == "dropped") & (columns["reason"] == OUT_OF_COVERAGE)).sum()
            ),
            "requests_with_handover": int((columns["handovers"] > 0).sum()),
        }

"""What moving devices do to a run: the gateway each request leaves through, what happens
out of coverage, and the radio outages handovers cause.

The device's radio is down during each handover's ``interruption`` and while no gateway
covers it (an outage, as in ``fogsim.sim.failures``). A request that arrives out of coverage
and would leave the device is answered by the device's last exit where the device runs its
part (reason ``out_of_coverage``); a raw image, or a network without a device exit, leaves it
nothing to answer with, and the request is dropped (reason ``out_of_coverage``).

What becomes of a request in flight at a handover is the scenario's ``in_flight``:

- ``finish``: a request's gateway is its device's serving gateway when the request arrives;
  it keeps that path to the end, and its answer is forwarded to wherever the device is then.
  The device's sends pause over the radio's outages and resume, and an answer is received
  once the radio is up. These hooks act before the shared stages and after them, never
  inside: both engines see the same requests, so they stay identical.
- ``retry``: a request leaves through the gateway serving its device when the radio begins
  sending it. From then until its answer reaches the device it is in flight, and a change of
  gateway strictly inside that time abandons it: a send cut by a handover starts again from
  its first bit once the radio is up (here, on the device's own radio queue), and a request
  further on is taken off the old path and sent again from the device
  (``fogsim.sim.handover``, in SimPy only). An answer on its way back when the device hands
  over is abandoned too: the device, which has no answer, sends the request again. A request
  that must be sent, or sent again, while no gateway covers its device is lost in flight:
  answered then by the device's last exit where it ran its part, else dropped (reason
  ``out_of_coverage``). Every re-send counts in ``retries`` and its airtime in the radio's
  energy.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from fogsim.policies import Decision, Tier
from fogsim.scenario.mobility import PositionTrace, RandomWaypoint, RoadGraph
from fogsim.scenario.models import Scenario
from fogsim.sim.device import DeviceStage
from fogsim.sim.failures import Availability, availability, scripted_outages
from fogsim.sim.movement import (
    NO_GATEWAY,
    OUT_OF_COVERAGE,
    Sites,
    Track,
    attachments,
    random_waypoints,
    read_positions,
    read_roads,
    road_walks,
)
from fogsim.sim.radio import send_energy
from fogsim.sim.rng import Streams
from fogsim.sim.routes import Kinds
from fogsim.sim.workload import Workload

if TYPE_CHECKING:
    from fogsim.sim.handover import InFlight
    from fogsim.sim.records import Journeys


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
        self.retry = scenario.mobility.handover.in_flight == "retry"  # type: ignore[union-attr]
        self.devices = track_devices(scenario, streams)
        gateway = workload.gateway.copy()
        n = workload.size
        self.uncovered = np.zeros(n, dtype=bool)
        self.on_device = np.zeros(n, dtype=bool)  # answered there for coverage
        # in_flight: retry, per request: when it was lost in flight out of coverage, its
        # re-sends, their airtime, and what its (last) send took (see cut_off).
        self.lost_s = np.full(n, np.nan)
        self.resent = np.zeros(n, np.int16)
        self.extra_airtime_s = np.zeros(n)
        self.never_sent = np.zeros(n, dtype=bool)
        self.uplink_start_s = np.full(n, np.nan)
        self.send_s = np.full(n, np.nan)
        self.delay_s = np.full(n, np.nan)
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

    def radios(self) -> dict[int, Availability]:
        """Each moving device's radio, up or down (an adaptive policy sends as it goes)."""
        return {d: moves.radio() for d, moves in self.devices.items() if moves.outages}

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

    def cut_off(self, workload: Workload, device: DeviceStage) -> Workload:
        """Drop what must leave a device out of coverage; pause the sends its radio's
        outages interrupt (first in, first out, as on its own link). The workload, with
        (retry) each request's gateway the one its send went to."""
        drop = self.uncovered & (device.bits > 0) & (device.drop_reason == None)  # noqa: E711
        device.drop_reason[drop] = OUT_OF_COVERAGE
        device.bits[drop] = 0.0
        for column in (device.uplink_start_s, device.uplink_sent_s, device.uplink_end_s):
            column[drop] = np.nan
        if self.retry:
            self.workload = self._send_in_turn(workload, device)
            return self.workload
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
        return workload

    def _send_in_turn(self, workload: Workload, device: DeviceStage) -> Workload:
        """``in_flight: retry`` on each moving device's own radio, first in, first out: a send
        waits for the radio to be up, goes to the gateway serving then, and starts again
        from its first bit where a change of gateway cuts it; out of coverage, the request
        is lost (see the module's docstring)."""
        duration = self.scenario.duration
        gateway = workload.gateway.copy()
        for d, rows in self._rows(workload):
            moves = self.devices[d]
            rows = rows[~np.isnan(device.uplink_start_s[rows])]
            if rows.size == 0:
                continue
            rows = rows[np.argsort(device.compute_end_s[rows], kind="stable")]
            service = device.uplink_sent_s[rows] - device.uplink_start_s[rows]
            delay = device.uplink_end_s[rows] - device.uplink_sent_s[rows]
            self.send_s[rows], self.delay_s[rows] = service, delay
            radio, free = moves.radio(), 0.0
            at, serving = moves.at_s.tolist(), moves.gateway.tolist()
            for row, send_s, delay_s in zip(rows.tolist(), service, delay, strict=True):
                t, sends = max(float(device.compute_end_s[row]), free), 0
                while True:
                    if serving[bisect.bisect_right(at, t) - 1] == NO_GATEWAY and t < duration:
                        self._lose(row, t, sends, device)
                        break
                    start = radio.up_s(t)
                    sends += 1
                    i = bisect.bisect_right(at, start)
                    cut = at[i] if i < len(at) else math.inf
                    if cut < start + send_s and start < duration:
                        self.extra_airtime_s[row] += cut - start
                        t = free = cut
                        continue
                    # No outage can fall inside (each starts at a change): as under finish.
                    free = radio.finish_s(start, float(send_s))
                    device.uplink_start_s[row], device.uplink_sent_s[row] = start, free
                    device.uplink_end_s[row] = free + delay_s
                    if serving[i - 1] != NO_GATEWAY:  # else it starts after the run
                        gateway[row] = serving[i - 1]
                    break
                self.resent[row] = max(sends - 1, 0)
        self.uplink_start_s = device.uplink_start_s.copy()
        return dataclasses.replace(workload, gateway=gateway)

    def _lose(self, row: int, at_s: float, sends: int, device: DeviceStage) -> None:
        """The request must leave its device out of coverage: it is lost in flight then."""
        self.lost_s[row] = at_s
        if sends == 0:
            self.never_sent[row] = True
            device.bits[row] = 0.0
        for column in (device.uplink_start_s, device.uplink_sent_s, device.uplink_end_s):
            column[row] = np.nan

    def settle(self, in_flight: InFlight, journeys: Journeys) -> None:
        """Take in what handovers did to the requests on the shared stages (retry)."""
        in_flight.settle(journeys, self.workload)
        rows = journeys.rows
        self.resent[rows] += in_flight.resent
        self.extra_airtime_s[rows] += in_flight.extra_airtime_s
        lost = ~np.isnan(in_flight.lost_s)
        self.lost_s[rows[lost]] = in_flight.lost_s[lost]

    def resend_energy_j(self, workload: Workload, bits: np.ndarray) -> np.ndarray:
        """The radio's joules for every re-send's airtime, at the rate of the first send."""
        joules = np.zeros(workload.size)
        for g, group in enumerate(self.scenario.devices):
            rows = np.flatnonzero((workload.group == g) & (self.extra_airtime_s > 0))
            if rows.size:
                airtime = self.extra_airtime_s[rows]
                sent_bits = bits[rows] * airtime / self.send_s[rows]
                joules[rows] = send_energy(group.radio, sent_bits, airtime)
        return joules

    def receive(self, workload: Workload, answer_s: np.ndarray) -> np.ndarray:
        """When each answer reached its device, its reception paused while the radio is down
        (under ``retry`` no outage falls inside: the change of gateway that starts it would
        have abandoned the request; the same sum keeps the times bit for bit as ``finish``)."""
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
        columns["gateway"][self.uncovered | self.never_sent] = ""
        answered = columns["status"] == "answered_edge"
        reason = columns["reason"]
        reason[self.on_device & answered & (reason == "")] = OUT_OF_COVERAGE
        columns["retries"] += self.resent
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
                ((columns["reason"] == OUT_OF_COVERAGE) & (status == "answered_edge")).sum()
            ),
            "lost_in_flight": int((~np.isnan(self.lost_s)).sum()),
            "resends_at_handover": int(self.resent.sum()),
            "dropped_out_of_coverage": int(
                ((status == "dropped") & (columns["reason"] == OUT_OF_COVERAGE)).sum()
            ),
            "requests_with_handover": int((columns["handovers"] > 0).sum()),
        }

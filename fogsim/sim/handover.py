"""What a handover does to a moving device's requests on their way (``in_flight: retry``).

A request is in flight from when its device begins sending it until its answer reaches the
device. A handover, or a loss of coverage, strictly inside that time abandons it: its work on
the old path stops (withdrawn from the link it is crossing, or the server queue it waits in;
a batch in service stops if nothing else is in it), and the device sends it again, whole,
once its radio is up, through the gateway that serves it then; an answer still on its way
back is abandoned with it (the device has none, so it sends again). A re-send takes the radio
the time the first send took (its own radio's rate, not queued behind the device's other
sends, as a ``recovery`` retry does) and counts as a retry. A device out of coverage sends
nothing: the request is lost in flight, answered by the device's last exit where the device
ran its part, else dropped (reason ``out_of_coverage``).

The device's own sends are handled before the shared stages (``fogsim.sim.mobility``);
this is the part that runs with them, in SimPy: one process per moving device wakes at
each of its attachment changes and deals with its requests in flight then.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from fogsim.sim.movement import NO_GATEWAY
from fogsim.sim.routes import FOG_PAYLOAD, Plan, Planner
from fogsim.sim.shared import SharedStages, _Journey, _Route

if TYPE_CHECKING:
    from fogsim.sim.mobility import MobilityRun
    from fogsim.sim.records import Journeys
    from fogsim.sim.workload import Workload


class InFlight:
    """The shared-stage rows of one run's moving devices, and their handovers' effects."""

    def __init__(
        self,
        net: SharedStages,
        moving: MobilityRun,
        workload: Workload,
        journeys: Journeys,
        planner: Planner,
        kind: np.ndarray,
        hop_s: np.ndarray,
    ) -> None:
        self.net = net
        self.env = net.env
        self.moving = moving
        self.planner = planner
        self.duration_s = moving.scenario.duration
        requests = journeys.rows
        self.device = workload.device[requests].tolist()
        self.group = workload.group[requests].tolist()
        self.kind = kind[requests].tolist()
        self.gateway = workload.gateway[requests].tolist()  # of each row's latest attempt
        self.first_since = moving.uplink_start_s[requests].tolist()
        self.send_s = moving.send_s[requests].tolist()
        self.delay_s = moving.delay_s[requests].tolist()
        self.hop_s = hop_s.tolist()  # [group][gateway]: from the gateway to the device
        self.mobile = np.isin(workload.device[requests], list(moving.devices)).tolist()
        rows = len(self.device)
        self.resent = np.zeros(rows, np.int16)
        self.extra_airtime_s = np.zeros(rows)
        self.lost_s = np.full(rows, np.nan)
        self._routes: dict[Plan, _Route] = {}
        # Per device, the attempts in flight (a dict: insertion-ordered, so deterministic).
        self._flying: dict[int, dict[_Journey, None]] = {}
        self._resends: set[_Journey] = set()  # the attempts sent again at a handover
        self._radios = {d: moves.radio() for d, moves in moving.devices.items()}
        # Change times and gateways as lists: bisect beats numpy on one number at a time.
        self._at = {d: moves.at_s.tolist() for d, moves in moving.devices.items()}
        self._serving = {d: moves.gateway.tolist() for d, moves in moving.devices.items()}
        # Without fog servers the journeys hold no fog payloads, and no plan crosses a fog.
        bits = journeys.bits
        self._fog_bits = bits[:, FOG_PAYLOAD] if bits.shape[1] > FOG_PAYLOAD else np.empty(0)
        for d, moves in moving.devices.items():
            changes = moves.at_s[1:]
            changes = changes[changes < self.duration_s]
            if changes.size:
                self.env.process(self.watch(d, changes.tolist()))

    def moves(self, row: int) -> bool:
        """Whether row ``row`` belongs to a moving device."""
        return self.mobile[row]

    def track(self, journey: _Journey) -> bool:
        """Follow a row's first attempt as it reaches the shared stages; False where its
        device already changed gateway while the bits were on their way (it is sent again)."""
        row = journey.row
        if not self.mobile[row]:
            return True
        journey.since = self.first_since[row]
        at = self._at[self.device[row]]
        i = bisect.bisect_right(at, journey.since)
        if i < len(at) and at[i] <= self.env.now:
            self._abandon(journey, at[i])
            return False
        self._follow(self.device[row], journey)
        return True

    def _follow(self, device: int, journey: _Journey) -> None:
        self._flying.setdefault(device, {})[journey] = None

    def answered(self, journey: _Journey) -> None:
        """Let go of an attempt whose answer reaches its device before the device's next
        change of gateway (held to then, attempts would crowd the garbage collector)."""
        row = journey.row
        if not self.mobile[row]:
            return
        device = self.device[row]
        at = self._at[device]
        i = bisect.bisect_right(at, self.env.now)
        if i == len(at) or self._received(journey, at[i]):
            self._flying[device].pop(journey, None)

    def _received(self, journey: _Journey, at_s: float) -> bool:
        """Whether the attempt's answer reached its device by ``at_s``."""
        return journey.answered_s + self._hop(journey.row) <= at_s

    def watch(self, device: int, changes: list[float]) -> Generator[simpy.Event, Any, None]:
        """At each change of the device's gateway, abandon what it has in flight."""
        for at_s in changes:
            yield self.env.timeout(max(0.0, at_s - self.env.now))
            self._change(device, at_s)

    def _change(self, device: int, at_s: float) -> None:
        kept: dict[_Journey, None] = {}
        for journey in self._flying.pop(device, {}):
            if journey.withdrawn:
                continue
            if journey.since >= at_s:
                kept[journey] = None  # still waiting for the radio: it goes the new way
                continue
            if journey.answered_s < math.inf:
                if self._received(journey, at_s):
                    continue  # answered: no longer in flight
            elif journey.over:
                journey.withdraw()  # dropped or timed out: its old work stops too
                continue
            self._abandon(journey, at_s)
        self._flying[device] = {**kept, **self._flying.get(device, {})}  # and the re-sent

    def _hop(self, row: int) -> float:
        return self.hop_s[self.group[row]][self.gateway[row]]

    def _abandon(self, journey: _Journey, at_s: float) -> None:
        """Stop ``journey`` at ``at_s`` and send its request again (or lose it)."""
        journey.withdraw()
        row = journey.row
        self.net.times.answer_at_gateway_s[row] = math.nan
        if journey in self._resends:
            self._resends.discard(journey)
            # Cut while the radio was sending it: only the part sent so far was airtime.
            unsent = journey.since + self.send_s[row] - at_s
            self.extra_airtime_s[row] -= max(0.0, unsent)
        self.send_again(row, at_s, True)

    def send_again(self, row: int, at_s: float, handover: bool) -> None:
        """Send row ``row``'s request from its device at ``at_s``, once its radio is up,
        through the gateway then; out of coverage, it is lost. ``handover``: a handover's
        re-send (a ``recovery`` retry is counted and charged by the shared stages)."""
        device = self.device[row]
        at, serving = self._at[device], self._serving[device]
        if serving[bisect.bisect_right(at, at_s) - 1] == NO_GATEWAY:
            self.lost_s[row] = at_s
            if not handover:
                self.net.times.retries[row] -= 1  # the recovery's retry was never sent
            return
        start = self._radios[device].up_s(at_s)
        if start >= self.duration_s:
            return  # the run ends first: the request stays unfinished
        gateway = serving[bisect.bisect_right(at, start) - 1]
        journey = _Journey(self.net, self._route(row, gateway), row)
        journey.since = start
        if handover:
            self.resent[row] += 1
            self.extra_airtime_s[row] += self.send_s[row]
            self._resends.add(journey)
        self._follow(device, journey)
        ready = start + self.send_s[row] + self.delay_s[row]
        timer = self.env.timeout(max(0.0, ready - self.env.now))
        timer.callbacks.append(lambda _e: self._arrive(journey, gateway))

    def _arrive(self, journey: _Journey, gateway: int) -> None:
        """A re-sent request reaches its gateway: its times, plan and gateway from now on
        are this attempt's (one still on its way at the end keeps the last one's)."""
        self._resends.discard(journey)
        if journey.withdrawn:
            return
        self.gateway[journey.row] = gateway
        self.net.times.clear(journey.row)
        journey.start()

    def _route(self, row: int, gateway: int) -> _Route:
        plan = self.planner.plan(self.group[row], gateway, self.kind[row])
        if plan not in self._routes:
            payloads = self.net.payloads
            crosses_fog = any(step.payload == FOG_PAYLOAD for step in plan.steps)
            if crosses_fog and not payloads[FOG_PAYLOAD]:
                # A re-sent request may cross a fog server that no first plan crossed.
                payloads[FOG_PAYLOAD] = self._fog_bits.tolist()
            self._routes[plan] = _Route(self.net, plan)
        return self._routes[plan]

    def settle(self, journeys: Journeys, workload: Workload) -> None:
        """After the run: each row's plan and gateway are its latest attempt's."""
        plans = {plan: p for p, plan in enumerate(journeys.plans)}
        for row, gateway in enumerate(self.gateway):
            if not self.mobile[row]:
                continue
            plan = self.planner.plan(self.group[row], gateway, self.kind[row])
            if plan not in plans:
                plans[plan] = len(journeys.plans)
                journeys.plans.append(plan)
            journeys.plan[row] = plans[plan]
        workload.gateway[journeys.rows] = np.array(self.gateway, dtype=workload.gateway.dtype)


def width(
    moving: MobilityRun, workload: Workload, journeys: Journeys, planner: Planner, kind: np.ndarray
) -> int:
    """The most shared stages a moving device's request can cross, through any gateway its
    group may use (a re-send can take another gateway's plan)."""
    widest = journeys.width
    scenario = moving.scenario
    index = {g.name: i for i, g in enumerate(scenario.network.gateway_nodes)}
    requests = journeys.rows
    mobile = np.isin(workload.device[requests], list(moving.devices))
    pairs = np.unique(
        np.column_stack([workload.group[requests][mobile], kind[requests][mobile]]), axis=0
    )
    for group, request_kind in pairs.tolist():
        for name in scenario.devices[group].gateways:
            plan = planner.plan(group, index[name], request_kind)
            widest = max(widest, len(plan.steps))
    return widest

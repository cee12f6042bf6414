"""An adaptive policy in the simulation: each device decides, when it has run its part,
whether to answer with its own exit or send the request on, from what it has seen.

A device sees only its own requests: the round trips of its answers (from when it
decided to when the answer reached it) and the requests it sent that are still
unanswered. It learns of an answer when the answer reaches it, not before. The requests
the policy's fixed thresholds would answer on the device are answered there, as with
``early_exit``; every other one is decided during the run, in the order the devices
finish their parts. The device runs its whole part (exit heads included) either way, so
its compute is the same whatever it decides; a request sent on crosses the device's own
radio first in, first out behind its earlier sends, or enters the shared cell.

A moving device (``mobility``, ``in_flight: finish``) sends only while its radio is up,
pausing a send over an outage, and receives an answer once its radio is up, as
``fogsim.sim.mobility`` has it for the fixed policies; it sees the round trip it lived.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import simpy

from fogsim.errors import UserInputError
from fogsim.inference import InferenceOutcomes
from fogsim.policies import AdaptiveExit, Decision, Tier
from fogsim.scenario.models import Scenario
from fogsim.sim.device import DeviceStage, device_tables
from fogsim.sim.failures import Availability
from fogsim.sim.records import Journeys
from fogsim.sim.routes import Kinds
from fogsim.sim.shared import SharedStages
from fogsim.sim.workload import Workload


@dataclass(frozen=True, slots=True)
class Observation:
    """What one device knows when it decides."""

    rtt_s: float  # its answers' round trips, smoothed (0 before the first)
    oldest_wait_s: float  # how long its oldest unanswered request has waited (0: none)
    in_flight: int  # its requests sent and neither answered nor given up on


class DeviceViews:
    """Every device's view of its own requests, kept up to date as answers reach them."""

    def __init__(self, devices: int, rows: int, smoothing: float, window_s: float) -> None:
        self.smoothing = smoothing
        self.window_s = window_s
        self.rtt_s = np.zeros(devices)
        self.seen = np.zeros(devices, dtype=bool)
        self.in_flight = np.zeros(devices, dtype=np.int64)
        self.waiting: dict[int, deque[tuple[float, int]]] = {}
        self.settled = np.zeros(rows, dtype=bool)  # answered, or given up on
        self._news: list[tuple[float, int, int, float]] = []  # (at, row, device, rtt) heap

    def sent(self, device: int, row: int, now: float) -> None:
        self.waiting.setdefault(device, deque()).append((now, row))
        self.in_flight[device] += 1

    def answer_arrives(self, device: int, row: int, at_s: float, rtt_s: float) -> None:
        """An answer will reach ``device`` at ``at_s``; it learns of it only then."""
        heapq.heappush(self._news, (at_s, row, device, rtt_s))

    def observe(self, device: int, now: float) -> Observation:
        self._absorb(now)
        waiting = self.waiting.get(device)
        while waiting and (self.settled[waiting[0][1]] or waiting[0][0] < now - self.window_s):
            _, row = waiting.popleft()
            if not self.settled[row]:  # waited past the window: given up on
                self.settled[row] = True
                self.in_flight[device] -= 1
        oldest = now - waiting[0][0] if waiting else 0.0
        return Observation(float(self.rtt_s[device]), oldest, int(self.in_flight[device]))

    def _absorb(self, now: float) -> None:
        """Take in every answer that reached its device by ``now``."""
        news, weight = self._news, self.smoothing
        while news and news[0][0] <= now:
            _, row, device, rtt = heapq.heappop(news)
            if self.seen[device]:
                self.rtt_s[device] += weight * (rtt - self.rtt_s[device])
            else:
                self.rtt_s[device], self.seen[device] = rtt, True
            if not self.settled[row]:
                self.settled[row] = True
                self.in_flight[device] -= 1


class AdaptiveRun:
    """One run of an :class:`AdaptiveExit` policy: the requests it decides as the run
    goes, how they would travel, and afterwards what it decided."""

    def __init__(
        self,
        scenario: Scenario,
        outcomes: InferenceOutcomes,
        kinds: Kinds,
        workload: Workload,
        decision: Decision,
    ) -> None:
        policy = scenario.policy
        assert isinstance(policy, AdaptiveExit)
        self.scenario, self.policy, self.workload, self.decision = (
            scenario, policy, workload, decision
        )
        self.exits = np.flatnonzero(kinds.exit_tier == Tier.DEVICE)
        self.rule = policy.rule or outcomes.default_rule
        thresholds = policy.thresholds(outcomes)
        found = problems(scenario, kinds.exit_tier, self.rule, thresholds)
        if found:
            raise UserInputError(found[0][1])
        self.normal = thresholds[self.exits]
        table = outcomes.exit_entropy if self.rule == "entropy" else outcomes.exit_maxprob
        # By image and device exit, the level (see AdaptiveExit.level) above which the exit
        # is confident: its threshold, moved that far, passes the image's confidence.
        span = policy.degraded_threshold - self.normal
        with np.errstate(divide="ignore", invalid="ignore"):
            need = (table[:, self.exits].astype(np.float64) - self.normal) / span
        self.need = np.where(span != 0, need, np.inf)
        self.kinds = kinds

    def journeys(self, plan_journeys: Any, device: DeviceStage, kind: np.ndarray) -> Journeys:
        """Every request it may send on, ready when its device has run its part.

        ``plan_journeys(device, kind)`` is the engine's planner; the requests the fixed
        thresholds answer on the device send nothing and are left out by it.
        """
        at_decision = replace(device, uplink_end_s=device.compute_end_s)
        return plan_journeys(at_decision, kind)

    def feed(
        self,
        net: SharedStages,
        journeys: Journeys,
        last_hop_s: np.ndarray,
        radios: dict[int, Availability] | None = None,
    ) -> Generator[simpy.Event, Any, None]:
        """Decide each request when its device has run its part; send it on, or not.
        ``radios``: the moving devices' radios (up, or down for a handover or no coverage)."""
        env, scenario, workload = net.env, self.scenario, self.workload
        rows = journeys.rows
        count = rows.size
        devices = workload.device[rows].tolist()
        views = DeviceViews(scenario.device_count, count, self.policy.smoothing,
                            self.policy.window)
        decided_at = np.full(count, np.nan)
        hop = last_hop_s.tolist()
        radios = radios or {}
        rx_s = self._answer_airtime_s(rows)

        def on_answer(row: int, at_s: float) -> None:
            arrives = at_s + hop[row]
            radio = radios.get(devices[row])
            if radio is not None:  # as MobilityRun.receive has it
                arrives = radio.finish_s(arrives - rx_s[row], rx_s[row])
            views.answer_arrives(devices[row], row, arrives, arrives - decided_at[row])

        net.on_answer = on_answer
        if net.recovery is not None:
            net.resend_s = [0.0] * count
        dedicated = self._dedicated(rows)
        rate = self._uplink_bps(rows)
        delay = np.array([g.radio.delay for g in scenario.devices])[workload.group[rows]].tolist()
        bits = journeys.bits[:, 0].tolist()
        need = self.need[workload.image_id[rows]].tolist()
        exits = self.exits.tolist()
        level = self.policy.level
        self.exit_of = np.full(count, -1, dtype=np.int16)  # per row: the exit taken, or -1
        self.uplink = np.full((count, 3), np.nan)  # per row: radio start, sent, arrival
        free_at: dict[int, float] = {}
        routes = net.bind(journeys.plans, journeys.bits)
        plan_of = journeys.plan.tolist()
        for row, at in enumerate(journeys.ready_s.tolist()):
            if at > env.now:
                yield env.timeout(at - env.now)
            now, own = env.now, devices[row]
            decided_at[row] = now
            seen = views.observe(own, now)
            late = level(max(seen.rtt_s, seen.oldest_wait_s))
            # The first device exit confident at thresholds moved that far, if any (none
            # at 0: the fixed thresholds found none).
            taken = next((e for e, n in zip(exits, need[row], strict=True) if n < late), -1)
            if taken >= 0:
                self.exit_of[row] = taken
                continue
            views.sent(own, row, now)
            route = routes[plan_of[row]]
            if not dedicated[row]:
                net.enter(route, row)  # the shared cell is its first shared stage
                continue
            start = max(now, free_at.get(own, 0.0))
            radio = radios.get(own)
            if radio is None:
                sent = start + bits[row] / rate[row]
            else:
                start = radio.up_s(start)
                sent = radio.finish_s(start, bits[row] / rate[row])
            free_at[own] = sent
            self.uplink[row] = (start, sent, sent + delay[row])
            if net.recovery is not None:
                net.resend_s[row] = sent + delay[row] - start
            timer = env.timeout(sent + delay[row] - now)
            timer.callbacks.append(lambda _e, route=route, row=row: net.enter(route, row))

    def _dedicated(self, rows: np.ndarray) -> list[bool]:
        gateways = self.scenario.network.gateway_nodes
        own = np.array([g.access == "dedicated" for g in gateways])
        return own[self.workload.gateway[rows]].tolist()

    def _answer_airtime_s(self, rows: np.ndarray) -> list[float]:
        """Per row, the seconds its answer takes over its device's own downlink."""
        downlink = np.array([g.radio.downlink for g in self.scenario.devices])
        bits = self.scenario.network.answer_size
        return (bits / downlink[self.workload.group[rows]]).tolist()

    def _uplink_bps(self, rows: np.ndarray) -> list[float]:
        workload = self.workload
        kind = np.zeros(workload.size, dtype=np.int64)
        _, _, uplink_bps = device_tables(self.scenario, workload, self.kinds, kind)
        return uplink_bps[rows].tolist()

    def settle(self, device: DeviceStage, journeys: Journeys) -> Journeys:
        """Write what was decided into the decision and the device stage; the journeys of
        the requests sent on."""
        rows = journeys.rows
        exited = self.exit_of >= 0
        taken = rows[exited]
        self.decision.tier[taken] = Tier.DEVICE
        self.decision.exit_index[taken] = self.exit_of[exited]
        device.bits[taken] = 0.0
        for column in (device.uplink_start_s, device.uplink_sent_s, device.uplink_end_s):
            column[taken] = np.nan
        sent = ~exited & ~np.isnan(self.uplink[:, 0])
        device.uplink_start_s[rows[sent]] = self.uplink[sent, 0]
        device.uplink_sent_s[rows[sent]] = self.uplink[sent, 1]
        device.uplink_end_s[rows[sent]] = self.uplink[sent, 2]
        return journeys.only(~exited)


def problems(
    scenario: Scenario, exit_tiers: np.ndarray, rule: str, thresholds: np.ndarray
) -> list[tuple[tuple[str | int, ...], str]]:
    """What keeps the scenario's adaptive policy from running on a network whose exits sit
    at ``exit_tiers`` with these thresholds: (where in the scenario, why)."""
    policy = scenario.policy
    assert isinstance(policy, AdaptiveExit)
    found: list[tuple[tuple[str | int, ...], str]] = []
    on_device = np.asarray(exit_tiers) == Tier.DEVICE
    if not on_device.any():
        found.append(((("policy", "name")), (
            f"policy {policy.name}: the network has no exit on the device to adapt; "
            "use early_exit, or a checkpoint with a device exit"
        )))
    for g, group in enumerate(scenario.devices):
        if group.battery is not None:
            # Which requests a device sends is known only as the run goes, so the batteries
            # cannot be spent ahead of it as fogsim.sim.device does.
            found.append((("devices", g, "battery"), (
                f"devices[{g}].battery: policy {policy.name} does not model batteries yet; "
                "remove the battery or use a fixed policy"
            )))
    normal = np.asarray(thresholds, dtype=np.float64)[on_device]
    degraded = policy.degraded_threshold
    looser = degraded >= normal if rule == "entropy" else degraded <= normal
    if not looser.all():
        side = "at or above" if rule == "entropy" else "at or below"
        found.append((("policy", "degraded_threshold"), (
            f"policy.degraded_threshold ({degraded}) must be {side} the device exits' "
            f"threshold ({', '.join(f'{t:g}' for t in normal)}) under the {rule} rule, so "
            "that late answers let more requests exit on the device"
        )))
    return found

"""Requests as routes of stages: which links and servers a request crosses, with what work.

A request's kind says where it is answered and what runs where (see
``request_kinds``). Its device group, gateway and kind decide its plan: the
shared stages after the device's own compute and radio, each a transfer over a
link (carrying the device's payload, or the fog's once the fog part has run) or
a compute at a server (its work: the MACs of the part it runs, at the server's
throughput by precision).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fogsim.errors import UserInputError
from fogsim.inference import InferenceOutcomes
from fogsim.policies import Decision, Tier, exit_tiers
from fogsim.scenario.models import ServerProfile
from fogsim.topology import Topology

DEVICE_PAYLOAD, FOG_PAYLOAD = 0, 1


@dataclass(frozen=True, slots=True)
class Step:
    """One shared stage: a transfer over link ``name`` or a compute at server ``name``."""

    kind: Literal["transfer", "compute"]
    name: str
    payload: int = DEVICE_PAYLOAD  # transfers: which payload crosses
    work_s: float = 0.0  # computes: seconds of one worker's time, overhead excluded
    tier: int = Tier.CLOUD  # computes: the server's tier


@dataclass(frozen=True, slots=True)
class Plan:
    """The shared stages of one kind of request from one gateway, and the way back."""

    steps: tuple[Step, ...]
    back: tuple[str, ...]  # links the answer crosses back to the gateway, in order
    fog: str | None  # the fog server on the way, if any compute happens there


class Kinds:
    """Request kinds of a network: exit e answers (0..E-1), features to the cloud (E),
    the raw input to the cloud (E+1), the raw input to the fog (E+2)."""

    def __init__(self, outcomes: InferenceOutcomes) -> None:
        self.outcomes = outcomes
        self.n_exits = outcomes.exit_pred.shape[1]
        self.exit_tier = exit_tiers(outcomes)
        self.three_part = bool(outcomes.fog_ops)

    @property
    def features(self) -> int:
        return self.n_exits

    @property
    def raw_cloud(self) -> int:
        return self.n_exits + 1

    @property
    def raw_fog(self) -> int:
        return self.n_exits + 2

    @property
    def count(self) -> int:
        return self.n_exits + 3

    def of(self, decision: Decision) -> np.ndarray:
        """The kind of each request."""
        raw = np.where(decision.tier == Tier.FOG, self.raw_fog, self.raw_cloud)
        sent = np.where(decision.raw, raw, self.features)
        kind = np.where(decision.exit_index >= 0, decision.exit_index, sent)
        # The narrowest exact dtype: one byte a request, as a run holds it to its end.
        return kind.astype(np.int8 if self.count <= np.iinfo(np.int8).max else np.int32)

    def tier(self, kind: int) -> int:
        if kind < self.n_exits:
            return int(self.exit_tier[kind])
        return Tier.FOG if kind == self.raw_fog else Tier.CLOUD

    def device_ops(self, kind: int) -> dict[str, int]:
        """MACs the device runs for a request of this kind."""
        o = self.outcomes
        if kind < self.n_exits:
            return dict(o.edge_ops_to_exit[kind])
        return dict(o.edge_ops) if kind == self.features else {}

    def server_ops(self, kind: int) -> list[tuple[int, dict[str, int]]]:
        """(tier, MACs) of each server part, in order, for a request of this kind."""
        o = self.outcomes
        if kind == self.raw_fog:
            return [(Tier.FOG, dict(o.full_ops))]
        if kind == self.raw_cloud:
            return [(Tier.CLOUD, dict(o.full_ops))]
        if kind < self.n_exits:
            if self.exit_tier[kind] == Tier.DEVICE:
                return []
            return [(Tier.FOG, dict(o.fog_ops_to_exit[kind]))]
        fog = [(Tier.FOG, dict(o.fog_ops))] if self.three_part else []
        return [*fog, (Tier.CLOUD, dict(o.cloud_ops))]


class Planner:
    """Plans for (device group, gateway, kind), built once each and kept."""

    def __init__(self, topology: Topology, kinds: Kinds) -> None:
        self.topology = topology
        self.kinds = kinds
        self._plans: dict[tuple[int, int, int], Plan] = {}

    def plan(self, group: int, gateway: int, kind: int) -> Plan:
        key = (group, gateway, kind)
        if key not in self._plans:
            self._plans[key] = self._build(group, gateway, kind)
        return self._plans[key]

    def _build(self, group: int, gateway_index: int, kind: int) -> Plan:
        topology = self.topology
        gateway = topology.gateways[gateway_index]
        steps: list[Step] = []
        if gateway.access == "shared" and gateway.cell is not None:
            steps.append(Step("transfer", f"cell:{gateway.name}"))
        node, payload, fog = gateway.name, DEVICE_PAYLOAD, None
        for tier, ops in self.kinds.server_ops(kind):
            if tier == Tier.FOG:
                server = topology.fog_for(group, gateway.name)
                if server is None:
                    raise UserInputError(
                        f"devices[{group}].fog: the network runs a part on the fog, but "
                        f"no fog server serves gateway {gateway.name!r}; add one under fog:"
                    )
                fog = server
            else:
                server = topology.cloud_for(node)
                if server is None:
                    raise UserInputError(f"devices[{group}]: no route from {node!r} to a cloud")
            target = topology.node_of(server)
            route = topology.route(node, target) or []
            steps += [Step("transfer", link, payload) for link in route]
            spec = topology.fog[server] if tier == Tier.FOG else topology.clouds[server]
            work_s = _work_s(spec.profile, ops, server)
            steps.append(Step("compute", server, work_s=work_s, tier=tier))
            node, payload = target, FOG_PAYLOAD
        # The answer retraces the request's links; a shared cell is the device's last hop.
        # Without replies there is no way back: the request is over when its server is.
        links = [s.name for s in steps if s.kind == "transfer" and s.name in topology.links]
        back = tuple(reversed(links)) if topology.scenario.network.reply else ()
        return Plan(tuple(steps), back, fog)


def _work_s(profile: ServerProfile, ops: dict[str, int], server: str) -> float:
    try:
        return profile.seconds(ops)
    except ValueError as exc:
        raise UserInputError(
            f"server {server!r}: the network runs {', '.join(ops)} layers there, but its "
            f"profile has {exc}; give one: profile: {{base: ..., throughput: {{...}}}}"
        ) from None

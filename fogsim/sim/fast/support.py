"""Which runs the fast engine can solve exactly, and why not the others.

The fast engine solves each shared stage once over all its requests, which needs
routes without feedback and resources whose behaviour depends only on their own
arrivals at a constant rate. Anything else is refused up front, by name, and the
``auto`` engine runs SimPy instead: the fast engine never gives different numbers.
Mobility with ``in_flight: finish`` needs no refusal: it acts before and after the shared
stages, never inside them (``fogsim.sim.mobility``), and ``tests/test_mobility.py`` checks
both engines agree; ``in_flight: retry`` takes requests back from inside them, so it is
refused.
"""

from __future__ import annotations

from fogsim.errors import UserInputError
from fogsim.policies import AdaptiveExit
from fogsim.scenario.models import Scenario
from fogsim.scenario.network import LinkSpec, NetLink
from fogsim.scenario.rates import VaryingRate
from fogsim.topology import Topology


class NotExact(Exception):
    """The fast engine cannot reproduce SimPy exactly for this run; the message says why."""


class FastEngineUnsupported(UserInputError):
    """``--engine fast`` on a run that only SimPy can simulate exactly."""


def why_not_fast(scenario: Scenario, topology: Topology) -> str | None:
    """Why the fast engine cannot run ``scenario`` (None when it can), from the scenario alone.

    A plan (each device a design of its own) needs no refusal: the designs differ on the
    devices, before the shared stages, and all their requests go through one solve of the
    shared stages, as one design's would (``tests/test_optimize_plan_run.py`` checks both
    engines agree)."""
    if isinstance(scenario.policy, AdaptiveExit):
        return "its policy (adaptive_exit) decides each request from answers as they come back"
    mobility = scenario.mobility
    if mobility is not None and mobility.handover.in_flight == "retry":
        return (
            "its mobility re-sends requests in flight at handovers (in_flight: retry), "
            "taking them off the links and queues they were in"
        )
    if scenario.recovery is not None:
        return "its recovery block retries late or lost requests, feeding them back in"
    for gateway in topology.gateways:
        cell = gateway.cell if gateway.access == "shared" else None
        if cell is not None and (reason := _link_reason(f"the cell of {gateway.name!r}", cell)):
            return reason
    for name, link in topology.links.items():
        if reason := _link_reason(f"link {name!r}", link):
            return reason
        down = link.downlink
        if down is not None and (reason := _link_reason(f"the downlink of {name!r}", down)):
            return reason
    for server in [*scenario.fog, *scenario.clouds]:
        if server.failures is not None:
            return f"server {server.name!r} has failures (outages pause its batches)"
    return None


def _link_reason(what: str, spec: LinkSpec | NetLink) -> str | None:
    if isinstance(spec.bandwidth, VaryingRate):
        return f"{what} has a varying rate"
    if spec.failures is not None:
        return f"{what} has failures (outages pause its transfers)"
    return None

"""The resilience of a run: how much of what was asked was answered in time, what was
dropped and why, how often devices retried, and how long the fog was degraded.

The outage schedules are drawn again from the run's seed, by the same named streams the
simulation used (``failures/link/<link>``, ``failures/server/<server>/<worker>``), so the
figures do not depend on which engine ran the scenario.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fogsim.scenario.failures import Failures
from fogsim.scenario.models import Scenario
from fogsim.scenario.network import LinkSpec
from fogsim.scenario.rates import VaryingRate
from fogsim.sim.rng import Streams
from fogsim.topology import Topology

ANSWERED = ("answered_edge", "answered_fog", "answered_cloud")
DEGRADED_RATE = 0.5  # a link below this share of its nominal rate counts as degraded


def resilience(scenario: Scenario, frame: pd.DataFrame) -> dict[str, Any]:
    """``availability`` (answered within the deadline, or by the end of the run without
    one, over generated), drops by reason, retries, fallbacks and time spent degraded."""
    # Categorical columns compared as they are: cast to text, a million rows take a second.
    status = frame["status"]
    answered = status.isin(ANSWERED).to_numpy()
    in_time = answered.copy()
    if scenario.deadline is not None:
        # A deadline fallback is answered at the deadline: in time, by the device.
        in_time &= ~(frame["latency_s"].to_numpy() > scenario.deadline.latency)
    reason = frame["reason"]
    fallback = reason.isin(("deadline_fallback", "failure_fallback")).to_numpy()
    retries = frame["retries"].to_numpy()
    failure = frame["failure"]
    requests = len(frame)
    drops = reason[status == "dropped"].astype(str).value_counts()
    hit = failure[failure != ""].astype(str).value_counts().sort_index()
    return {
        "availability": float(in_time.sum()) / requests if requests else None,
        "answered_in_time": int(in_time.sum()),
        # Without the device's stand-in answers: what the policy's own path delivered.
        "availability_without_fallbacks": (
            float((in_time & ~fallback).sum()) / requests if requests else None
        ),
        "dropped_by_reason": {str(k): int(v) for k, v in drops.items()},
        "fallbacks": {
            "deadline": int((reason == "deadline_fallback").sum()),
            "failure": int((reason == "failure_fallback").sum()),
        },
        "retries": {
            "total": int(retries.sum()),
            "requests": int((retries > 0).sum()),
            "max": int(retries.max()) if requests else 0,
        },
        "hit_by_failures": {str(k): int(v) for k, v in hit.items()},
        "degraded_s": degraded_s(scenario),
    }


def degraded_s(scenario: Scenario) -> dict[str, Any]:
    """Seconds of the run during which some element was degraded (``any``), and each
    degraded element's own. A link is degraded while it is down or its rate is below half
    its nominal rate (``DEGRADED_RATE``); a server while at least one worker is down."""
    streams = Streams(scenario.seed)
    duration = scenario.duration
    elements: dict[str, list[tuple[float, float]]] = {}
    for name, link in Topology(scenario).links.items():
        specs = [(name, link.up)]
        if link.downlink is not None:
            specs.append((f"{name}:down", link.downlink))
        for key, spec in specs:
            periods = _slow_periods(spec, streams, key, duration)
            if spec.failures is not None:
                stream = f"failures/link/{key}"
                periods += _periods(spec.failures, streams, stream, duration)
            if periods:
                elements[key] = periods
    for server in [*scenario.fog, *scenario.clouds]:
        if server.failures is None:
            continue
        periods = []
        for worker in range(server.workers):
            stream = f"failures/server/{server.name}/{worker}"
            periods += _periods(server.failures, streams, stream, duration)
        elements[server.name] = periods
    every = [p for periods in elements.values() for p in periods]
    return {
        "any": _union_s(every),
        "by_element": {name: _union_s(periods) for name, periods in elements.items()},
    }


def _slow_periods(
    spec: LinkSpec, streams: Streams, name: str, duration_s: float
) -> list[tuple[float, float]]:
    """When a link's varying rate is below ``DEGRADED_RATE`` of its nominal rate."""
    if not isinstance(spec.bandwidth, VaryingRate):
        return []
    profile = spec.bandwidth.profile
    floor = DEGRADED_RATE * profile.nominal
    periods: list[tuple[float, float]] = []
    slow_since = None
    for at, rate in profile.changes(streams.stream(f"link-rate/{name}")):
        if at >= duration_s:
            break
        if rate < floor and slow_since is None:
            slow_since = at
        elif rate >= floor and slow_since is not None:
            periods.append((slow_since, at))
            slow_since = None
    if slow_since is not None:
        periods.append((slow_since, duration_s))
    return periods


def _periods(
    failures: Failures, streams: Streams, stream: str, duration_s: float
) -> list[tuple[float, float]]:
    """The element's outages that overlap the run, cut at its end."""
    periods = []
    for down, up in failures.outages(streams.stream(stream)):
        if down >= duration_s:
            break
        periods.append((down, min(up, duration_s)))
    return periods


def _union_s(periods: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of the periods."""
    total, reach = 0.0, -np.inf
    for down, up in sorted(periods):
        if up > reach:
            total += up - max(down, reach)
            reach = up
    return float(total)

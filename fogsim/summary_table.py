"""The headline figures of a run's summary as tables, for the terminal."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"))


def si(value: float | None, unit: str) -> str:
    """``value`` in plain notation with an SI prefix: 5.855e-07 J -> "585.5 nJ".

    Plain notation in every cell, so a column never mixes "0.0005855" with "2.287e+04".
    """
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0:
        return f"0 {unit}"
    scale, prefix = next(((s, p) for s, p in _PREFIXES if abs(value) >= s), _PREFIXES[-1])
    mantissa = value / scale
    decimals = 1 if abs(mantissa) >= 100 else 2 if abs(mantissa) >= 10 else 3
    return f"{mantissa:.{decimals}f} {prefix}{unit}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def headline_table(summary: dict[str, Any]) -> Table:
    """Counts, accuracy, latency and energy per inference, with notes where a figure needs one."""
    table = Table(title=f"{summary['scenario']} (seed {summary['seed']}, {summary['policy']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("note")
    rows = [*_count_rows(summary), *_resilience_rows(summary), *_mobility_rows(summary)]
    for row in [*rows, *_latency_rows(summary), *_energy_rows(summary)]:
        table.add_row(*row)
    if "engine" in summary:
        table.add_row("engine", summary["engine"], "what solved the shared stages")
    return table


def _count_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = [
        ("requests", f"{summary['requests']:,}", ""),
        ("answered", f"{summary['answered']:,}", ""),
        ("dropped", f"{summary['dropped']:,}", ""),
        ("unfinished at end", f"{summary['unfinished']:,}", ""),
        ("edge-exit rate", _percent(summary["edge_exit_rate"]), "of answered, by the policy"),
    ]
    for tier, share in summary.get("exit_fraction_by_tier", {}).items():
        if share:
            rows.append((f"  answered at the {tier}", _percent(share), "of answered"))
    rows.append(("accuracy", _percent(summary["accuracy"]), "of answered"))
    if summary.get("deadline_s") is not None:
        fallbacks = summary.get("deadline_fallbacks", 0)
        note = "answered on the device at the deadline"
        rows.append(("deadline fallbacks", f"{fallbacks:,}", note))
    return rows


def _resilience_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Availability, drops by reason, retries, fallbacks after failures, time degraded."""
    res = summary.get("resilience")
    if not res:
        return []
    within = "within the deadline" if summary.get("deadline_s") is not None else "by the end"
    rows = [("availability", _percent(res["availability"]), f"answered {within} / generated")]
    if res["availability_without_fallbacks"] != res["availability"]:
        note = "the device's fallback answers left out"
        rows.append(("  without fallbacks", _percent(res["availability_without_fallbacks"]), note))
    for reason, count in sorted(res["dropped_by_reason"].items()):
        rows.append((f"  dropped: {reason}", f"{count:,}", ""))
    retries = res["retries"]
    if retries["total"]:
        note = f"{retries['requests']:,} requests retried, at most {retries['max']} times each"
        rows.append(("retries", f"{retries['total']:,}", note))
    if res["fallbacks"]["failure"]:
        note = "every attempt failed: answered by the device's exit"
        rows.append(("failure fallbacks", f"{res['fallbacks']['failure']:,}", note))
    degraded = res["degraded_s"]
    if degraded["by_element"]:
        worst = max(degraded["by_element"].items(), key=lambda item: item[1])
        note = f"a link down or slow, or a server down; longest: {worst[0]}, {si(worst[1], 's')}"
        rows.append(("time degraded", si(degraded["any"], "s"), note))
    return rows


def _mobility_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Handovers and time out of coverage, where devices move."""
    moves = summary.get("mobility")
    if not moves:
        return []
    note = f"of {moves['mobile_devices']:,} devices; {moves['requests_with_handover']:,} in flight"
    rows = [("handovers", f"{moves['handovers']:,}", note)]
    if moves["requests_out_of_coverage"]:
        note = f"device time; {moves['requests_out_of_coverage']:,} requests arrived there"
        rows.append(("out of coverage", si(moves["out_of_coverage_device_s"], "s"), note))
    return rows


def _latency_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    latency, deadline = summary["latency_s"], summary.get("deadline_s")
    fallbacks = summary.get("deadline_fallbacks", 0)
    rows = []
    for key in ("p50", "p95", "p99"):
        value, note = latency[key], ""
        # Fallbacks are answered exactly at the deadline, so a percentile can sit on it.
        if deadline is not None and fallbacks and value is not None and _same(value, deadline):
            note = f"= the deadline: {fallbacks:,} fallbacks are answered at it"
        rows.append((f"latency {key}", si(value, "s"), note))
    return rows


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _energy_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    energy = summary["energy_j"]
    rows = [
        ("active energy / inference", si(energy.get("active"), "J"), "mean: compute + radio"),
        ("  compute", si(energy["compute"], "J"), "mean"),
        ("  radio", si(energy["radio"], "J"), "mean: send, receive, tail"),
        ("active energy p95", si(energy.get("active_p95"), "J"), ""),
        ("idle energy / inference", si(energy["idle"], "J"), "mean: idle power between requests"),
        ("device energy / inference", si(energy["mean"], "J"), "mean: active + idle"),
    ]
    for tier in ("fog", "cloud"):
        if energy.get(tier):
            rows.append((f"{tier} energy / inference", si(energy[tier], "J"), "mean: batch share"))
    fog_j = sum(
        float(s["energy_j"]) for s in summary.get("servers", {}).values() if s["tier"] == "fog"
    )
    if fog_j:
        rows.append(("fog energy", si(fog_j, "J"), "the whole run, idle workers included"))
    cloud_j = summary.get("cloud", {}).get("energy_j")
    if cloud_j is not None:
        rows.append(("cloud energy", si(cloud_j, "J"), "the whole run, idle workers included"))
    return rows


def group_energy_table(summary: dict[str, Any]) -> Table | None:
    """Mean device energy per answered request, by device group and component."""
    groups = summary.get("energy_by_group_j")
    if not groups:
        return None
    table = Table(title="device energy per answered request, mean")
    table.add_column("group")
    for name in ("compute", "radio", "active", "idle"):
        table.add_column(name, justify="right")
    for group, means in groups.items():
        table.add_row(group, *(si(means[k], "J") for k in ("compute", "radio", "active", "idle")))
    return table

"""What `fogsim partition`'s options mean: the tiers, the rows, the constraints, the table."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fogsim import units
from fogsim.errors import UserInputError
from fogsim.partition import network as tiers
from fogsim.partition import profiler
from fogsim.partition.search import Constraints, Rows
from fogsim.partition.times import tier_rows

_PIN = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*=\s*(\w+)\s*$")


def network(net_file: Path | None, scenario: Path | None) -> tiers.TierNetwork:
    """The tiers and hops, from NET.yaml or from a scenario (exactly one of them)."""
    if (net_file is None) == (scenario is None):
        raise UserInputError("give exactly one of --network NET.yaml and --scenario S.yaml")
    if net_file is not None:
        return tiers.load_network(net_file)
    from fogsim.partition.from_scenario import network_of_scenario

    return network_of_scenario(scenario)


def rows(net: tiers.TierNetwork, model: str | None, given: list[str]) -> Rows:
    """The rows to search: a model profiled here now, one profile measured here, or one
    profile per tier measured there (the others derived)."""
    measured: dict[str, profiler.Profile] = {}
    reference = None
    for item in given:
        tier, sep, path = item.partition("=")
        if not sep:
            if reference is not None:
                raise UserInputError(
                    "give one plain --profile P.parquet, or one --profile TIER=P.parquet per tier"
                )
            reference = profiler.load(Path(item))
            continue
        if tier not in tiers.TIERS:
            raise UserInputError(
                f"--profile {item}: unknown tier {tier!r}; use device, fog or cloud"
            )
        measured[tier] = profiler.load(Path(path))
    if model is not None:
        if reference is not None:
            raise UserInputError("give --model or a plain --profile, not both")
        from fogsim.partition import networks

        reference = profiler.profile(networks.build(model))
    return tier_rows(net, measured, reference)


def constraints(
    pins: list[str],
    exclude: list[str],
    max_upload: str | None,
    min_device_rows: int | None,
    max_energy: str | None,
    deadline: str | None,
    last: int,
) -> Constraints:
    """The constraints as the search takes them; each bad one is named with its fix."""
    return Constraints(
        pins=tuple(_pin(text, last) for text in pins),
        exclude=tuple(_tier(t, "--exclude") for t in exclude),
        max_upload_bytes=None if max_upload is None else _bytes(max_upload),
        min_device_rows=min_device_rows,
        max_device_energy_j=_quantity(max_energy, units.ENERGY, "--max-energy"),
        deadline_s=_quantity(deadline, units.TIME, "--deadline"),
    )


def _pin(text: str, last: int) -> tuple[int, int, str]:
    match = _PIN.match(text)
    if not match:
        raise UserInputError(f"--pin {text!r}: write FIRST-LAST=TIER, e.g. --pin 1-10=device")
    first, end, tier = int(match[1]), int(match[2]), _tier(match[3], "--pin")
    if not 1 <= first <= end <= last:
        raise UserInputError(f"--pin {text!r}: rows must satisfy 1 <= FIRST <= LAST <= {last}")
    return first, end, tier


def _tier(name: str, option: str) -> str:
    if name not in tiers.TIERS:
        raise UserInputError(f"{option}: unknown tier {name!r}; use device, fog or cloud")
    return name


def _bytes(text: str) -> float:
    if text.strip().isdigit():
        return float(text)
    try:
        return units.DATA.parse(text) / 8
    except ValueError as exc:
        raise UserInputError(f"--max-upload: {exc}") from None


def _quantity(text: str | None, dim: units.Dimension, option: str) -> float | None:
    if text is None:
        return None
    try:
        return dim.parse(text)
    except ValueError as exc:
        raise UserInputError(f"{option}: {exc}") from None


def print_table(candidates: list[dict], hops: list[str], feasible: int, radio: bool) -> None:
    """The ranked candidates as a table, best first."""
    table = Table(title=f"best {len(candidates)} of {feasible} feasible partitions")
    for name in ("rank", "cuts", "device", "fog", "cloud", "latency", "energy", "upload"):
        table.add_column(name, justify="right")
    for hop in hops:
        table.add_column(hop, justify="right")
    simulated = [c for c in candidates if "simulated" in c]
    if simulated:
        for name in ("sim p50", "sim p95", "sim energy"):
            table.add_column(name, justify="right")
    for rank, c in enumerate(candidates, 1):
        spans = [_span(c["tiers"][t], c["compute_s"][t]) for t in tiers.TIERS]
        table.add_row(
            str(rank),
            f"{c['cuts'][0]},{c['cuts'][1]}",
            *spans,
            f"{c['latency_s'] * 1e3:.4g} ms",
            f"{c['device_energy_j']:.4g} J",
            f"{c['upload_bytes']:,} B",
            *(f"{t * 1e3:.4g} ms" for t in c["transfer_s"]),
            *(_simulated(c.get("simulated")) if simulated else ()),
        )
    console = Console(width=max(140, Console().width))
    console.print(table)
    if not radio:
        console.print("device energy counts compute only: the network names no radio")
    if simulated:
        console.print(
            "sim: the candidate run under the scenario's devices (queueing and contention "
            "count; latency until the answer is back at the device; device energy of compute "
            "and radio, mean)"
        )


def _simulated(sim: dict | None) -> tuple[str, str, str]:
    if sim is None or sim["answered"] == 0:
        return ("-", "-", "-") if sim is None else ("none answered", "-", "-")
    return (
        f"{sim['latency_p50_s'] * 1e3:.4g} ms",
        f"{sim['latency_p95_s'] * 1e3:.4g} ms",
        f"{sim['device_energy_mean_j']:.4g} J",
    )


def _span(span: list[int] | None, seconds: float) -> str:
    return "-" if span is None else f"{span[0]}-{span[1]} ({seconds * 1e3:.3g} ms)"

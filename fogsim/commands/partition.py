"""`fogsim partition`: every way to spread a network over device, fog and cloud, ranked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fogsim.errors import UserInputError

if TYPE_CHECKING:
    from fogsim.partition.network import TierNetwork
    from fogsim.partition.search import Rows


def partition(
    network: Path | None = typer.Option(None, help="Tiers and hops (NET.yaml)."),
    scenario: Path | None = typer.Option(
        None, help="A scenario: its first device group, fog server and cloud."
    ),
    model: str | None = typer.Option(None, help="Profile this network here first."),
    profile: list[str] | None = typer.Option(
        None,
        help="A profile measured here (P.parquet; every tier derived from it), or one per "
        "tier measured there (device=D.parquet, fog=F.parquet, cloud=C.parquet).",
    ),
    objective: str = typer.Option("latency", help="latency, device-energy or weighted."),
    weight: float = typer.Option(
        0.5, min=0, max=1, help="weighted: share of latency (the rest is device energy)."
    ),
    pin: list[str] | None = typer.Option(
        None, help="Rows FIRST-LAST run on TIER: FIRST-LAST=TIER (repeatable)."
    ),
    exclude: list[str] | None = typer.Option(None, help="A tier that runs nothing (repeatable)."),
    max_upload: str | None = typer.Option(None, help="Most bytes the device sends: '200 kB'."),
    min_device_layers: int | None = typer.Option(
        None, min=0, help="Fewest rows the device runs (privacy)."
    ),
    max_energy: str | None = typer.Option(None, help="Most device energy: '0.5 J'."),
    deadline: str | None = typer.Option(None, help="Latest answer: '150 ms'."),
    top: int = typer.Option(10, min=1, help="Candidates shown."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    simulate: int = typer.Option(
        0,
        min=0,
        help="Run the best K candidates as fogsim runs of --scenario's devices (queueing "
        "and contention count); report p50/p95 latency and energy.",
    ),
    figure: Path | None = typer.Option(
        None, help="With --simulate: draw latency without queueing and under load (PNG, SVG)."
    ),
) -> None:
    """Enumerate every partition over device, fog and cloud (layer order kept, any tier may
    run nothing), cost each (compute, transfers, device energy, upload) and rank them."""
    from fogsim.partition import options, search

    if (simulate or figure) and scenario is None:
        raise UserInputError(
            "--simulate needs --scenario S.yaml: its devices are the load the candidates run "
            "under (a --network file has no devices)"
        )
    if figure is not None and not simulate:
        raise UserInputError("--figure draws the simulated candidates: add --simulate K")
    net = options.network(network, scenario)
    rows = options.rows(net, model, profile or [])
    if objective not in search.OBJECTIVES:
        raise UserInputError(
            f"unknown objective {objective!r}; use one of {', '.join(search.OBJECTIVES)}"
        )
    limits = options.constraints(
        pin or [], exclude or [], max_upload, min_device_layers, max_energy, deadline, rows.last
    )
    costs, order = search.rank(rows, net, limits, objective, weight)
    candidates = [costs.candidate(int(i), rows.last) for i in order[: max(top, simulate)]]
    if simulate:
        _simulate(candidates[:simulate], rows, net, scenario, figure)
    if json_out:
        typer.echo(json.dumps({"candidates": candidates, "best": candidates[0]}, indent=2))
    else:
        options.print_table(candidates, costs.hop_names, len(order), net.radio is not None)


def _simulate(
    candidates: list[dict], rows: Rows, net: TierNetwork, scenario: Path, figure: Path | None
) -> None:
    """Add a ``simulated`` object to each candidate: its run under the scenario's load."""
    from fogsim.heap import return_freed_memory
    from fogsim.partition import simulate as sim
    from fogsim.partition.from_scenario import load

    return_freed_memory()  # as `fogsim run` (fogsim.heap)
    loaded = load(scenario)
    for c in candidates:
        columns = sim.simulate(loaded, rows, net, (c["cuts"][0], c["cuts"][1]))
        c["simulated"] = sim.summary(columns)
    if figure is not None:
        from fogsim.partition import figure as draw

        draw.save(draw.under_load(candidates, title=loaded.name), figure)

"""`fogsim optimize`: a design per device (checkpoint and exit threshold), written as a plan."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fogsim.commands import options


def optimize(
    scenario: Path = typer.Argument(..., help="Scenario YAML file."),
    objective: str = typer.Option(
        "energy", help="What to minimise on each device: energy, latency or error."
    ),
    constraint: list[str] = typer.Option(
        [],
        metavar="METRIC<=VALUE",
        help="A bound every device's design keeps (repeatable): 'accuracy>=0.88', "
        "'latency<=50 ms', 'energy<=2 mJ', 'exit_rate>=0.5'.",
    ),
    method: str = typer.Option(
        "exhaustive", help="exhaustive (the referee), proxy (a proxy's ranking) or learned."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="The plan to write (Parquet)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    set_: list[str] = options.set_option("Override a scenario value, as `fogsim run`."),
    profile: Path | None = typer.Option(
        None,
        help="proxy: a folder of `fogsim profile` tables, CHECKPOINT.parquet for each "
        "checkpoint (default: models/profiles/), or one table for every checkpoint.",
    ),
) -> None:
    """Choose each device's design (a shipped checkpoint at an exit threshold) under the
    objective and constraints, by the chosen method, and write the per-device plan."""
    from fogsim.heap import return_freed_memory
    from fogsim.optimize.run import optimize_scenario

    return_freed_memory()  # as `fogsim run` (fogsim.heap)

    summary = optimize_scenario(
        scenario, objective, constraint, method, output, options.overrides(set_), profile
    )
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"{summary['method']}: {summary['devices']} devices, {len(summary['designs_used'])} "
        f"designs used, {summary['violations']} violations, mean {summary['objective']} "
        f"{summary['true_objective_mean']:.4g} (optimum {summary['optimum_objective_mean']:.4g}), "
        f"{summary['seconds']:.3g} s; wrote {output}"
    )

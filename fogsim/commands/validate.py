"""`fogsim validate`: check scenario files and report every error at once."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def validate(
    scenarios: list[Path] = typer.Argument(..., help="Scenario YAML files to check."),
    set_: list[str] = typer.Option(
        [],
        "--set",
        metavar="PATH=VALUE",
        help="Override a value in each scenario first: --set devices[0].count=100",
    ),
    max_memory: str | None = typer.Option(
        None,
        "--max-memory",
        metavar="SIZE",
        help="The memory limit a run is checked against, e.g. 8GB "
        "(default: half the memory available now).",
    ),
) -> None:
    """Check each SCENARIO as `fogsim run` would before simulating: fields, files, memory.

    Prints OK with the run's estimated size, or every error with its YAML path and
    line; exits with code 2 if any file has errors.
    """
    from fogsim.errors import FogsimError
    from fogsim.scenario import footprint, load_scenario
    from fogsim.scenario.overrides import plan_from_here

    limit = footprint.parse_memory(max_memory) if max_memory is not None else None
    errors = Console(stderr=True, soft_wrap=True)
    failed = 0
    for path in scenarios:
        try:
            overrides = [plan_from_here(assignment) for assignment in set_]
            scenario = load_scenario(path, overrides, preflight=True, max_memory=limit)
        except FogsimError as exc:
            failed += 1
            errors.print(f"[bold red]error:[/] {exc}", highlight=False)
            continue
        typer.echo(f"OK: {path} ({footprint.estimate(scenario)})")
    if failed:
        if len(scenarios) > 1:
            errors.print(f"{failed} of {len(scenarios)} files have errors", highlight=False)
        raise typer.Exit(2)

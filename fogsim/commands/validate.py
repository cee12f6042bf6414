"""`fogsim validate`: check scenario files and report every error at once."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from fogsim.commands import options


def validate(
    scenarios: list[Path] = typer.Argument(..., help="Scenario YAML files to check."),
    set_: list[str] = options.set_option(
        "Override a value in each scenario first: --set devices[0].count=100"
    ),
    max_memory: str | None = options.max_memory_option("Report a run"),
) -> None:
    """Check each SCENARIO as `fogsim run` would before simulating: fields, files, memory.

    Prints OK with the run's estimated size, or every error with its YAML path and
    line; exits with code 2 if any file has errors.
    """
    from fogsim.errors import FogsimError
    from fogsim.scenario import footprint, load_scenario

    limit = options.memory_limit(max_memory)
    errors = Console(stderr=True, soft_wrap=True)
    failed = 0
    for path in scenarios:
        try:
            scenario = load_scenario(
                path, options.overrides(set_), preflight=True, max_memory=limit
            )
        except FogsimError as exc:
            failed += 1
            errors.print(f"[bold red]error:[/] {exc}", highlight=False)
            continue
        typer.echo(f"OK: {path} ({footprint.estimate(scenario)})")
    if failed:
        if len(scenarios) > 1:
            errors.print(f"{failed} of {len(scenarios)} files have errors", highlight=False)
        raise typer.Exit(2)

"""`fogsim validate`: check a scenario file and report every error at once."""

from __future__ import annotations

from pathlib import Path

import typer


def validate(
    scenario: Path = typer.Argument(..., help="Scenario YAML file to check."),
) -> None:
    """Check SCENARIO; print OK, or every error with its YAML path and line (exit code 2)."""
    from fogsim.scenario import load_scenario

    load_scenario(scenario)
    typer.echo(f"OK: {scenario}")

"""`fogsim run`: simulate a scenario and write its run directory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from fogsim.commands import options


def run(
    scenario: Path = typer.Argument(..., help="Scenario YAML file."),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Run directory (default: outputs.dir, or runs/<name>)."
    ),
    set_: list[str] = options.set_option(
        "Override a scenario value: --set network.cloud_link.bandwidth='1 Gbps'"
    ),
    overwrite: bool = typer.Option(False, help="Replace an existing run directory."),
    max_memory: str | None = options.max_memory_option("Refuse a run"),
    quiet: bool = options.quiet_option(),
    engine: str = options.engine_option(
        "What solves the shared stages: simpy (the reference), fast (exact, without "
        "events, feed-forward runs only: else an error naming why) or auto (fast where it "
        "applies, else simpy). Both give identical results."
    ),
) -> None:
    """Simulate SCENARIO; write the resolved scenario, requests.parquet, stages.parquet,
    summary.json and figures."""
    from fogsim.errors import UserInputError
    from fogsim.heap import return_freed_memory
    from fogsim.runner import run as run_scenario
    from fogsim.sim.engine import ENGINES

    return_freed_memory()  # a run's freed arrays leave its peak (fogsim.heap)

    if engine not in ENGINES:
        raise UserInputError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
    result = run_scenario(
        scenario,
        out_dir=out,
        overrides=options.overrides(set_),
        overwrite=overwrite,
        progress=not quiet,
        max_memory=options.memory_limit(max_memory),
        engine=engine,
    )
    print_summary(result.summary)
    Console().print(f"wrote {result.directory}  ({result.wall_s:.2f} s simulating)")


def print_summary(summary: dict) -> None:
    """The headline figures of a run, and its device energy by group, as tables."""
    from fogsim.summary_table import group_energy_table, headline_table

    console = Console()
    console.print(headline_table(summary))
    groups = group_energy_table(summary)
    if groups is not None:
        console.print(groups)
    if "plan" in summary:
        from fogsim.optimize.planned import plan_table

        console.print(plan_table(summary["plan"]))

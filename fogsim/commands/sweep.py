"""`fogsim sweep`: run a grid of scenario overrides times seeds on Dask; rerun to resume."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from fogsim.commands import options


def sweep(
    source: Path = typer.Argument(..., help="Scenario YAML, or a sweep YAML naming one."),
    grid: list[str] = typer.Option(
        [],
        "--grid",
        metavar="PATH=V1,V2",
        help="A dimension: --grid devices[0].count=100,1000 (repeat for more).",
    ),
    replications: int = typer.Option(
        1, "-r", "--replications", help="Seeds per grid point: scenario seed + 0, 1, ..."
    ),
    seeds: str | None = typer.Option(None, help="Explicit seeds instead: --seeds 1,2,3"),
    set_: list[str] = options.set_option("Override applied to every point: --set duration='30 s'"),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Sweep directory (default: sweeps/<scenario name>)."
    ),
    scheduler: str | None = typer.Option(
        None, help="Address of a running Dask scheduler (default: a local cluster)."
    ),
    workers: int | None = typer.Option(
        None, min=1, help="Local cluster worker processes (default: one per core)."
    ),
    max_memory: str | None = options.max_memory_option("Refuse points"),
    quiet: bool = options.quiet_option("No progress bar."),
    engine: str = options.engine_option(
        "What solves each point's shared stages (see fogsim run --engine)."
    ),
) -> None:
    """Simulate every grid point x seed of SOURCE into one Parquet dataset and a points table.

    Rerunning the same command resumes: finished points are skipped, failed ones retried.
    """
    import warnings

    from fogsim.errors import UserInputError
    from fogsim.heap import return_freed_memory
    from fogsim.sweeping import sweep as run_sweep
    from fogsim.sweeping.execute import failure_report

    return_freed_memory()  # as `fogsim run` (fogsim.heap)

    explicit = None
    if seeds is not None:
        try:
            explicit = [int(seed) for seed in seeds.split(",") if seed.strip()]
        except ValueError:
            raise UserInputError(f"--seeds {seeds!r}: give integers, e.g. --seeds 1,2,3") from None
    with warnings.catch_warnings():
        # Failures are reported below, as the command's own message.
        warnings.simplefilter("ignore")
        result = run_sweep(
            source,
            grid,
            replications=replications,
            seeds=explicit,
            overrides=options.overrides(set_),
            out_dir=out,
            scheduler=scheduler,
            workers=workers,
            progress=not quiet,
            max_memory=options.memory_limit(max_memory),
            engine=engine,
        )
    console = Console(soft_wrap=True)
    done = int((result.points["status"] == "done").sum())
    console.print(f"{done} of {len(result.points)} points done; wrote {result.directory}")
    if len(result.failed):
        Console(stderr=True, soft_wrap=True).print(failure_report(result), highlight=False)
        raise typer.Exit(1)

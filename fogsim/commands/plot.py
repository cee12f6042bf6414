"""`fogsim plot`: draw the figures of a run directory or a sweep directory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def plot(
    directory: Path = typer.Argument(..., help="A run directory or a sweep directory."),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Where to write (default: DIR/figures)."
    ),
    compare: list[Path] = typer.Option(
        [],
        "--compare",
        help="Another run directory drawn beside DIRECTORY's run over time (accuracy and "
        "exit rate by group, e.g. a drift run without adaptation); repeatable.",
    ),
) -> None:
    """Draw the figures DIRECTORY's results allow (PNG, SVG); say why any others are not."""
    from fogsim.errors import UserInputError

    out = out or directory / "figures"
    if compare:
        paths, skipped = _compare(directory, compare, out), {}
    elif (directory / "sweep.yaml").is_file():
        paths, skipped = _sweep(directory, out)
    elif (directory / "summary.json").is_file():
        from fogsim.plots import run_figures
        from fogsim.results import load_run

        paths, skipped = run_figures(load_run(directory).requests, out), {}
    else:
        raise UserInputError(f"{directory} is neither a run directory nor a sweep directory")
    console = Console(soft_wrap=True, highlight=False)
    for path in paths:
        console.print(f"wrote {path}")
    for stem, reason in skipped.items():
        console.print(f"not drawn: {stem}: {reason}")


def _sweep(directory: Path, out: Path) -> tuple[list[Path], dict[str, str]]:
    from fogsim.plots import sweep_figures
    from fogsim.sweeping import load_sweep

    result = load_sweep(directory)
    return sweep_figures(result.points, result.read_requests, list(result.spec["grid"]), out)


def _compare(directory: Path, others: list[Path], out: Path) -> list[Path]:
    """The runs' accuracy and exit rate over time in one figure, named by their scenarios."""
    from fogsim.drift_figures import over_time
    from fogsim.errors import UserInputError
    from fogsim.plots import save
    from fogsim.results import load_run

    runs = {}
    for run_dir in [directory, *others]:
        if not (run_dir / "summary.json").is_file():
            raise UserInputError(f"--compare takes run directories; {run_dir} is not one")
        result = load_run(run_dir)
        name = result.scenario.name
        runs[name if name not in runs else str(run_dir)] = result.requests
    return save(over_time(runs), out, "over_time_compared")

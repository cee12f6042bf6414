"""`fogsim run`: simulate a scenario and write its run directory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def run(
    scenario: Path = typer.Argument(..., help="Scenario YAML file."),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Run directory (default: outputs.dir, or runs/<name>)."
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        metavar="PATH=VALUE",
        help="Override a scenario value: --set network.cloud_link.bandwidth='1 Gbps'",
    ),
    overwrite: bool = typer.Option(False, help="Replace an existing run directory."),
    max_memory: str | None = typer.Option(
        None,
        "--max-memory",
        metavar="SIZE",
        help="Refuse a run estimated to need more memory than this, e.g. 8GB "
        "(default: half the memory available now).",
    ),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bars."),
) -> None:
    """Simulate SCENARIO; write the resolved scenario, requests.parquet, summary.json, figures."""
    from fogsim.runner import run as run_scenario
    from fogsim.scenario.footprint import parse_memory

    limit = parse_memory(max_memory) if max_memory is not None else None
    result = run_scenario(
        scenario,
        out_dir=out,
        overrides=set_,
        overwrite=overwrite,
        progress=not quiet,
        max_memory=limit,
    )
    print_summary(result.summary)
    Console().print(f"wrote {result.directory}  ({result.wall_s:.2f} s simulating)")


def print_summary(summary: dict) -> None:
    """The headline figures of a run, as a table."""
    table = Table(title=f"{summary['scenario']} (seed {summary['seed']}, {summary['policy']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    latency = summary["latency_s"]
    energy = summary["energy_j"]

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f} %"

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{1e3 * value:.2f} ms"

    def mj(value: float | None) -> str:
        return "n/a" if value is None else f"{1e3 * value:.4g} mJ"

    rows = [
        ("requests", f"{summary['requests']:,}"),
        ("answered", f"{summary['answered']:,}"),
        ("dropped", f"{summary['dropped']:,}"),
        ("unfinished at end", f"{summary['unfinished']:,}"),
        ("edge-exit rate", pct(summary["edge_exit_rate"])),
        ("accuracy", pct(summary["accuracy"])),
        ("latency p50", ms(latency["p50"])),
        ("latency p95", ms(latency["p95"])),
        ("latency p99", ms(latency["p99"])),
        ("energy / inference, mean", mj(energy["mean"])),
        ("energy / inference, p95", mj(energy["p95"])),
        ("  of which compute (mean)", mj(energy["compute"])),
        ("  of which radio (mean)", mj(energy["radio"])),
        ("  of which idle (mean)", mj(energy["idle"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)

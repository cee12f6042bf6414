"""`fogsim data`: list the known datasets and where each resolves; inspect one split."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fogsim.errors import DatasetNotFoundError

app = typer.Typer(help="Datasets: where they are found, and what a split holds.",
                  no_args_is_help=True)


@app.command("list")
def list_datasets(
    split: str = typer.Option("test", help="Which split to look for (train or test)."),
) -> None:
    """Each known dataset and where its SPLIT resolves, or "missing" (nothing is downloaded)."""
    from fogsim.data import known_datasets, resolve_dataset
    from fogsim.data.registry import spec_for

    table = Table("name", f"{split} split from", "title")
    table.columns[1].overflow = "fold"
    for name in known_datasets():
        try:
            where = str(resolve_dataset(name, split=split))
        except DatasetNotFoundError:
            where = "[red]missing[/]"
        table.add_row(name, where, spec_for(name).title)  # type: ignore[union-attr]
    Console().print(table)


@app.command("info")
def info(
    name: str = typer.Argument(..., help="Registry name (see `fogsim data list`), or a label."),
    split: str = typer.Option("test", help="Which split to load (train or test)."),
    path: Path | None = typer.Option(
        None, help="Load from this file or folder instead of looking NAME up."
    ),
    cache: bool = typer.Option(True, help="Use the decoded-array cache for image zips."),
) -> None:
    """Load SPLIT of NAME and print its size, image shape, classes, fingerprint, load time."""
    from fogsim.data import load_dataset

    start = time.perf_counter()
    ds = load_dataset(name, path=path, split=split, progress=True, cache_decoded=cache)
    elapsed = time.perf_counter() - start
    counts = ds.class_counts()
    out = Console()
    out.print(f"[bold]{ds.name}[/] ({ds.split})  from {ds.source}", highlight=False)
    out.print(f"  images       {len(ds):,} x {'x'.join(map(str, ds.images.shape[1:]))} uint8")
    out.print(f"  classes      {len(ds.classes)}: " + ", ".join(
        f"{c} ({n:,})" for c, n in zip(ds.classes, counts, strict=True)), highlight=False)
    out.print(f"  fingerprint  {ds.fingerprint}")
    out.print(f"  load time    {elapsed:.2f} s")

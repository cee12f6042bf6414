"""`fogsim data`: list the known datasets and where each resolves; inspect one split."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from fogsim.errors import DatasetNotFoundError

app = typer.Typer(
    help="Datasets: where they are found, and what a split holds.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help, as in fogsim.cli: flags without a "<bool>" value
)


@app.command("list")
def list_datasets(
    split: str = typer.Option("test", help="Which split to look for (train or test)."),
) -> None:
    """Each known dataset and where its SPLIT resolves, or "missing" (nothing is downloaded)."""
    from fogsim.data import known_datasets, resolve_dataset
    from fogsim.data.registry import spec_for

    rows = [("name", "title", f"{split} split from")]
    for name in known_datasets():
        try:
            where = str(resolve_dataset(name, split=split))
        except DatasetNotFoundError:
            where = "missing"
        rows.append((name, spec_for(name).title, where))  # type: ignore[union-attr]
    # Plain lines, the path last: a table would fold long paths mid-word to fit the terminal.
    widths = [max(len(row[i]) for row in rows) for i in (0, 1)]
    for name, title, where in rows:
        typer.echo(f"{name:<{widths[0]}}  {title:<{widths[1]}}  {where}")


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
    out.print(
        f"  classes      {len(ds.classes)}: "
        + ", ".join(f"{c} ({n:,})" for c, n in zip(ds.classes, counts, strict=True)),
        highlight=False,
    )
    out.print(f"  fingerprint  {ds.fingerprint}")
    out.print(f"  load time    {elapsed:.2f} s")

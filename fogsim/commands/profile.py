"""`fogsim profile`: time every layer of a network here and size what each cut sends."""

from __future__ import annotations

from pathlib import Path

import typer


def profile(
    model: str = typer.Argument(
        ..., help="A fogsim checkpoint (.pt), a zoo network or a torchvision architecture."
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Profile to write (parquet); default MODEL.profile.parquet."
    ),
    repeats: int = typer.Option(10, min=1, help="Timed runs per layer (the median is kept)."),
    warmup: int = typer.Option(2, min=0, help="Untimed runs first."),
    threads: int | None = typer.Option(None, min=1, help="Torch threads (default: torch's)."),
) -> None:
    """Benchmark each layer here: median time and spread, output shape and bytes at each
    precision (raw and compressed), MACs, parameters and whether it is a cut point."""
    import torch
    from rich.console import Console

    from fogsim.heap import reuse_freed_memory
    from fogsim.partition import networks, profiler

    reuse_freed_memory()  # timed layers reuse freed memory, as a tuned runtime's would
    if threads is not None:
        torch.set_num_threads(threads)
    network = networks.build(model)
    result = profiler.profile(network, repeats=repeats, warmup=warmup)
    path = output or Path(f"{network.name}.profile.parquet")
    result.save(path)
    table = result.table
    Console().print(
        f"{network.name}: {len(table) - 1} layers, {int(table['cut_point'].sum())} cut points, "
        f"{table['macs'].sum() / 1e9:.3g} GMAC, {table['params'].sum() / 1e6:.3g} M parameters, "
        f"{table['time_s'].sum() * 1e3:.4g} ms here ({result.meta['machine']['threads']} "
        f"threads); wrote {path}",
        highlight=False,
    )

"""`fogsim eval`: accuracy, exit rate and edge energy of a hybrid checkpoint on the test split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from fogsim.data import Dataset
    from fogsim.nn.checkpoint import Checkpoint


def eval_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint (.pt) to evaluate."),
    threshold: float | None = typer.Option(None, help="Exit threshold (default: the card's)."),
    rule: str | None = typer.Option(None, help="Exit rule: entropy or maxprob (default: card's)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    reference: Path | None = typer.Option(
        None, help="fp32 reference checkpoint, run whole at the edge, for the energy ratio."
    ),
    energy_table: str | None = typer.Option(
        None, help="Energy-per-op table (default: the file's)."
    ),
    batch_size: int = typer.Option(512, min=1, help="Images per inference batch."),
    dataset: str | None = typer.Option(
        None,
        help="Dataset name (`fogsim data list`) or path (folder, zip or tar); default: the one "
        "the card names.",
    ),
    split: str = typer.Option("test", help="Split to evaluate on: test or train."),
    allow_dataset_mismatch: bool = typer.Option(
        False,
        "--allow-dataset-mismatch",
        help="Evaluate although the dataset's name or class names differ from the card's.",
    ),
) -> None:
    """Evaluate CHECKPOINT on its dataset's test split (or --dataset, --split): edge exit, cloud
    and hybrid accuracy, exit rate, edge arithmetic energy per image, and the exit-rate/accuracy
    curve. A dataset that differs from the card's is refused unless --allow-dataset-mismatch."""
    from fogsim.errors import UserInputError
    from fogsim.inference import run_inference
    from fogsim.nn.checkpoint import load_checkpoint, require_fit
    from fogsim.nn.hybrid import EXIT_RULES
    from fogsim.nn.report import evaluation_report

    ckpt = load_checkpoint(checkpoint)
    rule = rule or ckpt.default_rule
    if rule not in EXIT_RULES:
        raise UserInputError(f"--rule {rule!r}: use one of {', '.join(EXIT_RULES)}")
    if rule != ckpt.default_rule and threshold is None:
        raise UserInputError(f"--rule {rule} differs from the card's; give its --threshold too")
    threshold = ckpt.default_threshold if threshold is None else threshold
    data = _load_dataset(dataset, split, ckpt)
    checked = [ckpt] if reference is None else [ckpt, load_checkpoint(reference)]
    warnings = [
        w
        for c in checked
        for w in require_fit(
            c,
            data,
            allow_mismatch=allow_dataset_mismatch,
            how_to_insist="pass --allow-dataset-mismatch",
        )
    ]
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    progress = not json_out
    outcomes = run_inference(checkpoint, data, batch_size=batch_size, progress=progress)
    ref = None
    if reference is not None:
        ref = run_inference(reference, data, batch_size=batch_size, progress=progress)
    report = evaluation_report(
        outcomes, rule=rule, threshold=threshold, table=energy_table, reference=ref
    )
    report["checkpoint"] = str(checkpoint)
    report["dataset"] = data.name
    report["split"] = data.split
    report["dataset_warnings"] = [str(w) for w in warnings]
    if json_out:
        typer.echo(json.dumps(report))
    else:
        _print_tables(report)


def _load_dataset(value: str | None, split: str, ckpt: Checkpoint) -> Dataset:
    """--dataset as a registered name or a path; without it, the dataset the card names."""
    from fogsim.data import known_datasets, load_dataset
    from fogsim.errors import CheckpointError, UserInputError

    if value is None:
        name, path = ckpt.card.get("dataset"), ckpt.card.get("dataset_path")
        if isinstance(path, str) and Path(path).exists():
            return load_dataset(name if isinstance(name, str) else None, path=path, split=split)
        if not isinstance(name, str) or not name:
            raise CheckpointError(f"{ckpt.path}: its card names no dataset; pass --dataset")
        return load_dataset(name, split=split)
    if value in known_datasets():
        return load_dataset(value, split=split)
    if Path(value).exists():
        return load_dataset(path=value, split=split)
    raise UserInputError(
        f"--dataset {value!r} is neither a known dataset ({', '.join(known_datasets())}) "
        "nor an existing file or folder"
    )


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}x"


def _print_tables(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    acc = r["accuracy"]
    summary = Table(
        title=f"{r['checkpoint']} on {r['n_images']} {r['split']} images of {r['dataset']}"
    )
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    edge = "n/a" if acc["edge"] is None else f"{acc['edge']:.4f}"
    rows = [
        ("rule / threshold", f"{r['rule']} / {r['threshold']:.4g}"),
        ("exit rate", f"{r['exit_rate']:.4f}"),
        ("accuracy: edge exit alone", edge),
        ("accuracy: cloud path", f"{acc['cloud']:.4f}"),
        ("accuracy: hybrid", f"{acc['hybrid']:.4f}"),
        # Multiply-adds alone (the seed paper's measure), not a device's energy: see energy.py.
        ("edge arithmetic energy / image", f"{r['edge_energy_per_image_j'] * 1e6:.4g} uJ"),
        ("fp32 reference, arithmetic", f"{r['reference_edge_energy_per_image_j'] * 1e6:.4g} uJ"),
        ("arithmetic energy ratio (reference / edge)", f"{r['edge_energy_ratio']:.3g}x"),
        (
            "hybrid compute energy / image (edge + cloud if offloaded)",
            f"{r['hybrid_compute_energy_per_image_j'] * 1e6:.4g} uJ",
        ),
        ("compute energy reduction (reference / hybrid)", _ratio(r["compute_energy_reduction"])),
        (
            "split tensor (raw / mean compressed)",
            f"{r['feature_bytes']} B / {r['mean_compressed_feature_bytes']:.1f} B",
        ),
    ]
    if "reference_accuracy" in r:
        rows.append(("reference accuracy", f"{r['reference_accuracy']:.4f}"))
    for row in rows:
        summary.add_row(*row)
    curve = Table(title=f"exit rate vs accuracy ({r['rule']} threshold)")
    for col in ("threshold", "exit rate", "hybrid accuracy", "edge arithmetic energy (uJ)"):
        curve.add_column(col, justify="right")
    for p in r["curve"]:
        curve.add_row(
            f"{p['threshold']:.3f}",
            f"{p['exit_rate']:.3f}",
            f"{p['hybrid_accuracy']:.4f}",
            f"{p['edge_energy_per_image_j'] * 1e6:.3f}",
        )
    console = Console()
    console.print(summary)
    console.print(curve)

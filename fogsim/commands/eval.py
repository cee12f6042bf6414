"""`fogsim eval`: accuracy, exit rate and edge energy of a hybrid checkpoint on the test split,
overall and at every tier (device, fog, cloud)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from fogsim.data import Dataset
    from fogsim.nn.checkpoint import Checkpoint


def eval_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint (.pt) to evaluate."),
    threshold: list[str] | None = typer.Option(
        None,
        help="Exit threshold: one for every exit, or one per exit (repeat the option or give a "
        "comma list, in exit order); default: the card's, per exit.",
    ),
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
    split: str = typer.Option(
        "test",
        help="Split to evaluate on: test, train, or holdout (the training images the card's "
        "recipe kept out of training, on which its thresholds and kept epoch were chosen: "
        "compare networks there, not on test).",
    ),
    allow_dataset_mismatch: bool = typer.Option(
        False,
        "--allow-dataset-mismatch",
        help="Evaluate although the dataset's name or class names differ from the card's.",
    ),
) -> None:
    """Evaluate CHECKPOINT on its dataset's test split (or --dataset, --split): exit, cloud
    and hybrid accuracy, exit rate, the same at every tier (device, fog, cloud), device
    arithmetic energy per image, and the exit-rate/accuracy curve. `--split holdout` gives the
    same on the images its training held out, where two networks are compared without
    choosing on the test split. A dataset that differs from the card's is refused unless
    --allow-dataset-mismatch."""
    from fogsim.errors import UserInputError
    from fogsim.heap import reuse_freed_memory
    from fogsim.inference import run_inference
    from fogsim.nn.checkpoint import load_checkpoint, require_fit
    from fogsim.nn.hybrid import EXIT_RULES
    from fogsim.nn.report import evaluation_report
    from fogsim.nn.training_cost import training_from_card

    reuse_freed_memory()  # batches reuse the last batch's memory (fogsim.heap)
    ckpt = load_checkpoint(checkpoint)
    rule = rule or ckpt.default_rule
    if rule not in EXIT_RULES:
        raise UserInputError(f"--rule {rule!r}: use one of {', '.join(EXIT_RULES)}")
    if rule != ckpt.default_rule and not threshold:
        raise UserInputError(f"--rule {rule} differs from the card's; give its --threshold too")
    thresholds = _thresholds(threshold, ckpt)
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
        outcomes, rule=rule, threshold=thresholds, table=energy_table, reference=ref
    )
    report["checkpoint"] = str(checkpoint)
    report["dataset"] = data.name
    report["split"] = data.split
    report["dataset_warnings"] = [str(w) for w in warnings]
    # What training the network cost (its card's, or counted from an older card's recipe).
    training = training_from_card(ckpt.card, ckpt.build())
    if training is not None:
        report["training"] = training
    if json_out:
        typer.echo(json.dumps(report))
    else:
        _print_tables(report)


def _thresholds(values: list[str] | None, ckpt: Checkpoint) -> float | list[float]:
    """--threshold as one number for every exit or one per exit; the card's without it."""
    from fogsim.errors import UserInputError

    n_exits = len(ckpt.build().exit_points)
    if not values:
        return list(ckpt.default_thresholds(n_exits))
    items = [item.strip() for value in values for item in value.split(",")]
    numbers = []
    for item in items:
        try:
            number = float(item)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise UserInputError(
                f"--threshold {item!r} is not a finite number; give one threshold for every "
                "exit, or one per exit (repeat --threshold, or separate them with commas)"
            )
        numbers.append(number)
    if len(numbers) == 1:
        return numbers[0]
    if len(numbers) != n_exits:
        raise UserInputError(
            f"--threshold: {len(numbers)} thresholds for the {n_exits} exit(s) of "
            f"{ckpt.path.name}; give one for every exit, or exactly one per exit in exit order"
        )
    return numbers


def _load_dataset(value: str | None, split: str, ckpt: Checkpoint) -> Dataset:
    """--split of --dataset; holdout is the card recipe's held-out part of the train split."""
    from fogsim.errors import UserInputError

    if split not in ("test", "train", "holdout"):
        raise UserInputError(f"--split {split!r}: use test, train or holdout")
    if split != "holdout":
        return _load_split(value, split, ckpt)
    from fogsim.nn.setup import held_out_images

    return held_out_images(_load_split(value, "train", ckpt), ckpt.card, str(ckpt.path))


def _load_split(value: str | None, split: str, ckpt: Checkpoint) -> Dataset:
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


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _print_tables(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    acc = r["accuracy"]
    summary = Table(
        title=f"{r['checkpoint']} on {r['n_images']} {r['split']} images of {r['dataset']}"
    )
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    thresholds = ", ".join(
        f"{t:.4g} ({tier})" for t, tier in zip(r["thresholds"], r["exit_tiers"], strict=True)
    )
    rows = [
        ("rule / threshold per exit", f"{r['rule']} / {thresholds or 'no exits'}"),
        ("exit rate", f"{r['exit_rate']:.4f}"),
        ("accuracy: last exit alone", _pct(acc["edge"])),
        ("accuracy: cloud path", f"{acc['cloud']:.4f}"),
        ("accuracy: hybrid", f"{acc['hybrid']:.4f}"),
        # Multiply-adds alone (the seed paper's measure), not a device's energy: see energy.py.
        ("device arithmetic energy / image", f"{r['edge_energy_per_image_j'] * 1e6:.4g} uJ"),
        ("fp32 reference, arithmetic", f"{r['reference_edge_energy_per_image_j'] * 1e6:.4g} uJ"),
        ("arithmetic energy ratio (reference / device)", f"{r['edge_energy_ratio']:.3g}x"),
        (
            "hybrid compute energy / image (every tier an image reaches)",
            f"{r['hybrid_compute_energy_per_image_j'] * 1e6:.4g} uJ",
        ),
        ("compute energy reduction (reference / hybrid)", _ratio(r["compute_energy_reduction"])),
        (
            "device's features (raw / mean compressed)",
            f"{r['feature_bytes']} B / {r['mean_compressed_feature_bytes']:.1f} B",
        ),
    ]
    if r["fog_feature_bytes"] is not None:
        rows.append(
            (
                "fog's features (raw / mean compressed)",
                f"{r['fog_feature_bytes']} B / {r['mean_compressed_fog_feature_bytes']:.1f} B",
            )
        )
    if "training" in r:
        t = r["training"]
        rows += [
            (
                f"training ({t['method']}) vs fp32: peak parameter bytes",
                f"{t['peak_param_bytes']} / {t['fp32_peak_param_bytes']}",
            ),
            (
                "training GEMM / parameter-movement energy (J) vs fp32",
                f"{t['gemm_energy_j']:.4g} / {t['param_movement_energy_j']:.4g} vs "
                f"{t['fp32_gemm_energy_j']:.4g} / {t['fp32_param_movement_energy_j']:.4g}",
            ),
        ]
    if "reference_accuracy" in r:
        rows.append(("reference accuracy", f"{r['reference_accuracy']:.4f}"))
    for row in rows:
        summary.add_row(*row)
    tiers = Table(title="by tier (accuracy: of the answers given there; alone: on every image)")
    for col in ("tier", "exits", "exit rate", "accuracy", "accuracy alone", "energy (uJ)"):
        tiers.add_column(col, justify="right")
    for name, t in r["tiers"].items():
        tiers.add_row(
            name,
            ", ".join(str(e) for e in t["exits"]) or "-",
            f"{t['exit_rate']:.4f}",
            _pct(t["accuracy"]),
            _pct(t["accuracy_alone"]),
            f"{t['energy_per_image_j'] * 1e6:.4g}",
        )
    curve = Table(title=f"exit rate vs accuracy ({r['rule']} threshold, the same at every exit)")
    # The seed paper's figure at each threshold (against `reference`: --reference, or the same
    # network all fp32), to read beside its 5.5x.
    for col in (
        "threshold",
        "exit rate",
        "hybrid accuracy",
        "device arithmetic energy (uJ)",
        "hybrid compute energy (uJ)",
        "compute energy reduction",
    ):
        curve.add_column(col, justify="right")
    for p in r["curve"]:
        curve.add_row(
            f"{p['threshold']:.3f}",
            f"{p['exit_rate']:.3f}",
            f"{p['hybrid_accuracy']:.4f}",
            f"{p['edge_energy_per_image_j'] * 1e6:.3f}",
            f"{p['hybrid_compute_energy_per_image_j'] * 1e6:.3f}",
            _ratio(p["compute_energy_reduction"]),
        )
    console = Console()
    console.print(summary)
    console.print(tiers)
    console.print(curve)

"""The markdown model card shipped next to each weight file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fogsim.energy import compute_energy_j, default_table, energy_sources
from fogsim.nn.checkpoint import load_checkpoint
from fogsim.nn.ops import count_ops


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _training(card: dict[str, Any]) -> str:
    recipe = card.get("recipe", {})
    parts = [f"{card['epochs']} epochs on {card['train_images']} train images"]
    if recipe.get("init_from"):
        sha = card.get("init_from_sha256", "")[:12]
        parts.append(f"starting from the weights of `{recipe['init_from']}` (sha256 `{sha}...`)")
    if recipe.get("distill"):
        d = recipe["distill"]
        sha = card.get("teacher_sha256", "")[:12]
        parts.append(
            f"distilled from `{d['teacher']}` (sha256 `{sha}...`, weight {d['weight']}, "
            f"temperature {d['temperature']})"
        )
    # Cards from before the bf16 probe record only what the recipe asked for.
    autocast = card.get("autocast", recipe.get("autocast"))
    if autocast:
        parts.append(f"{autocast} convolutions (autocast; weights kept in fp32)")
    elif recipe.get("autocast"):
        parts.append(f"fp32 convolutions ({recipe['autocast']} autocast crashes on that CPU)")
    return (
        "; ".join(parts) + ". The epochs are a budget set by a 2-core CPU machine, not by "
        "convergence: more epochs (raise `epochs` in the recipe and retrain, e.g. with "
        "`--device cuda`) would raise the accuracies below. An interrupted run resumes from "
        "its last completed epoch."
    )


def card_markdown(card: dict[str, Any], checkpoint: Path) -> str:
    """Render a checkpoint's card, with op counts and edge energy from its network."""
    ckpt = load_checkpoint(checkpoint)
    ops = count_ops(ckpt.build())
    table = default_table()
    m, h = card["test_metrics"], card["holdout_metrics"]
    edge_j = compute_energy_j(ops.edge.macs, table)
    fp32_j = compute_energy_j({"fp32": sum(ops.full_macs.values())}, table)
    lines = [
        f"# {card['name']}",
        "",
        f"`{card['architecture']}` on **{card['dataset']}**: "
        f"edge weights {card['weight_precision']}, "
        f"edge activations {card['act_precision']}, split after block {card['split']}, "
        f"exit(s) after block(s) {card['exits']} "
        f"({card.get('recipe', {}).get('exit_head') or 'linear'} exit head); "
        "the cloud part is fp32.",
        "",
        f"- file: `{checkpoint.name}` (sha256 `{ckpt.sha256}`)",
        f"- input: {'x'.join(map(str, ckpt.input_shape))} images (H x W x C)"
        + (f" from `{card['dataset_path']}`" if card.get("dataset_path") else ""),
        f"- trained with: `{card['command']}` at git commit `{card['git_commit']}`",
        f"- training: {_training(card)}",
        f"- default exit rule: {card['default_rule']} < {card['default_threshold']:.4f} "
        f"(chosen on {card['threshold_chosen_on']}; never on the test split)",
        "",
        f"## Test split ({card['dataset']}, fingerprint `{card['dataset_fingerprint'][:16]}`)",
        "",
        "| metric | test | held-out train |",
        "|---|---|---|",
        *[
            f"| accuracy, {label} | {_pct(m['accuracy'][k])} | {_pct(h['accuracy'][k])} |"
            for label, k in (
                ("edge exit alone", "edge"),
                ("cloud path", "cloud"),
                ("hybrid", "hybrid"),
            )
        ],
        f"| exit rate | {_pct(m['exit_rate'])} | {_pct(h['exit_rate'])} |",
        "",
        "## Compute (per image)",
        "",
        f"- edge MACs by precision: {ops.edge.macs}; cloud MACs: {ops.cloud.macs}",
        f"- edge parameter bytes: {ops.edge.param_bytes}; cloud: {ops.cloud.param_bytes}",
        f"- split tensor {list(ops.feature_shape)}: {ops.feature_bytes} bytes at "
        f"{card['act_precision']}",
        f"- whole edge part: {edge_j * 1e6:.4g} uJ; the same network all fp32 at the edge: "
        f"{fp32_j * 1e6:.4g} uJ ({fp32_j / edge_j:.3g}x), energy table `{table}`",
        "",
        "Energy per MAC sources:",
        "",
        *[f"- {p}: {s}" for p, s in energy_sources(table).items()],
        "",
    ]
    return "\n".join(lines)


def write_card_markdown(path: Path, card: dict[str, Any], checkpoint: Path) -> None:
    """Write ``models/<name>.md`` beside the weights."""
    Path(path).write_text(card_markdown(card, Path(checkpoint)))

"""The markdown model card shipped next to each weight file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fogsim.energy import compute_energy_j, default_table, energy_sources
from fogsim.nn.checkpoint import Checkpoint, load_checkpoint
from fogsim.nn.ops import OpReport, all_fp32, count_ops
from fogsim.nn.zoo import create_model


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
    cpu = _cpu_hours(card)
    if cpu:
        parts.append(cpu)
    return (
        "; ".join(parts) + ". The epochs are a budget set by a 2-core CPU machine, not by "
        "convergence: more epochs (raise `epochs` in the recipe and retrain, e.g. with "
        "`--device cuda`) would raise the accuracies below. An interrupted run resumes from "
        "its last completed epoch."
    )


def _cpu_hours(card: dict[str, Any]) -> str | None:
    """The training's CPU time: measured for each epoch, or for the last epochs only when
    the run began before fogsim recorded it (then scaled to all epochs, and said so); or, for
    a network trained wholly before then, what its card's ``cpu_hours_note`` says."""
    timed = card.get("cpu_s_per_epoch")
    if not timed:
        return card.get("cpu_hours_note")
    hours, epochs = sum(timed) / 3600, card["epochs"]
    if len(timed) >= epochs:
        return f"{hours:.2f} CPU hours (process CPU time, summed over the epochs)"
    return (
        f"about {hours * epochs / len(timed):.1f} CPU hours: {hours:.2f} measured over the "
        f"last {len(timed)} epochs, scaled to all {epochs} (the first {epochs - len(timed)} "
        "ran before fogsim recorded CPU time)"
    )


def _parts(card: dict[str, Any], n_blocks: int) -> str:
    exit_head = card.get("recipe", {}).get("exit_head") or "linear"
    if card.get("fog_split") is None:
        return (
            f"edge weights {card['weight_precision']}, "
            f"edge activations {card['act_precision']}, split after block {card['split']}, "
            f"exit(s) after block(s) {card['exits']} ({exit_head} exit head); "
            "the cloud part is fp32."
        )
    split, fog_split = card["split"], card["fog_split"]
    tiers = ", ".join(card["exit_tiers"])
    device = f"stem and {_blocks(1, split)}" if split else "stem"
    cloud = f"{_blocks(fog_split + 1, n_blocks)} and the final head" if fog_split < n_blocks else ""
    return (
        f"three parts. Device ({device}): weights {card['weight_precision']}, "
        f"activations {card['act_precision']}. Fog ({_blocks(split + 1, fog_split)}): weights "
        f"{card['fog_weight_precision']}, activations {card['fog_act_precision']}. Cloud "
        f"({cloud or 'the final head'}): fp32. Exits after blocks {card['exits']} ({tiers}; "
        f"{exit_head} exit heads)."
    )


def _blocks(first: int, last: int) -> str:
    return f"block {first}" if first == last else f"blocks {first}-{last}"


def _thresholds(card: dict[str, Any]) -> str:
    rule, sign = card["default_rule"], "<" if card["default_rule"] == "entropy" else ">"
    per_exit = card.get("default_thresholds") or []
    chosen = f"chosen on {card['threshold_chosen_on']}; never on the test split"
    if len(per_exit) < 2:
        return f"{rule} {sign} {card['default_threshold']:.4f} ({chosen})"
    each = ", ".join(
        f"{t:.4f} after block {e} ({tier})"
        for t, e, tier in zip(per_exit, card["exits"], card["exit_tiers"], strict=True)
    )
    return (
        f"{rule} {sign} a threshold per exit: {each} ({chosen}); one shared by every exit, "
        f"for a policy that takes one: {card['default_threshold']:.4f}"
    )


def _tier_rows(card: dict[str, Any]) -> list[str]:
    test, hold = card.get("test_tiers"), card.get("holdout_tiers")
    if not test or not hold:
        return []
    rows = [
        "",
        "| tier | exits | exit rate, test | held-out | accuracy of its answers, test | "
        "its last exit alone, test |",
        "|---|---|---|---|---|---|",
    ]
    for tier in card.get("tiers", test):
        t, h = test[tier], hold[tier]
        exits = ", ".join(str(card["exits"][e]) for e in t["exits"]) or "-"
        if tier == "cloud":
            exits = "final output"
        rows.append(
            f"| {tier} | {exits} | {_pct(t['exit_rate'])} | {_pct(h['exit_rate'])} | "
            f"{_pct(t['accuracy'])} | {_pct(t['accuracy_alone'])} |"
        )
    return rows


def _compute(card: dict[str, Any], ops: OpReport) -> list[str]:
    if card.get("fog_split") is None:
        return [
            f"- edge MACs by precision: {ops.edge.macs}; cloud MACs: {ops.cloud.macs}",
            f"- edge parameter bytes: {ops.edge.param_bytes}; cloud: {ops.cloud.param_bytes}",
            f"- split tensor {list(ops.feature_shape)}: {ops.feature_bytes} bytes at "
            f"{card['act_precision']}",
        ]
    lines = [
        f"- {tier} part: MACs by precision {part.macs}; parameter bytes {part.param_bytes}"
        for tier, part in ops.parts.items()
    ]
    lines += [
        f"- split tensor {b.sender} to {b.receiver} {list(b.shape)}: {b.bytes} bytes at "
        f"{b.precision}"
        for b in ops.boundaries
    ]
    return lines


def hybrid_compute_energy_j(ops: OpReport, exit_rates: list[float], table: str) -> float:
    """The seed paper's compute energy per image from each exit's share of the images: one
    leaving at an exit pays the device (and fog) MACs to reach it; the rest pay every part.
    ``fogsim.nn.report.hybrid_compute_energy_per_image_j`` counts the same image by image."""
    reach = [
        compute_energy_j(device, table) + compute_energy_j(fog, table)
        for device, fog in zip(ops.edge_to_exit, ops.fog_to_exit, strict=True)
    ]
    whole = sum(compute_energy_j(part.macs, table) for part in ops.parts.values())
    answered = sum(r * e for r, e in zip(exit_rates, reach, strict=True))
    return answered + (1 - sum(exit_rates)) * whole


def _seed_energy(
    card: dict[str, Any], ops: OpReport, fp32_j: float, narrow_fp32_j: float | None, table: str
) -> str:
    hybrid_j = hybrid_compute_energy_j(ops, card["test_metrics"]["exit_rate_per_exit"], table)
    width = card.get("recipe", {}).get("edge_width") or 1
    # A widened device part's fp32 twin is wider than the usual reference network.
    same = "the same network" if width == 1 else f"the same network (edge_width {width})"
    against = f"{fp32_j * 1e6:.4g} uJ for {same} all fp32: {fp32_j / hybrid_j:.3g}x less"
    if narrow_fp32_j is not None:
        # The seed compares with the usual network, as `fogsim eval --reference` does.
        against += (
            f"; against {narrow_fp32_j * 1e6:.4g} uJ for the usual network (edge_width 1) all "
            f"fp32: {narrow_fp32_j / hybrid_j:.3g}x less"
        )
    return (
        f"- the seed paper's compute energy (the device part for every test image, the fog and "
        f"cloud parts for those reaching them, at the default threshold): {hybrid_j * 1e6:.4g} "
        f"uJ against {against} (`compute_energy_reduction`; the seed's CIFAR-10 headline: 5.5x)"
    )


def _narrow_fp32_j(ckpt: Checkpoint, table: str) -> float | None:
    """The fp32 energy of a widened network's usual-width twin (None at edge_width 1)."""
    if (ckpt.model_kwargs.get("edge_width") or 1) == 1:
        return None
    narrow = create_model(ckpt.model_name, **{**ckpt.model_kwargs, "edge_width": 1})
    return compute_energy_j(all_fp32(count_ops(narrow).full_macs), table)


def _training_cost(card: dict[str, Any]) -> list[str]:
    """The run's training cost against fp32 training's, and the bitwidth of each layer in each
    epoch (cards from before training was costed have none)."""
    t = card.get("training")
    if not isinstance(t, dict):
        return []
    rows = [
        ("peak parameter bytes", "peak_param_bytes", "{:.0f}"),
        ("peak gradient bytes", "peak_grad_bytes", "{:.0f}"),
        ("peak optimiser-state bytes", "peak_optimizer_bytes", "{:.0f}"),
        ("GEMM energy (J)", "gemm_energy_j", "{:.4g}"),
        ("parameter-movement energy (J)", "param_movement_energy_j", "{:.4g}"),
    ]
    lines = [
        "",
        f"## Training cost ({t['method']})",
        "",
        f"| | {t['method']} | fp32 training | saved |",
        "|---|---|---|---|",
    ]
    for label, key, fmt in rows:
        own, fp32 = t[key], t[f"fp32_{key}"]
        saved = _pct(1 - own / fp32) if fp32 else "n/a"
        lines.append(f"| {label} | {fmt.format(own)} | {fmt.format(fp32)} | {saved} |")
    lines += [
        "",
        f"Counted over {t['steps']} steps (fogsim.nn.training_cost); fp32 training: "
        f"{t['fp32_figures']}. Energy table `{t['energy_table']}`; parameters move to and "
        f"from {t['memory']}.",
    ]
    bits = t.get("bits_per_epoch")
    if bits:
        epochs = len(next(iter(bits.values())))
        lines += [
            "",
            "Weight bits of each layer in each epoch (mean Gavg, |lr x gradient| / grid step):",
            "",
            "| layer | " + " | ".join(f"epoch {e + 1}" for e in range(epochs)) + " |",
            "|---|" + "---|" * epochs,
        ]
        gavg = t.get("gavg_per_epoch", {})
        for name, values in bits.items():
            cells = [f"{b} ({g:.3g})" for b, g in zip(values, gavg.get(name, values), strict=True)]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _history(card: dict[str, Any], rows: int = 12) -> list[str]:
    """The held-out accuracies during training: about ROWS epochs evenly spaced, the kept one
    and the last. Cards from before fogsim recorded them have none, or only the last epochs."""
    history = card.get("holdout_per_epoch") or []
    if not history:
        return []
    kept, last = card.get("kept_epoch"), history[-1]["epoch"]
    step = -(-len(history) // rows)
    shown = [h for h in history if h["epoch"] % step == 0 or h["epoch"] in (kept, last)]
    n_exits = len(history[-1]["exits"])
    blocks = card.get("exits") or []
    names = [f"exit after block {b}" for b in blocks] if len(blocks) == n_exits else None
    names = names or [f"exit {k + 1}" for k in range(n_exits)]
    lines = [
        "",
        f"## Held out during training ({card['epochs']} epochs; the weights of epoch {kept} "
        "ship, best on the held-out cloud path)",
        "",
        "| epoch | training loss | " + "".join(f"{name} | " for name in names) + "cloud path |",
        "|---|---|" + "---|" * n_exits + "---|",
    ]
    for h in shown:
        mark = " (kept)" if h["epoch"] == kept else ""
        accs = "".join(f"{_pct(a)} | " for a in h["exits"])
        lines.append(f"| {h['epoch']}{mark} | {h['loss']:.4f} | {accs}{_pct(h['cloud'])} |")
    if history[0]["epoch"] > 1:
        lines += [
            "",
            f"Recorded from epoch {history[0]['epoch']}: the run began before fogsim "
            "kept these figures.",
        ]
    return lines


def card_markdown(card: dict[str, Any], checkpoint: Path) -> str:
    """Render a checkpoint's card, with op counts and edge energy from its network."""
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build()
    ops = count_ops(model)
    table = default_table()
    m, h = card["test_metrics"], card["holdout_metrics"]
    edge_j = compute_energy_j(ops.edge.macs, table)
    fp32_j = compute_energy_j(all_fp32(ops.full_macs), table)
    fog_j = compute_energy_j(ops.fog.macs, table)
    lines = [
        f"# {card['name']}",
        "",
        f"`{card['architecture']}` on **{card['dataset']}**: {_parts(card, len(model.blocks))}",
        "",
        f"- file: `{checkpoint.name}` (sha256 `{ckpt.sha256}`)",
        f"- input: {'x'.join(map(str, ckpt.input_shape))} images (H x W x C)"
        + (f" from `{card['dataset_path']}`" if card.get("dataset_path") else ""),
        f"- trained with: `{card['command']}` at git commit `{card['git_commit']}`",
        f"- training: {_training(card)}",
        f"- default exit rule: {_thresholds(card)}",
        "",
        f"## Test split ({card['dataset']}, fingerprint `{card['dataset_fingerprint'][:16]}`)",
        "",
        "| metric | test | held-out train |",
        "|---|---|---|",
        *[
            f"| accuracy, {label} | {_pct(m['accuracy'][k])} | {_pct(h['accuracy'][k])} |"
            for label, k in (
                ("edge exit alone" if card.get("fog_split") is None else "last exit alone", "edge"),
                ("cloud path", "cloud"),
                ("hybrid", "hybrid"),
            )
        ],
        f"| exit rate | {_pct(m['exit_rate'])} | {_pct(h['exit_rate'])} |",
        *_tier_rows(card),
        *_history(card),
        "",
        "## Compute (per image)",
        "",
        *_compute(card, ops),
        f"- whole edge part: {edge_j * 1e6:.4g} uJ; the same network all fp32 at the edge: "
        f"{fp32_j * 1e6:.4g} uJ ({fp32_j / edge_j:.3g}x), energy table `{table}`",
        *([f"- whole fog part: {fog_j * 1e6:.4g} uJ"] if ops.fog.macs else []),
        _seed_energy(card, ops, fp32_j, _narrow_fp32_j(ckpt, table), table),
        *_training_cost(card),
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

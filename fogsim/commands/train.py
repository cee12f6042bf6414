"""`fogsim train`: train a hybrid network from a recipe, resuming from its last epoch."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer


def default_work_dir(output: Path, name: str) -> Path:
    """Per-epoch training state lives beside the checkpoint, in ``training/NAME/``, so that it
    can be committed while a long run goes on and resumed from a fresh clone elsewhere."""
    return output.parent / "training" / name


def train(
    recipe: Path = typer.Argument(
        ..., help="Recipe YAML (examples in models/recipes/, keys in models/README.md)."
    ),
    output: Path | None = typer.Option(None, help="Checkpoint to write (default models/NAME.pt)."),
    work_dir: Path | None = typer.Option(
        None, help="Per-epoch resumable state (default: training/NAME/ beside the checkpoint)."
    ),
    threads: int = typer.Option(
        1, min=1, help="CPU threads for torch (training is deterministic on CPU)."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    device: str = typer.Option("cpu", help="torch device, e.g. cuda (deterministic only on CPU)."),
    compile_: bool = typer.Option(
        False,
        "--compile/--no-compile",
        help="Compile the training step with torch.compile: on 2 CPU cores 1.5x (int4) to "
        "1.8x (binary) faster a step, about the same for fp32; 35-76 s to compile once. "
        "Trains eagerly, with a notice, where it cannot compile.",
    ),
) -> None:
    """Train the network of RECIPE on its dataset's train split; write a checkpoint and a card.

    A recipe with `init_from` or `distill` needs that checkpoint first: train
    cifar10-fp32.yaml before cifar10-int4.yaml, cifar10-binary.yaml and
    cifar10-binary-200.yaml, and cifar10-resnet32-fp32.yaml before cifar10-resnet32-binary.yaml.
    """
    import torch

    from fogsim.data import load_dataset
    from fogsim.heap import reuse_freed_memory
    from fogsim.nn.card import write_card_markdown
    from fogsim.nn.recipe import load_recipe
    from fogsim.nn.train import train_recipe

    reuse_freed_memory()  # a step's tensors reuse the last step's memory (fogsim.heap)
    torch.set_num_threads(threads)
    r = load_recipe(recipe)
    output = Path("models") / f"{r.name}.pt" if output is None else output
    work_dir = default_work_dir(output, r.name) if work_dir is None else work_dir
    typer.echo(f"training {r.name}; per-epoch state in {work_dir}")
    # Recorded in the card so that anyone can rerun exactly this training.
    command = shlex.join(
        ["fogsim", "train", str(recipe), "--output", str(output), "--threads", str(threads)]
        + (["--device", device] if device != "cpu" else [])
        + (["--compile"] if compile_ else [])
    )
    card = train_recipe(
        r,
        work_dir=work_dir,
        output=output,
        command=command,
        load_dataset=load_dataset,
        progress=progress,
        log=typer.echo,
        device=device,
        compile_model=compile_,
    )
    write_card_markdown(output.with_suffix(".md"), card, output)
    m = card["test_metrics"]
    answered = ", ".join(f"{t} {card['test_tiers'][t]['exit_rate']:.3f}" for t in card["tiers"])
    typer.echo(
        f"wrote {output}: test accuracy hybrid {m['accuracy']['hybrid']:.4f}, "
        f"cloud {m['accuracy']['cloud']:.4f}, exit rate {m['exit_rate']:.3f} "
        f"(answered on the {answered})"
    )

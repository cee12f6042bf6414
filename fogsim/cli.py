"""The ``fogsim`` command line: one typer app; each command lives in ``fogsim.commands``."""

from __future__ import annotations

import sys
import warnings

import typer
from rich.console import Console

from fogsim.errors import FogsimError

app = typer.Typer(
    name="fogsim",
    help="Discrete-event simulation of fog computing for early-exit and split neural networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: typer's rich help shows a "<bool>" value after every flag (even --help),
    # as if flags took one; click's own help writes them as --x / --no-x.
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Discrete-event simulation of fog computing for early-exit and split neural networks."""


def _register() -> None:
    # Imported here so that `fogsim --help` stays quick and each command module
    # owns its own options.
    from fogsim.commands import (
        data,
        optimize,
        partition,
        plot,
        profile,
        run,
        sweep,
        train,
        validate,
    )
    from fogsim.commands import eval as evaluate

    app.command("run")(run.run)
    app.command("validate")(validate.validate)
    app.command("train")(train.train)
    app.command("eval")(evaluate.eval_cmd)
    app.command("sweep")(sweep.sweep)
    app.command("plot")(plot.plot)
    app.command("profile")(profile.profile)
    app.command("partition")(partition.partition)
    app.command("optimize")(optimize.optimize)
    app.add_typer(data.app, name="data", help="Datasets: where they are, what they hold.")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Warnings meant for the user read as one line, like errors; others as Python prints them."""
    if category.__module__.startswith("fogsim"):
        console = Console(stderr=True, soft_wrap=True)
        console.print(f"[yellow]warning:[/] {message}", highlight=False)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main() -> None:
    """Console-script entry point: user errors become a message and an exit code."""
    _register()
    warnings.showwarning = _show_warning
    try:
        app()
    except FogsimError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()

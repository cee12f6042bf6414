"""Running the real ``fogsim`` app in-process, the way its entry point does."""

from __future__ import annotations

from dataclasses import dataclass

from typer.testing import CliRunner

from fogsim import cli
from fogsim.errors import FogsimError


@dataclass(frozen=True)
class Outcome:
    """What the user would see: exit code, standard output and standard error."""

    code: int
    stdout: str
    stderr: str


def invoke(*args: str) -> Outcome:
    """Run ``fogsim ARGS``; a FogsimError becomes its message and exit code, as in cli.main.

    Any other exception is re-raised: it would reach the user as a traceback.
    """
    if not cli.app.registered_commands:
        cli._register()
    result = CliRunner().invoke(cli.app, list(args))
    error = result.exception
    if isinstance(error, FogsimError):
        return Outcome(error.exit_code, result.stdout, result.stderr + f"error: {error}")
    if error is not None and not isinstance(error, SystemExit):
        raise error
    return Outcome(result.exit_code, result.stdout, result.stderr)

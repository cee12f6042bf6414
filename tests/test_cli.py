"""The command line: every command is listed and has its own help."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = ["run", "validate", "train", "eval", "data", "sweep", "plot", "optimize"]


def fogsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fogsim", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_every_command() -> None:
    result = fogsim("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert f" {command} " in result.stdout, command


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_its_own_help(command: str) -> None:
    result = fogsim(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and command in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = fogsim("simulate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [*COMMANDS, "data list", "data info"])
def test_flags_read_as_flags_in_help(command: str) -> None:
    result = fogsim(*command.split(), "--help")
    assert result.returncode == 0, result.stderr
    for value in ("<bool>", "BOOLEAN", "<boolean>"):
        assert value not in result.stdout, (command, result.stdout)


def test_run_help_shows_its_flags_with_their_negations() -> None:
    help_text = fogsim("run", "--help").stdout
    assert "--overwrite / --no-overwrite" in help_text
    assert "-q, --quiet" in help_text and "--max-memory SIZE" in help_text

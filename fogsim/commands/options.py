"""Options several commands share, defined once so that their spelling, help and reading agree."""

from __future__ import annotations

from typing import Any

import typer

_DEFAULT_LIMIT = "(default: half the memory available now)."


def set_option(example: str) -> Any:
    """``--set PATH=VALUE``, repeatable; ``example`` ends the help."""
    return typer.Option([], "--set", metavar="PATH=VALUE", help=example)


def max_memory_option(what: str) -> Any:
    """``--max-memory SIZE``; ``what`` says what the limit does, e.g. 'Refuse a run'."""
    return typer.Option(
        None,
        "--max-memory",
        metavar="SIZE",
        help=f"{what} estimated to need more memory than this, e.g. 8GB {_DEFAULT_LIMIT}",
    )


def engine_option(help: str) -> Any:
    return typer.Option("auto", "--engine", metavar="simpy|fast|auto", help=help)


def quiet_option(help: str = "No progress bars.") -> Any:
    return typer.Option(False, "-q", "--quiet", help=help)


def memory_limit(max_memory: str | None) -> float | None:
    """``--max-memory`` in bytes; None (the default limit) where it was not given."""
    from fogsim.scenario.footprint import parse_memory

    return parse_memory(max_memory) if max_memory is not None else None


def overrides(set_: list[str]) -> list[str]:
    """``--set`` values as the scenario loader takes them (a plan relative to where typed)."""
    from fogsim.scenario.overrides import plan_from_here

    return [plan_from_here(assignment) for assignment in set_]

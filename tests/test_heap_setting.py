"""Which commands fix glibc's mmap threshold (fogsim.heap): those that simulate, so that a
run's freed arrays leave its peak; not the torch commands, whose tensors of a few MiB,
allocated every step, would otherwise be mapped and faulted in each time."""

from __future__ import annotations

import sys

import pytest

import fogsim.heap
from fogsim import cli


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []

    def glibc(name: str):  # noqa: ANN202
        return lambda *args: seen.append(name) or 1

    monkeypatch.setattr(fogsim.heap, "_glibc", glibc)
    return seen


@pytest.mark.parametrize(
    ("args", "fixed"),
    [
        (["run", "no-such.yaml"], True),
        (["sweep", "no-such.yaml"], True),
        (["train", "no-such.yaml"], False),
        (["eval", "no-such.pt"], False),
    ],
)
def test_only_simulating_commands_fix_the_threshold(calls, tmp_path, monkeypatch, args, fixed):
    # Through the console script's entry point, as a user runs it.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["fogsim", *args])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code != 0  # the missing file, reported after the heap is set up
    assert calls == (["mallopt"] if fixed else [])

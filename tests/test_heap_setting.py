"""How each command sets up glibc's heap (fogsim.heap): those that simulate fix the mmap
threshold, so that a run's freed arrays leave its peak; torch commands keep freed memory in
the heap, so that a step's tensors of a few MiB are not mapped and faulted in each time."""

from __future__ import annotations

import sys

import pytest

import fogsim.heap
from fogsim import cli


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []

    def glibc(name: str):  # noqa: ANN202
        return lambda param, value: seen.append(f"{name}({param}, {value})") or 1

    monkeypatch.setattr(fogsim.heap, "_glibc", glibc)
    return seen


FIXED = ["mallopt(-3, 131072)"]  # the threshold at glibc's initial 128 KiB
KEPT = ["mallopt(-3, 33554432)", "mallopt(-1, 4294967296)", "mallopt(-2, 268435456)"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "no-such.yaml"], FIXED),
        (["sweep", "no-such.yaml"], FIXED),
        (["train", "no-such.yaml"], KEPT),
        (["eval", "no-such.pt"], KEPT),
        (["profile", "no-such-network"], KEPT),
    ],
)
def test_simulating_commands_return_memory_and_torch_commands_keep_it(
    calls, tmp_path, monkeypatch, args, expected
):
    # Through the console script's entry point, as a user runs it.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["fogsim", *args])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code != 0  # the missing file, reported after the heap is set up
    assert calls == expected

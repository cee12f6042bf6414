"""Reading YAML with bounds: aliases, nesting and size cannot make a small file huge."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fogsim.scenario import ScenarioError, load_scenario
from fogsim.scenario.source import MAX_BYTES, MAX_VALUES, YamlError, parse_yaml
from fogsim.sweeping.spec import load_sweep_file

# Nine levels of nine aliases: 9**9 (387 million) strings once expanded, from 500 bytes.
BILLION_LAUGHS = 'lol0: &lol0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"lol{i}: &lol{i} [" + ",".join([f"*lol{i - 1}"] * 9) + "]\n" for i in range(1, 10)
)


def _limit_memory() -> None:
    two_gb = 2 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (two_gb, two_gb))


@pytest.mark.parametrize("command", ["validate", "sweep"])
def test_billion_laughs_is_refused_quickly_in_bounded_memory(tmp_path: Path, command) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(BILLION_LAUGHS)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "fogsim", command, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_memory,  # torch and friends fit in 2 GB of address space
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "expands to more than" in result.stderr and "Traceback" not in result.stderr
    assert time.perf_counter() - started < 60


def test_expansion_is_counted_without_expanding() -> None:
    started = time.perf_counter()
    with pytest.raises(YamlError, match=f"more than {MAX_VALUES:,} values") as info:
        parse_yaml(BILLION_LAUGHS)
    assert time.perf_counter() - started < 1.0
    assert info.value.line is not None


def test_shared_aliases_below_the_bound_still_load() -> None:
    source = parse_yaml("base: &b {x: 1, y: [1, 2]}\nthis: *b\nthat: {<<: *b, x: 2}\n")
    assert source.data == {
        "base": {"x": 1, "y": [1, 2]},
        "this": {"x": 1, "y": [1, 2]},
        "that": {"x": 2, "y": [1, 2]},
    }
    assert source.line_of(("that", "x")) == 3


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("&a [*a]", "refers to a value that holds it"),
        ("a: &a {b: *a}", "refers to a value that holds it"),
        ("[" * 100 + "]" * 100, "nested more than"),
        ("[" * 5000 + "]" * 5000, "nested more than"),
    ],
)
def test_self_reference_and_deep_nesting_are_refused(text: str, words: str) -> None:
    with pytest.raises(YamlError, match=words):
        parse_yaml(text)


def test_a_file_over_the_size_bound_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:
        handle.truncate(MAX_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(ScenarioError, match="at most"):
        load_scenario(path)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (BILLION_LAUGHS.replace("lol0:", "scenario: x.yaml\nlol0:"), "expands to more than"),
        ("scenario: x.yaml\ngrid: {seed: [1, 2]}\nreplications: many\n", "replications"),
        ("scenario: x.yaml\nseeds: [1, two]\n", "seeds"),
        ("scenario: x.yaml\nset: duration=1 s\n", "set is a list"),
        ("scenario: 3\n", "scenario: FILE"),
    ],
)
def test_sweep_files_are_read_with_the_same_bounds(tmp_path: Path, content: str, words) -> None:
    from fogsim.errors import UserInputError

    path = tmp_path / "sweep.yaml"
    path.write_text(content)
    with pytest.raises(UserInputError, match=words):
        load_sweep_file(path)

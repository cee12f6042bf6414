"""The bf16 probe: native, capped below AMX, or fp32 with one notice; asked once."""

import os
import platform
import subprocess
import sys

import pytest

from fogsim.nn import bf16

# Stand-ins for the real probe that die as oneDNN's AMX kernels do (SIGILL, exit code 132).
CRASHES = "import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n"
CRASHES_UNLESS_CAPPED = (
    "import os, signal\n"
    f"if os.environ.get({bf16.ISA_ENV!r}) != {bf16.ISA_CAP!r}:\n"
    "    os.kill(os.getpid(), signal.SIGILL)\n"
)


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch, tmp_path):
    """Each test is a new process: no verdicts, no notices, no cap yet, its own disk cache."""
    monkeypatch.setattr(bf16, "_verdicts", {})
    monkeypatch.setattr(bf16, "_noticed", set())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    before = os.environ.pop(bf16.ISA_ENV, None)
    yield
    os.environ.pop(bf16.ISA_ENV, None)
    if before is not None:
        os.environ[bf16.ISA_ENV] = before


@pytest.fixture
def probes(monkeypatch) -> list[dict]:
    """The environment of every probe subprocess started."""
    started: list[dict] = []
    real = subprocess.run

    def spy(args, **kwargs):
        started.append(kwargs["env"])
        return real(args, **kwargs)

    monkeypatch.setattr(bf16.subprocess, "run", spy)
    return started


def test_a_passing_probe_means_bf16_as_it_is(probes):
    lines: list[str] = []
    assert bf16.prepare("pass", log=lines.append) is True
    assert bf16.ISA_ENV not in os.environ and lines == []
    assert len(probes) == 1


def test_a_probe_that_passes_only_capped_caps_onednn_in_this_process(probes):
    lines: list[str] = []
    assert bf16.verdict(CRASHES_UNLESS_CAPPED) == bf16.CAPPED
    assert bf16.prepare(CRASHES_UNLESS_CAPPED, log=lines.append) is True
    assert os.environ[bf16.ISA_ENV] == bf16.ISA_CAP
    assert len(lines) == 1 and bf16.ISA_CAP in lines[0]
    # The first try ran uncapped, the second capped; the verdict then came from memory.
    assert [env.get(bf16.ISA_ENV) for env in probes] == [None, bf16.ISA_CAP]


def test_a_probe_that_crashes_either_way_falls_back_to_fp32_with_one_notice(probes):
    lines: list[str] = []
    assert bf16.prepare(CRASHES, log=lines.append) is False
    assert bf16.prepare(CRASHES, log=lines.append) is False
    assert bf16.ISA_ENV not in os.environ
    assert len(lines) == 1 and "fp32" in lines[0]
    assert len(probes) == 2  # uncapped, then capped; the second call asks nobody


def test_the_verdict_is_kept_on_disk_for_the_next_process(probes, monkeypatch):
    assert bf16.verdict(CRASHES_UNLESS_CAPPED) == bf16.CAPPED
    assert len(probes) == 2
    monkeypatch.setattr(bf16, "_verdicts", {})  # a new process, same machine and torch
    assert bf16.verdict(CRASHES_UNLESS_CAPPED) == bf16.CAPPED
    assert len(probes) == 2
    assert bf16.verdict("pass") == bf16.NATIVE  # another probe is another question
    assert len(probes) == 3


def test_a_damaged_cache_file_is_asked_again(probes, tmp_path):
    assert bf16.verdict("pass") == bf16.NATIVE
    (cached,) = (tmp_path / "cache" / "fogsim").glob("bf16-probe-*.json")
    cached.write_text("{not json")
    bf16._verdicts.clear()
    assert bf16.verdict("pass") == bf16.NATIVE and len(probes) == 2


def test_the_real_probe_runs_the_bf16_ops_of_training():
    # What training runs under autocast: a channels-last conv, a linear layer, a matmul,
    # the backward pass; and a plain bf16 matmul (the operation seen to crash).
    for op in ("Conv2d", "channels_last", "Linear", "@", "backward", "torch.bfloat16"):
        assert op in bf16.PROBE
    assert bf16.verdict() in (bf16.NATIVE, bf16.CAPPED, bf16.FP32)


def test_other_devices_and_fp32_recipes_are_left_alone(probes):
    assert bf16.autocast_precision(None) is None
    assert bf16.autocast_precision("bf16", "cuda") == "bf16"
    assert probes == []


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 ISA names")
def test_the_cap_reaches_onednn_in_this_process(tmp_path):
    # A fresh process: prepare() finds that only a capped probe passes, sets the cap, then the
    # first conv runs. oneDNN's verbose log names the ISA it chose. (This CPU has no AMX, so
    # the test caps at AVX2, which any x86-64 machine oneDNN runs on has.)
    script = f"""
import os, sys
from pathlib import Path
from fogsim.nn import bf16
bf16.ISA_CAP = "AVX2"
probe = "import os, sys\\nsys.exit(os.environ.get({bf16.ISA_ENV!r}) != 'AVX2')"
assert bf16.prepare(probe, cache_dir=Path({str(tmp_path)!r}), log=print)
import torch
torch.nn.Conv2d(3, 4, 3)(torch.rand(2, 3, 8, 8))
"""
    env = {k: v for k, v in os.environ.items() if k != bf16.ISA_ENV}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "ONEDNN_VERBOSE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    isa = [line for line in done.stdout.splitlines() if ",isa:" in line]
    if not isa:
        pytest.skip("this torch build's oneDNN prints no ISA line")
    assert "capping it at ONEDNN_MAX_CPU_ISA=AVX2" in done.stdout
    assert isa[0].endswith("isa:Intel AVX2")

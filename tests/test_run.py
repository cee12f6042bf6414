"""End to end: every shipped scenario runs (small), with the real shipped networks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import pytest

from fogsim.results import load_run
from fogsim.runner import run

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted(ROOT.glob("scenarios/*.yaml"))
SUMMARY_KEYS = {"requests", "edge_exit_rate", "accuracy", "latency_s", "energy_j", "seed"}


def shrink(path: Path) -> list[str]:
    """Overrides that make a shipped scenario small: few devices per group, a short run."""
    from fogsim.scenario import load_scenario

    scenario = load_scenario(path)
    return ["duration=20 s"] + [
        f"devices[{i}].count={min(group.count, 5)}" for i, group in enumerate(scenario.devices)
    ]


def fogsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fogsim", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_runs_small(path: Path, tmp_path: Path) -> None:
    result = run(path, overrides=shrink(path), out_dir=tmp_path / "run")
    summary = result.summary
    assert set(summary) >= SUMMARY_KEYS
    assert summary["requests"] == len(result.requests) > 0
    assert {"p50", "p95", "p99"} <= set(summary["latency_s"])
    assert 0.0 <= summary["accuracy"] <= 1.0
    for name in ("scenario.resolved.yaml", "requests.parquet", "summary.json"):
        assert (tmp_path / "run" / name).is_file()
    assert (tmp_path / "run/figures/latency_cdf.png").stat().st_size > 0
    again = load_run(tmp_path / "run")
    assert again.scenario == result.scenario
    pd.testing.assert_frame_equal(again.requests, result.requests)


@pytest.mark.parametrize("scenario", ["campus", "three-tier"])
def test_same_seed_gives_the_same_bytes(scenario: str, tmp_path: Path) -> None:
    path = ROOT / f"scenarios/{scenario}.yaml"
    for name in ("a", "b"):
        run(path, overrides=shrink(path), out_dir=tmp_path / name)
    files = ("requests.parquet", "stages.parquet", "summary.json", "scenario.resolved.yaml")
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_three_tier_answers_at_every_tier_and_draws_them(tmp_path: Path) -> None:
    path = ROOT / "scenarios/three-tier.yaml"
    result = run(path, overrides=shrink(path), out_dir=tmp_path / "run")
    shares = result.summary["exit_fraction_by_tier"]
    assert all(shares[tier] > 0.01 for tier in ("device", "fog", "cloud")), shares
    assert sum(shares.values()) == pytest.approx(1.0)
    from fogsim.sweeping.store import flatten_summary  # a sweep's row per point

    row = flatten_summary(result.summary)
    assert [row[f"exit_fraction_{tier}"] for tier in shares] == list(shares.values())
    assert row["latency_fog_p95_s"] is not None and row["energy_fog_j"] > 0
    fog = [s for s in result.summary["servers"].values() if s["tier"] == "fog"]
    assert len(fog) >= 20 and sum(s["completed"] for s in fog) > 0
    assert (tmp_path / "run/figures/latency_cdf_by_tier.png").stat().st_size > 0
    again = load_run(tmp_path / "run")
    pd.testing.assert_frame_equal(again.stages, result.stages)


def test_policies_bracket_the_early_exit(tmp_path: Path) -> None:
    """device_only (or edge_only) never sends, cloud_only always sends; early exit lies
    between."""
    path = ROOT / "scenarios/campus.yaml"
    rates = {}
    for policy in ("edge_only", "device_only", "early_exit", "cloud_only"):
        overrides = [*shrink(path), f"policy={{name: {policy}}}"]
        rates[policy] = run(path, overrides=overrides, write=False).summary["edge_exit_rate"]
    assert rates["edge_only"] == rates["device_only"] == 1.0 and rates["cloud_only"] == 0.0
    assert 0.0 < rates["early_exit"] < 1.0


def test_run_command_prints_summary_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", str(ROOT / "scenarios/campus.yaml"), "-o", str(out), "-q"]
    args += [arg for o in shrink(ROOT / "scenarios/campus.yaml") for arg in ("--set", o)]
    first = fogsim(*args)
    assert first.returncode == 0, first.stderr
    assert "edge-exit rate" in first.stdout and "latency p95" in first.stdout
    summary = json.loads((out / "summary.json").read_text())
    second = fogsim(*args)
    assert second.returncode == 2 and "--overwrite" in second.stderr
    assert json.loads((out / "summary.json").read_text()) == summary
    assert fogsim(*args, "--overwrite").returncode == 0


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    result = fogsim(
        "run",
        str(ROOT / "scenarios/campus.yaml"),
        "-o",
        str(tmp_path / "run"),
        "-q",
        "--set",
        f"model.checkpoint={bad}",
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "bad.pt" in result.stderr
    assert not (tmp_path / "run").exists()


def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    result = fogsim(
        "run",
        str(ROOT / "scenarios/campus.yaml"),
        "-o",
        str(tmp_path / "run"),
        "-q",
        "--set",
        f"dataset={{path: {tmp_path / 'nowhere'}}}",
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "nowhere" in result.stderr


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make reaching inference or simulation a failure: what is refused must be refused first."""

    def reached(*_args, **_kwargs):
        raise AssertionError("the run got as far as inference before refusing")

    monkeypatch.setattr("fogsim.runner.outcomes_for", reached)


@pytest.mark.parametrize("case", ["existing results", "a file", "unwritable", "being written"])
def test_unusable_run_directories_are_refused_before_simulating(
    tmp_path: Path, no_simulation: None, case: str
) -> None:
    from fogsim.errors import UserInputError
    from fogsim.rundir import claim_run_dir

    out = tmp_path / "run"
    if case == "existing results":
        out.mkdir()
        (out / "summary.json").write_text("{}")
    elif case == "a file":
        out.write_text("not a folder")
    elif case == "unwritable":
        out = Path("/proc/fogsim-no-such-folder/run")
    path = ROOT / "scenarios/campus.yaml"
    held = claim_run_dir(out, overwrite=True) if case == "being written" else nullcontext()
    with held, pytest.raises(UserInputError, match="-o|--overwrite"):
        run(path, overrides=shrink(path), out_dir=out)


def test_a_run_over_the_memory_limit_is_refused_before_simulating(
    tmp_path: Path, no_simulation: None
) -> None:
    from fogsim.scenario import ScenarioError, load_scenario

    path = ROOT / "scenarios/campus.yaml"
    # 5 devices x 2 requests/s x 20 s = 200 requests: more than one kilobyte.
    with pytest.raises(ScenarioError, match="about 200 requests"):
        run(path, overrides=shrink(path), out_dir=tmp_path / "run", max_memory="1 kB")
    scenario = load_scenario(path, ["devices[0].count=1000000000"])
    with pytest.raises(ScenarioError, match="over the limit"):
        run(scenario, write=False)
    assert not (tmp_path / "run").exists()


def test_a_run_whose_outcomes_are_cached_never_imports_torch(tmp_path: Path) -> None:
    path = ROOT / "scenarios/city.yaml"
    overrides = shrink(path)
    run(path, overrides=overrides, write=False)  # fills the inference cache and the record
    code = (
        "import sys; from fogsim.runner import run; "
        f"run({str(path)!r}, overrides={overrides!r}, out_dir={str(tmp_path / 'run')!r}); "
        "print('torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"

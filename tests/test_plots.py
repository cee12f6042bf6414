"""Figures: a run's, and each sweep figure when the grid has its dimension (and why not)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from distributed import Client

from fogsim.plots import SweepDims, sweep_figures
from fogsim.runner import run
from fogsim.sweeping import sweep

ROOT = Path(__file__).resolve().parents[1]
CAMPUS = ROOT / "scenarios/campus.yaml"
SMALL = ["duration=10 s", "devices[0].count=4"]
BANDWIDTH = "network.gateways[0].backhaul.bandwidth"
SWEEP_FIGURES = {
    "latency_cdf_by_bandwidth",
    "scale",
    "threshold_tradeoff",
    "energy_by_component",
    "policy_comparison",
}



def fogsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fogsim", *args], capture_output=True, text=True, timeout=600
    )


def stems(paths: list[Path]) -> set[str]:
    return {path.stem for path in paths}


def test_plot_command_on_a_bandwidth_by_count_sweep(client: Client, tmp_path: Path) -> None:
    grid = [f"{BANDWIDTH}=1Mbps,100Mbps", "devices[0].count=2,6"]
    sweep(CAMPUS, grid, overrides=["duration=10 s"], out_dir=tmp_path / "sweep", client=client)
    done = fogsim("plot", str(tmp_path / "sweep"), "-o", str(tmp_path / "figs"))
    assert done.returncode == 0, done.stderr
    drawn = {"latency_cdf_by_bandwidth", "scale", "energy_by_component"}
    for stem in drawn:
        for extension in ("png", "svg"):
            assert (tmp_path / "figs" / f"{stem}.{extension}").stat().st_size > 0
    assert {p.stem for p in (tmp_path / "figs").iterdir()} == drawn
    assert "not drawn: threshold_tradeoff: the grid has no policy.threshold" in done.stdout
    assert "not drawn: policy_comparison: the grid does not vary the policy" in done.stdout


def test_threshold_and_policy_figures(client: Client, tmp_path: Path) -> None:
    thresholds = sweep(
        CAMPUS,
        ["policy.threshold=0.2,1.0,2.0"],
        overrides=SMALL,
        out_dir=tmp_path / "t",
        client=client,
    )
    paths, skipped = sweep_figures(
        thresholds.points, thresholds.read_requests, ["policy.threshold"], tmp_path / "ft"
    )
    assert stems(paths) == {"threshold_tradeoff", "energy_by_component"}
    assert set(skipped) == SWEEP_FIGURES - stems(paths)
    policies = sweep(
        CAMPUS,
        ["policy={name: cloud_only},{name: edge_only},{name: early_exit}"],
        overrides=SMALL,
        out_dir=tmp_path / "p",
        client=client,
    )
    assert set(policies.points["policy_name"]) == {"cloud_only", "edge_only", "early_exit"}
    paths, skipped = sweep_figures(policies.points, policies.read_requests, ["policy"], tmp_path)
    assert stems(paths) == {"policy_comparison", "energy_by_component"}


def test_dimensions_are_read_from_the_grid_keys() -> None:
    import pandas as pd

    dims = SweepDims.of(
        ["devices[1].count", "network.cloud_link.bandwidth", "model.checkpoint"],
        pd.DataFrame({"policy_name": ["early_exit", "early_exit"]}),
    )
    assert dims.count == "devices[1].count" and dims.bandwidth == "network.cloud_link.bandwidth"
    assert dims.checkpoint == "model.checkpoint"
    assert dims.threshold is None and not dims.policies


def test_plot_command_on_a_run_directory(tmp_path: Path) -> None:
    run(CAMPUS, overrides=[*SMALL, "outputs.figures=false"], out_dir=tmp_path / "run")
    assert not (tmp_path / "run/figures").exists()
    done = fogsim("plot", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    for stem in ("latency_cdf", "energy_breakdown"):
        assert (tmp_path / "run/figures" / f"{stem}.svg").stat().st_size > 0


def test_plot_command_refuses_other_directories(tmp_path: Path) -> None:
    done = fogsim("plot", str(tmp_path))
    assert done.returncode == 2
    assert "neither a run directory nor a sweep directory" in done.stderr

"""Figures: a run's, and each sweep figure when the grid has its dimension (and why not)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client

from fogsim.plots import (
    SweepDims,
    energy_breakdown,
    latency_cdf,
    latency_cdf_by_bandwidth,
    scale_figure,
    sweep_figures,
)
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
    "over_time_by_policy",
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
    assert stems(paths) == {"policy_comparison", "energy_by_component", "over_time_by_policy"}


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
    for stem in ("latency_cdf", "energy_breakdown", "over_time"):
        assert (tmp_path / "run/figures" / f"{stem}.svg").stat().st_size > 0


def test_plot_command_refuses_other_directories(tmp_path: Path) -> None:
    done = fogsim("plot", str(tmp_path))
    assert done.returncode == 2
    assert "neither a run directory nor a sweep directory" in done.stderr


def run_frame(fallbacks: int = 0) -> pd.DataFrame:
    """A small per-request table: edge answers in 1 ms, cloud ones in 80 ms, and
    ``fallbacks`` cloud-path requests answered at a 500 ms deadline."""
    rows = []
    for i in range(40):
        path = "edge" if i % 2 else "cloud"
        late = path == "cloud" and i < 2 * fallbacks
        rows.append(
            {
                "group": "cams" if i < 20 else "sensors",
                "path": path,
                "status": "answered_edge" if path == "edge" or late else "answered_cloud",
                "reason": "deadline_fallback" if late else "",
                "latency_s": 0.5 if late else (0.001 if path == "edge" else 0.08),
                "energy_compute_j": 1e-4 if path == "edge" else 0.0,
                "energy_radio_j": 0.0 if path == "edge" else 2e-3,
                "energy_idle_j": 20.0,
            }
        )
    return pd.DataFrame(rows)


def test_latency_cdf_marks_and_labels_the_deadline_fallbacks() -> None:
    figure = latency_cdf(run_frame(fallbacks=3))
    ax = figure.axes[0]
    notes = " ".join(text.get_text() for text in ax.texts)
    assert "3 fallbacks" in notes and "deadline 500 ms" in notes
    assert any(list(line.get_xdata()) == [500.0, 500.0] for line in ax.get_lines())
    assert not latency_cdf(run_frame()).axes[0].texts  # nothing to mark without fallbacks


def test_energy_breakdown_gives_each_component_a_linear_panel_and_shares() -> None:
    figure = energy_breakdown(run_frame())
    compute, radio, idle, shares = figure.axes[:4]
    for ax in (compute, radio, idle, shares):
        assert ax.get_xscale() == "linear"
    # One bar per group and path; each share bar spans the whole of its request's energy.
    widths = [patch.get_width() for patch in shares.patches]
    assert len(widths) == 3 * 4
    starts = [patch.get_x() for patch in shares.patches]
    ends = [x + w for x, w in zip(starts, widths, strict=True)]
    assert max(ends) == pytest.approx(1.0)
    labels = [label.get_text() for label in compute.get_yticklabels()]
    assert labels == ["cams (cloud)", "cams (device)", "sensors (cloud)", "sensors (device)"]


def sweep_points(seeds: int) -> pd.DataFrame:
    """Two bandwidths whose every figure coincides, three device counts, ``seeds`` seeds."""
    rows = []
    for bandwidth in ("10 Mbps", "50 Mbps"):
        for count in (10, 100, 1000):
            for seed in range(seeds):
                rows.append(
                    {
                        BANDWIDTH: bandwidth,
                        "devices[0].count": count,
                        "devices": count,
                        "seed": seed,
                        "latency_p95_s": 0.01 * count**0.5,
                        "latency_cloud_p95_s": 0.02 * count**0.5,
                        "requests": 100,
                        "answered": 100,
                        "edge_exit_rate": 0.8,
                    }
                )
    return pd.DataFrame(rows)


def test_coinciding_sweep_lines_keep_distinct_styles_and_say_seeds_are_pooled() -> None:
    dims = SweepDims.of([BANDWIDTH, "devices[0].count"], sweep_points(1))
    for seeds, note in ((1, "one seed per point"), (3, "over 3 seeds per point")):
        figure = scale_figure(sweep_points(seeds), dims)
        assert note in figure._suptitle.get_text()
        lines = [line for line in figure.axes[0].get_lines() if len(line.get_xdata()) == 3]
        assert len(lines) == 2
        assert len({(str(line.get_linestyle()), line.get_marker()) for line in lines}) == 2
        np.testing.assert_array_equal(lines[0].get_ydata(), lines[1].get_ydata())


def test_latency_cdfs_by_bandwidth_keep_distinct_styles() -> None:
    dims = SweepDims.of([BANDWIDTH], pd.DataFrame())
    requests = pd.DataFrame(
        {
            "status": "answered_cloud",
            "latency_s": [0.01, 0.02, 0.03] * 4,
            BANDWIDTH: ["10 Mbps"] * 6 + ["50 Mbps"] * 6,
            "seed": [0, 1] * 6,
        }
    )
    figure = latency_cdf_by_bandwidth(requests, dims)
    lines = [
        line for line in figure.axes[0].get_lines() if line.get_label() in ("10 Mbps", "50 Mbps")
    ]
    assert len({(str(line.get_linestyle()), line.get_marker()) for line in lines}) == 2
    assert "2 seeds pooled" in figure._supxlabel.get_text()


def test_a_thinned_cdf_is_exact_at_every_value_it_keeps():
    from fogsim.plots import ECDF_STEPS, _ecdf_steps

    rng = np.random.default_rng(3)
    # Many ties (rounded values) and two lines, one longer than the steps drawn.
    values = np.round(rng.lognormal(size=3 * ECDF_STEPS + 17), 2)
    hue = np.where(np.arange(values.size) < 100, "edge", "cloud")
    data = _ecdf_steps(pd.Series(values), pd.Series(hue), "x", "path")
    for path, part in data.groupby("path"):
        own = np.sort(values[hue == path])
        assert len(part) <= ECDF_STEPS
        assert part["weight"].sum() == own.size
        weighted = np.cumsum(part["weight"].to_numpy()) / own.size
        exact = np.searchsorted(own, part["x"].to_numpy(), "right") / own.size
        np.testing.assert_allclose(weighted, exact, rtol=0, atol=1e-12)
        assert part["x"].iloc[0] == own[0] and part["x"].iloc[-1] == own[-1]

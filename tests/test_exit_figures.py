"""The exit-rate trade-off beside the seed's headline, from `fogsim eval --json` reports."""

import io

import numpy as np
import pytest
from sim_fixtures import synthetic_outcomes

from fogsim.exit_figures import curves, seed_tradeoff
from fogsim.nn.report import evaluation_report

TABLE = "horowitz45nm-braintta"


def _report(seed: int, threshold: float = 1.0) -> dict:
    reference = synthetic_outcomes(n=400, seed=99)
    hybrid = synthetic_outcomes(n=400, seed=seed)
    return evaluation_report(
        hybrid, rule="entropy", threshold=threshold, table=TABLE, reference=reference
    )


def test_each_curve_point_is_measured_against_the_reference():
    report = _report(seed=0)
    data = curves({"a": report})
    assert len(data) == len(report["curve"]) + 1
    for point in report["curve"]:
        row = data[(data["threshold"] == point["threshold"]) & ~data["default"]].iloc[0]
        drop = 100 * (report["reference_accuracy"] - point["hybrid_accuracy"])
        assert row["points_below_reference"] == pytest.approx(drop)
        assert row["exit_rate"] == point["exit_rate"]
    # The ring sits at the report's own figures for its default threshold.
    chosen = data[data["default"]].iloc[0]
    assert chosen["exit_rate"] == report["exit_rate"]
    assert chosen["compute_energy_reduction"] == pytest.approx(report["compute_energy_reduction"])


def test_more_exits_never_cost_more_compute_energy():
    data = curves({"a": _report(seed=0), "b": _report(seed=1, threshold=0.5)})
    for _, part in data.groupby("network"):
        assert np.all(np.diff(part["compute_energy_reduction"].to_numpy()) >= -1e-9)
    assert data.groupby("network")["default"].sum().to_dict() == {"a": 1, "b": 1}


def test_a_report_without_a_reference_says_how_to_make_one():
    report = evaluation_report(synthetic_outcomes(n=100), rule="entropy", threshold=1.0)
    with pytest.raises(ValueError, match=r"no reference_accuracy.*--reference"):
        curves({"alone": report})


def test_the_figure_draws_one_line_per_network_in_each_panel_the_same_every_time():
    reports = {"a": _report(seed=0), "b": _report(seed=1)}
    figure = seed_tradeoff(reports)
    assert len(figure.axes) == 2
    for ax in figure.axes:
        labelled = [line.get_label() for line in ax.get_lines() if line.get_marker() == "."]
        assert labelled == ["a", "b"]
    drawn = []
    for _ in range(2):
        out = io.BytesIO()
        seed_tradeoff(reports).savefig(out, format="svg", metadata={"Date": None})
        drawn.append(out.getvalue())
    assert drawn[0] == drawn[1]

"""The evaluation report's energy figures, against hand-computed cases."""

import numpy as np
import pytest
from sim_fixtures import synthetic_outcomes

from fogsim.nn.report import evaluation_report

FP32_J, BINARY_J = 4.6e-12, 35e-15  # Horowitz fp32 MAC; BrainTTA binary op
TABLE = "horowitz45nm-braintta"


def test_hybrid_compute_energy_counts_the_cloud_part_for_offloaded_images_only():
    o = synthetic_outcomes(n=1000, exits=1)
    threshold = 1.0
    exits = o.exit_entropy[:, 0] < threshold
    report = evaluation_report(o, rule="entropy", threshold=threshold, table=TABLE)
    # By hand: every image pays the edge trunk and its exit head (100k fp32 + 1M binary MACs);
    # an offloaded image also pays the cloud part (5M fp32 MACs).
    edge = 100_000 * FP32_J + 1_000_000 * BINARY_J
    hybrid = edge + (~exits).mean() * 5_000_000 * FP32_J
    reference = 5_100_000 * FP32_J + 1_000_000 * FP32_J  # the same MACs, all fp32
    assert report["hybrid_compute_energy_per_image_j"] == pytest.approx(hybrid, rel=1e-9)
    assert report["reference_compute_energy_per_image_j"] == pytest.approx(reference, rel=1e-9)
    assert report["compute_energy_reduction"] == pytest.approx(reference / hybrid, rel=1e-9)
    assert report["edge_energy_per_image_j"] == pytest.approx(edge, rel=1e-9)


def test_curve_energy_rises_as_fewer_images_exit():
    o = synthetic_outcomes(n=500, exits=1)
    report = evaluation_report(o, rule="entropy", threshold=1.0, table=TABLE)
    points = sorted(report["curve"], key=lambda p: p["exit_rate"])
    energy = np.array([p["hybrid_compute_energy_per_image_j"] for p in points])
    assert (np.diff(energy) <= 1e-18).all() and energy[0] > energy[-1]

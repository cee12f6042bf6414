"""The evaluation report's energy and per-tier figures, against hand-computed cases."""

import dataclasses

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


INT8_J = 0.23e-12  # Horowitz int8 MAC


def _three_part(n: int = 800):
    """Two exits, one at the end of the device part and one at the end of the fog part."""
    o = synthetic_outcomes(n=n, exits=2)
    device = {"fp32": 100_000, "binary": 1_000_000}
    fog = {"int8": 2_000_000, "fp32": 640}
    return dataclasses.replace(
        o,
        tiers=("device", "fog", "cloud"),
        exit_tiers=("device", "fog"),
        edge_ops_to_exit=(device, device),
        edge_ops=device,
        fog_ops_to_exit=({}, fog),
        fog_ops=fog,
        fog_feature_bytes=3136,
        compressed_fog_feature_bytes=np.full(n, 3000),
    )


def test_each_tier_is_paid_for_by_the_images_that_reach_it():
    o = _three_part()
    t0, t1 = 0.8, 1.5
    report = evaluation_report(o, rule="entropy", threshold=[t0, t1], table=TABLE)
    # By hand: where each image is answered, from its two entropies.
    at_device = o.exit_entropy[:, 0] < t0
    at_fog = ~at_device & (o.exit_entropy[:, 1] < t1)
    at_cloud = ~at_device & ~at_fog
    tiers = report["tiers"]
    assert tiers["device"]["exit_rate"] == pytest.approx(at_device.mean())
    assert tiers["fog"]["exit_rate"] == pytest.approx(at_fog.mean())
    assert tiers["cloud"]["exit_rate"] == pytest.approx(at_cloud.mean())
    assert sum(t["exit_rate"] for t in tiers.values()) == pytest.approx(1.0)
    # Every image runs the device part; those not answered there run the whole fog part
    # (its exit is its last layer); those not answered on the fog run the cloud part too.
    device_j = 100_000 * FP32_J + 1_000_000 * BINARY_J
    fog_j = 2_000_000 * INT8_J + 640 * FP32_J
    cloud_j = 5_000_000 * FP32_J
    assert tiers["device"]["energy_per_image_j"] == pytest.approx(device_j, rel=1e-9)
    assert tiers["fog"]["energy_per_image_j"] == pytest.approx((~at_device).mean() * fog_j)
    assert tiers["cloud"]["energy_per_image_j"] == pytest.approx(at_cloud.mean() * cloud_j)
    hybrid = device_j + (~at_device).mean() * fog_j + at_cloud.mean() * cloud_j
    assert report["hybrid_compute_energy_per_image_j"] == pytest.approx(hybrid, rel=1e-9)
    assert report["threshold"] is None and report["thresholds"] == [t0, t1]
    assert (
        report["fog_feature_bytes"] == 3136 and report["mean_compressed_fog_feature_bytes"] == 3000
    )
    answers = np.where(at_device, o.exit_pred[:, 0], np.where(at_fog, o.exit_pred[:, 1], -1))
    right = answers[at_fog] == o.labels[at_fog]
    assert tiers["fog"]["accuracy"] == pytest.approx(right.mean())


def test_a_two_part_report_has_an_empty_fog_tier():
    report = evaluation_report(synthetic_outcomes(n=300), rule="entropy", threshold=1.0)
    fog = report["tiers"]["fog"]
    assert fog["exit_rate"] == 0 and fog["energy_per_image_j"] == 0 and fog["exits"] == []
    assert report["fog_feature_bytes"] is None and report["threshold"] == 1.0
    assert report["tiers"]["device"]["exit_rate"] == pytest.approx(report["exit_rate"])

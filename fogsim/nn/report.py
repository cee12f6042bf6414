"""The evaluation report of a hybrid network: accuracies, exit rate, edge energy, curve."""

from __future__ import annotations

from typing import Any

import numpy as np

from fogsim.energy import compute_energy_j, default_table
from fogsim.inference import InferenceOutcomes
from fogsim.nn.evaluate import Thresholds, exit_index, hybrid_metrics, threshold_grid, tier_metrics
from fogsim.nn.ops import all_fp32


def _part_energy(
    idx: np.ndarray, to_exit: tuple[dict[str, int], ...], whole: dict[str, int], table: str
) -> float:
    """Mean energy of one part: an image leaving at exit e pays the part's MACs to reach it;
    one going on to the cloud pays the whole part."""
    per_exit = [compute_energy_j(ops, table) for ops in to_exit]
    whole_j = compute_energy_j(whole, table)
    per_image = np.array([per_exit[i] if i >= 0 else whole_j for i in idx])
    return float(per_image.mean()) if len(per_image) else 0.0


def edge_energy_per_image_j(
    o: InferenceOutcomes, rule: str, threshold: Thresholds, table: str
) -> float:
    """Mean device compute energy: an image leaving at exit e pays the trunk and heads up to e
    (at a fog exit, the whole device part); an offloaded one pays the whole device part,
    which it ran before leaving the device."""
    return _part_energy(exit_index(o, rule, threshold), o.edge_ops_to_exit, o.edge_ops, table)


def fog_energy_per_image_j(
    o: InferenceOutcomes, rule: str, threshold: Thresholds, table: str
) -> float:
    """Mean fog compute energy: nothing for images answered on the device, the fog blocks and
    heads up to a fog exit, the whole fog part for images going on to the cloud."""
    return _part_energy(exit_index(o, rule, threshold), o.fog_ops_to_exit, o.fog_ops, table)


def hybrid_compute_energy_per_image_j(
    o: InferenceOutcomes, rule: str, threshold: Thresholds, table: str
) -> float:
    """Mean compute energy of the whole hybrid, as the seed paper counts it: the device part
    for every image (up to its exit), the fog part for the images that reach it, plus the
    cloud part for the images that reach the cloud."""
    offloaded = float((exit_index(o, rule, threshold) < 0).mean()) if o.n_images else 0.0
    cloud = compute_energy_j(o.cloud_ops, table)
    return (
        edge_energy_per_image_j(o, rule, threshold, table)
        + fog_energy_per_image_j(o, rule, threshold, table)
        + offloaded * cloud
    )


def evaluation_report(
    o: InferenceOutcomes,
    *,
    rule: str,
    threshold: Thresholds,
    table: str | None = None,
    reference: InferenceOutcomes | None = None,
    curve_points: int = 41,
) -> dict[str, Any]:
    """Everything `fogsim eval` prints, as one JSON-ready mapping."""
    table = default_table() if table is None else table
    m = hybrid_metrics(o, rule, threshold)
    energy = edge_energy_per_image_j(o, rule, threshold, table)
    hybrid_energy = hybrid_compute_energy_per_image_j(o, rule, threshold, table)
    if reference is None:
        ref_energy = compute_energy_j(all_fp32(o.full_ops), table)
        ref_what = "same architecture, all fp32, run whole at the edge"
        ref_accuracy = None
    else:
        ref_energy = compute_energy_j(reference.full_ops, table)
        ref_what = f"reference checkpoint {reference.checkpoint_sha256[:12]}, run whole at the edge"
        ref_accuracy = float((reference.cloud_pred == reference.labels).mean())
    n_classes = len(o.class_names)
    curve = []
    # The curve gives every exit the same threshold.
    for t in threshold_grid(rule, n_classes, curve_points):
        point = hybrid_metrics(o, rule, float(t))
        tiers = tier_metrics(o, rule, float(t), o.exit_tiers)
        point_energy = hybrid_compute_energy_per_image_j(o, rule, float(t), table)
        curve.append(
            {
                "threshold": float(t),
                "exit_rate": point["exit_rate"],
                "exit_rate_per_tier": {k: v["exit_rate"] for k, v in tiers.items()},
                "hybrid_accuracy": point["accuracy"]["hybrid"],
                "edge_energy_per_image_j": edge_energy_per_image_j(o, rule, float(t), table),
                "hybrid_compute_energy_per_image_j": point_energy,
                # The seed paper's figure at this threshold, as at the default one below.
                "compute_energy_reduction": ref_energy / point_energy if point_energy else None,
            }
        )
    report: dict[str, Any] = {
        "n_images": o.n_images,
        "rule": rule,
        # A number where every exit has the same threshold, else null: see thresholds.
        "threshold": m["threshold"],
        "thresholds": m["thresholds"],
        "exit_rate": m["exit_rate"],
        "exit_rate_per_exit": m["exit_rate_per_exit"],
        "exit_tiers": list(o.exit_tiers),
        "accuracy": m["accuracy"],
        "tiers": _tiers(o, rule, threshold, table),
        "energy_table": table,
        "edge_energy_per_image_j": energy,
        "reference_edge_energy_per_image_j": ref_energy,
        "reference": ref_what,
        "edge_energy_ratio": ref_energy / energy if energy else None,
        # The seed paper's figure: the hybrid's compute (edge, plus cloud when offloaded)
        # against the reference network's, both in arithmetic energy.
        "hybrid_compute_energy_per_image_j": hybrid_energy,
        "reference_compute_energy_per_image_j": ref_energy,
        "compute_energy_reduction": ref_energy / hybrid_energy if hybrid_energy else None,
        "edge_ops": o.edge_ops,
        "fog_ops": o.fog_ops,
        "cloud_ops": o.cloud_ops,
        "feature_bytes": o.feature_bytes,
        "mean_compressed_feature_bytes": float(o.compressed_feature_bytes.mean()),
        "fog_feature_bytes": o.fog_feature_bytes if "fog" in o.tiers else None,
        "mean_compressed_fog_feature_bytes": (
            float(o.compressed_fog_feature_bytes.mean()) if "fog" in o.tiers else None
        ),
        "checkpoint_sha256": o.checkpoint_sha256,
        "dataset_fingerprint": o.dataset_fingerprint,
        "curve": curve,
    }
    if ref_accuracy is not None:
        report["reference_accuracy"] = ref_accuracy
    return report


def _tiers(
    o: InferenceOutcomes, rule: str, threshold: Thresholds, table: str
) -> dict[str, dict[str, Any]]:
    """``tier_metrics`` with each tier's whole part MACs and its mean compute energy per image
    (every image, whether or not it reached the tier)."""
    tiers: dict[str, dict[str, Any]] = dict(tier_metrics(o, rule, threshold, o.exit_tiers))
    reached = float((exit_index(o, rule, threshold) < 0).mean()) if o.n_images else 0.0
    energy = {
        "device": edge_energy_per_image_j(o, rule, threshold, table),
        "fog": fog_energy_per_image_j(o, rule, threshold, table),
        "cloud": reached * compute_energy_j(o.cloud_ops, table),
    }
    for tier, figures in tiers.items():
        figures["ops"] = o.part_ops[tier]
        figures["energy_per_image_j"] = energy[tier]
    return tiers

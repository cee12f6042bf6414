"""Hybrid networks' exit-rate trade-off beside the seed paper's headline, drawn from
``fogsim eval --json`` reports: accuracy below the reference and compute energy saved, both
against the share of images that exit on the device."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from fogsim.plots import subplots

SEED_EXIT_RATE = 0.65
"""Long, Chakraborty, Roy 2020 (CIFAR-10, binary edge): 65% of inferences exit at the edge."""
SEED_ENERGY_REDUCTION = 5.5
"""The same headline: 5.5x less compute energy than the full-precision network."""
MAX_DROP_POINTS = 1.5
"""'Minimal accuracy loss', read as at most 1.5 points below the fp32 reference."""


def curves(reports: Mapping[str, dict]) -> pd.DataFrame:
    """One row per network and threshold of each report's ``curve``: exit rate, points below
    the reference, compute energy reduction, and whether it is the default threshold's."""
    rows = []
    for name, report in reports.items():
        missing = [k for k in ("curve", "reference_accuracy") if report.get(k) is None]
        if missing:
            raise ValueError(
                f"{name}: the report has no {' or '.join(missing)}; make it with "
                "`fogsim eval CHECKPOINT --json --reference FP32_CHECKPOINT`"
            )
        default = {
            "threshold": report["threshold"],
            "exit_rate": report["exit_rate"],
            "hybrid_accuracy": report["accuracy"]["hybrid"],
            "compute_energy_reduction": report["compute_energy_reduction"],
        }
        for point, is_default in [*((p, False) for p in report["curve"]), (default, True)]:
            rows.append(
                {
                    "network": name,
                    "threshold": point["threshold"],
                    "exit_rate": point["exit_rate"],
                    "points_below_reference": 100
                    * (report["reference_accuracy"] - point["hybrid_accuracy"]),
                    "compute_energy_reduction": point["compute_energy_reduction"],
                    "default": is_default,
                }
            )
    return pd.DataFrame(rows).sort_values(["network", "exit_rate", "default"], kind="stable")


def seed_tradeoff(reports: Mapping[str, dict]) -> Figure:
    """Two panels against the exit rate: points below the reference (the seed's region
    shaded) and compute energy reduction (the seed's 5.5x marked); a ring at each network's
    default threshold."""
    data = curves(reports)
    figure, axes = subplots(1, 2, figsize=(12, 4.5), sharex=True)
    low = min(0.0, float(data["points_below_reference"].min()))
    axes[0].fill_between([SEED_EXIT_RATE * 100, 100], low, MAX_DROP_POINTS, color="0.9", zorder=0)
    axes[1].axhline(SEED_ENERGY_REDUCTION, color="0.5", linestyle="--", linewidth=1)
    for ax in axes:
        ax.axvline(SEED_EXIT_RATE * 100, color="0.5", linestyle="--", linewidth=1)
    for i, (name, part) in enumerate(data.groupby("network", sort=False)):
        colour = f"C{i}"
        line = part[~part["default"]]
        chosen = part[part["default"]]
        for ax, y in zip(axes, ("points_below_reference", "compute_energy_reduction"), strict=True):
            ax.plot(line["exit_rate"] * 100, line[y], marker=".", color=colour, label=name)
            ax.plot(chosen["exit_rate"] * 100, chosen[y], "o", mfc="none", ms=11, color=colour)
    labels = ("points below the fp32 reference", "compute energy reduction (x)")
    for ax, label in zip(axes, labels, strict=True):
        ax.set(xlabel="exits on the device (% of images)", ylabel=label)
    axes[0].legend(fontsize="small", loc="upper left")
    exits = f"{SEED_EXIT_RATE:.0%}"
    figure.suptitle(
        f"Hybrid networks against the seed's CIFAR-10 headline\n(shaded: at least {exits} of "
        f"images exit within {MAX_DROP_POINTS:g} points; dashed: {exits} and "
        f"{SEED_ENERGY_REDUCTION:g}x; ring: default threshold)"
    )
    figure.tight_layout()
    return figure

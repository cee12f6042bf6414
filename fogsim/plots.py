"""Figures of a run, drawn with seaborn and saved as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

# Same run, same bytes: no dates in SVG/PNG metadata, a fixed SVG id salt.
plt.rcParams["svg.hashsalt"] = "fogsim"
_METADATA = {"svg": {"Date": None}, "png": {"Software": None}}


def save(figure: plt.Figure, directory: Path, stem: str) -> list[Path]:
    """Save ``figure`` as PNG and SVG in ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for extension in ("png", "svg"):
        path = directory / f"{stem}.{extension}"
        figure.savefig(path, dpi=120, bbox_inches="tight", metadata=_METADATA[extension])
        paths.append(path)
    plt.close(figure)
    return paths


def latency_cdf(frame: pd.DataFrame) -> plt.Figure:
    """Empirical CDF of answered requests' latency, one line per path."""
    answered = frame[frame["status"].astype(str).str.startswith("answered")]
    figure, axes = plt.subplots(figsize=(6, 4))
    if len(answered):
        data = answered.assign(
            path=answered["path"].astype(str), latency_ms=answered["latency_s"] * 1e3
        )
        sns.ecdfplot(data=data, x="latency_ms", hue="path", ax=axes, log_scale=True)
    axes.set(
        xlabel="latency (ms)", ylabel="fraction of answered requests", title="Latency CDF by path"
    )
    axes.grid(True, which="both", alpha=0.3)
    return figure


def energy_breakdown(frame: pd.DataFrame) -> plt.Figure:
    """Mean device energy per request by component, per device group and path."""
    answered = frame[frame["status"].astype(str).str.startswith("answered")]
    components = {"energy_compute_j": "compute", "energy_radio_j": "radio", "energy_idle_j": "idle"}
    means = (
        answered.assign(group=answered["group"].astype(str), path=answered["path"].astype(str))
        .groupby(["group", "path"])[list(components)]
        .mean()
        .rename(columns=components)
        * 1e3
    )
    figure, axes = plt.subplots(figsize=(7, 4))
    if len(means):
        means.index = [f"{g}\n{p}" for g, p in means.index]
        means.plot.bar(stacked=True, ax=axes, rot=0, color=sns.color_palette("deep", 3))
    axes.set(ylabel="mean energy per request (mJ)", title="Device energy by component")
    axes.set_yscale("symlog", linthresh=1e-3)
    return figure


def run_figures(frame: pd.DataFrame, directory: Path) -> list[Path]:
    """All figures of one run."""
    sns.set_theme(style="whitegrid", context="notebook")
    return [
        *save(latency_cdf(frame), directory, "latency_cdf"),
        *save(energy_breakdown(frame), directory, "energy_breakdown"),
    ]

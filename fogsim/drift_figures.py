"""Accuracy and exit rate over time, by device group, for runs with drifted input: one run,
or several side by side (``fogsim plot RUN --compare OTHER``), adaptations marked."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fogsim.plots import subplots

BINS = 30
"""Time bins across the run, by arrival time."""


def over_time(runs: dict[str, pd.DataFrame], bins: int = BINS) -> Figure:
    """Accuracy and edge-exit rate of answered requests per time bin, one line per run and
    device group; a dotted line where a group's first request met adapted weights."""
    end = max(float(frame["t_arrival_s"].max()) for frame in runs.values())
    edges = np.linspace(0.0, end * (1 + 1e-9), bins + 1)
    figure, axes = subplots(2, 1, figsize=(8, 6), sharex=True)
    styles = ["-", "--", ":", "-."]
    groups = sorted({str(g) for frame in runs.values() for g in frame["group"].unique()})
    colours = {g: f"C{i}" for i, g in enumerate(groups)}
    for r, (run, frame) in enumerate(runs.items()):
        answered = frame[frame["status"].astype(str).str.startswith("answered")]
        for group, part in answered.groupby("group", observed=True):
            binned = pd.cut(part["t_arrival_s"], edges, right=False)
            stats = part.assign(edge=part["path"] == "edge").groupby(binned, observed=False)
            mids = (edges[:-1] + edges[1:]) / 2
            label = f"{group} ({run})" if len(runs) > 1 else str(group)
            style = {"color": colours[str(group)], "linestyle": styles[r % len(styles)]}
            axes[0].plot(mids, stats["correct"].mean().to_numpy(), label=label, **style)
            axes[1].plot(mids, stats["edge"].mean().to_numpy(), label=label, **style)
        _mark_adaptations(axes, frame, colours)
        _mark_drift(axes, frame)
    axes[0].set_ylabel("accuracy")
    axes[1].set_ylabel("edge-exit rate")
    axes[1].set_xlabel("arrival time (s)")
    for ax in axes:
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize="small", loc="lower left")
    figure.suptitle(
        "Answered requests over time\n"
        "(shaded: a group's input drifts; dotted: its adapted weights from here on)"
    )
    figure.tight_layout()
    return figure


def _mark_adaptations(axes: object, frame: pd.DataFrame, colours: dict[str, str]) -> None:
    if "model_version" not in frame:
        return
    for group, part in frame.groupby("group", observed=True):
        versions = part.sort_values("t_arrival_s")
        first = versions.loc[versions["model_version"].diff() > 0, "t_arrival_s"]
        for t in first:
            for ax in axes:  # type: ignore[attr-defined]
                ax.axvline(t, color=colours[str(group)], linestyle=":", linewidth=1)


def _mark_drift(axes: object, frame: pd.DataFrame) -> None:
    if "drifted" not in frame or not frame["drifted"].any():
        return
    start = float(frame.loc[frame["drifted"], "t_arrival_s"].min())
    for ax in axes:  # type: ignore[attr-defined]
        ax.axvspan(start, float(frame["t_arrival_s"].max()), color="0.9", zorder=0)

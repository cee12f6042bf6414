"""The figure of `fogsim partition --simulate`: each candidate's latency without queueing
(the partition's cost) beside its simulated p50 and p95 under the scenario's load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from fogsim import plots


def under_load(candidates: list[dict[str, Any]], title: str = "") -> Figure:
    """Grouped bars, one group per candidate in the analytic ranking's order."""
    records = []
    for rank, c in enumerate(candidates, 1):
        label = f"#{rank} cuts {c['cuts'][0]},{c['cuts'][1]}"
        sim = c["simulated"]
        for what, seconds in (
            ("no queueing (partition)", c["latency_s"]),
            ("simulated p50", sim["latency_p50_s"]),
            ("simulated p95", sim["latency_p95_s"]),
        ):
            if seconds is not None:
                records.append({"candidate": label, "latency": what, "ms": seconds * 1e3})
    figure, ax = plots.subplots(figsize=(max(6, 1.4 * len(candidates)), 4))
    sns.barplot(pd.DataFrame(records), x="candidate", y="ms", hue="latency", ax=ax)
    ax.set_xlabel("candidate, best without queueing first")
    ax.set_yscale("log")  # a saturated server's queue dwarfs the rest
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title(title or "partitions without queueing and under load")
    ax.tick_params(axis="x", labelrotation=20)
    return figure


def save(figure: Figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` (its suffix picks the format: .png, .svg, .pdf)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight", metadata=_metadata(path))
    return path


def _metadata(path: Path) -> dict[str, Any] | None:
    # Same candidates, same bytes: no dates or software versions in the file.
    return {"svg": {"Date": None}, "png": {"Software": None}}.get(path.suffix.lstrip("."))

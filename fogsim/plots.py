"""Figures of a run or a sweep, drawn with seaborn and saved as PNG and SVG."""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.axis
import matplotlib.ticker
import pandas as pd
import seaborn as sns
import yaml
from matplotlib.figure import Figure

from fogsim import units

# Same run, same bytes: no dates in SVG/PNG metadata, a fixed SVG id salt.
matplotlib.rcParams["svg.hashsalt"] = "fogsim"
_METADATA = {"svg": {"Date": None}, "png": {"Software": None}}


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """A figure and its axes, made without pyplot.

    Outside pyplot there is no backend to choose (none is forced on a notebook that
    imports this module), no GUI window, and nothing to close afterwards.
    """
    squeeze = kwargs.pop("squeeze", True)
    sharex = kwargs.pop("sharex", False)
    figure = Figure(**kwargs)
    return figure, figure.subplots(nrows, ncols, squeeze=squeeze, sharex=sharex)


def save(figure: Figure, directory: Path, stem: str) -> list[Path]:
    """Save ``figure`` as PNG and SVG in ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for extension in ("png", "svg"):
        path = directory / f"{stem}.{extension}"
        figure.savefig(path, dpi=120, bbox_inches="tight", metadata=_METADATA[extension])
        paths.append(path)
    return paths


def latency_cdf(frame: pd.DataFrame) -> Figure:
    """Empirical CDF of answered requests' latency, one line per path."""
    answered = frame[frame["status"].astype(str).str.startswith("answered")]
    figure, axes = subplots(figsize=(6, 4))
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


def energy_breakdown(frame: pd.DataFrame) -> Figure:
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
    figure, axes = subplots(figsize=(7, 4))
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


# ---------------------------------------------------------------- sweeps
# Each sweep figure returns a Figure, or a sentence saying why the sweep cannot draw it.
# Idle energy between requests often outweighs compute and radio a thousandfold and
# hardly depends on the policy, so the trade-off figures plot the active part.
ACTIVE_ENERGY_LABEL = "compute + radio energy\nper request (mJ)"
_ENERGY_MJ = {"energy_compute_j": "compute", "energy_radio_j": "radio", "energy_idle_j": "idle"}


@dataclass(frozen=True)
class SweepDims:
    """Which of the figures' dimensions a sweep's grid has (each a grid key, or None)."""

    grid: tuple[str, ...]
    bandwidth: str | None
    count: str | None
    threshold: str | None
    checkpoint: str | None
    policies: bool

    @classmethod
    def of(cls, grid: list[str], points: pd.DataFrame) -> SweepDims:
        def first(test: Callable[[str], bool]) -> str | None:
            return next((key for key in grid if test(key)), None)

        names = points.get("policy_name", pd.Series(dtype=object)).dropna()
        return cls(
            grid=tuple(grid),
            bandwidth=first(lambda k: k.endswith("bandwidth")),
            count=first(lambda k: re.fullmatch(r"devices\[\d+\]\.count", k) is not None),
            threshold=first(lambda k: k == "policy.threshold"),
            checkpoint=first(lambda k: k == "model.checkpoint"),
            policies=names.nunique() > 1,
        )

    def grid_text(self) -> str:
        return ", ".join(self.grid) or "no grid, seeds only"


def latency_cdf_by_bandwidth(requests: pd.DataFrame, dims: SweepDims) -> Figure | str:
    """Latency CDFs of answered requests, one line per backhaul bandwidth (a panel per count)."""
    if dims.bandwidth is None:
        return f"the grid has no bandwidth dimension ({dims.grid_text()})"
    answered = requests[requests["status"].astype(str).str.startswith("answered")]
    if not len(answered):
        return "no request was answered"
    data = answered.assign(
        latency_ms=answered["latency_s"] * 1e3, bandwidth=answered[dims.bandwidth]
    )
    panels = _ordered(data[dims.count]) if dims.count else [None]
    figure, axes = subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, value in zip(axes[0], panels, strict=True):
        part = data if value is None else data[data[dims.count] == value]
        hue_order = _ordered(data["bandwidth"])
        sns.ecdfplot(
            part, x="latency_ms", hue="bandwidth", hue_order=hue_order, log_scale=True, ax=ax
        )
        title = "Latency CDF by backhaul bandwidth"
        ax.set(xlabel="latency (ms)", ylabel="fraction of answered requests", title=title)
        if value is not None:
            ax.set_title(f"{title}\n{dims.count} = {value}")
        ax.grid(True, which="both", alpha=0.3)
        _plain_log_ticks(ax.xaxis)
    return figure


def scale_figure(points: pd.DataFrame, dims: SweepDims) -> Figure | str:
    """Latency, unanswered share and edge-exit rate against the device count (a line per bandwidth).

    Past saturation the cloud path's requests stop being answered, so the p95 of the
    answered ones can even fall; the cloud-path p95 and the unanswered share show it.
    """
    if dims.count is None:
        return f"the grid has no device count dimension ({dims.grid_text()})"
    data = points.assign(
        latency_p95_ms=points["latency_p95_s"] * 1e3,
        latency_cloud_p95_ms=points["latency_cloud_p95_s"] * 1e3,
        unanswered=(points["requests"] - points["answered"]) / points["requests"],
    )
    hue = dims.bandwidth or (dims.policies and "policy_name") or None
    hue_order = _ordered(data[hue]) if hue else None
    figure, axes = subplots(2, 2, figsize=(11, 8))
    panels = (
        ("latency_p95_ms", "p95 latency, answered (ms)"),
        ("latency_cloud_p95_ms", "p95 latency, cloud path (ms)"),
        ("unanswered", "share of requests unanswered"),
        ("edge_exit_rate", "edge-exit rate of answered"),
    )
    for ax, (y, label) in zip(axes.flat, panels, strict=True):
        sns.lineplot(
            data, x="devices", y=y, hue=hue, hue_order=hue_order, marker="o", errorbar="sd", ax=ax
        )
        ax.set(xscale="log", xlabel="devices", ylabel=label)
        _plain_log_ticks(ax.xaxis)
        if hue:
            ax.legend(title=hue.rsplit(".", 1)[-1])
    for ax in axes[0]:
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
    figure.suptitle("Scale: where the shared links saturate")
    figure.tight_layout()
    return figure


def threshold_tradeoff(points: pd.DataFrame, dims: SweepDims) -> Figure | str:
    """Accuracy, mean device energy and p95 latency against the exit threshold."""
    if dims.threshold is None:
        return f"the grid has no policy.threshold dimension ({dims.grid_text()})"
    data = points.assign(
        active_mj=_active_energy_mj(points), latency_p95_ms=points["latency_p95_s"] * 1e3
    )
    hue = None
    if dims.checkpoint:
        data["network"] = data[dims.checkpoint].map(lambda p: Path(str(p)).stem)
        hue = "network"
    figure, axes = subplots(1, 3, figsize=(15, 4))
    for ax, y, label in (
        (axes[0], "accuracy", "accuracy"),
        (axes[1], "active_mj", ACTIVE_ENERGY_LABEL),
        (axes[2], "latency_p95_ms", "p95 latency (ms)"),
    ):
        sns.lineplot(data, x=dims.threshold, y=y, hue=hue, marker="o", errorbar="sd", ax=ax)
        ax.set(xlabel="exit threshold", ylabel=label)
    figure.suptitle("Accuracy, energy and latency against the exit threshold")
    figure.tight_layout()
    return figure


def energy_by_component(points: pd.DataFrame, dims: SweepDims) -> Figure | str:
    """Mean device energy per request, a panel per component and a bar per grid point.

    A panel each, not stacked bars: idle energy is often a thousand times the compute
    energy, which would vanish on a shared axis.
    """
    columns = {f"energy_{name}_j": name for name in _ENERGY_MJ.values()}
    if not len(points) or not set(columns) <= set(points):
        return "no finished point"
    keys = list(dims.grid)
    if keys:
        means = points.groupby(keys, sort=False)[list(columns)].mean()
    else:
        means = points[list(columns)].mean().to_frame("all points").T
    means = means.rename(columns=columns) * 1e3
    means.index = [_label(index, keys) for index in means.index]
    width = max(4.0, 0.5 * len(means) + 1.5)
    figure, axes = subplots(1, 3, figsize=(3 * width, 4.5), sharex=True)
    colours = sns.color_palette("deep", 3)
    for ax, name, colour in zip(axes, means.columns, colours, strict=True):
        means[name].plot.bar(ax=ax, rot=90, color=colour)
        ax.set(title=name, ylabel="mean energy per request (mJ)" if ax is axes[0] else "")
    figure.suptitle("Device energy per request by component")
    return figure


def policy_comparison(points: pd.DataFrame, dims: SweepDims) -> Figure | str:
    """Edge-exit rate, accuracy, p95 latency and energy per policy."""
    if not dims.policies:
        return f"the grid does not vary the policy ({dims.grid_text()})"
    data = points.assign(
        active_mj=_active_energy_mj(points), latency_p95_ms=points["latency_p95_s"] * 1e3
    )
    if "policy" in dims.grid:
        # A grid on the whole policy mapping tells variants of one policy apart (thresholds).
        data["policy_name"] = data["policy"].map(_policy_label)
    figure, axes = subplots(1, 4, figsize=(17, 5))
    for ax, y, label in (
        (axes[0], "edge_exit_rate", "edge-exit rate"),
        (axes[1], "accuracy", "accuracy"),
        (axes[2], "latency_p95_ms", "p95 latency (ms)"),
        (axes[3], "active_mj", ACTIVE_ENERGY_LABEL),
    ):
        sns.barplot(data, x="policy_name", y=y, errorbar="sd", ax=ax)
        ax.set(xlabel="policy", ylabel=label)
        ax.tick_params(axis="x", labelrotation=30)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
    figure.suptitle("Policies compared")
    figure.tight_layout()
    return figure


def sweep_figures(
    points: pd.DataFrame,
    requests: Callable[[list[str]], pd.DataFrame],
    grid: list[str],
    directory: Path,
) -> tuple[list[Path], dict[str, str]]:
    """Every figure the sweep's grid allows; returns the files and, per skipped figure, why."""
    sns.set_theme(style="whitegrid", context="notebook")
    done = points[points["status"] == "done"] if len(points) else points
    dims = SweepDims.of(grid, done)
    drawers: dict[str, Callable[[], Figure | str]] = {
        "latency_cdf_by_bandwidth": lambda: _cdf(done, requests, dims),
        "scale": lambda: scale_figure(done, dims),
        "threshold_tradeoff": lambda: threshold_tradeoff(done, dims),
        "energy_by_component": lambda: energy_by_component(done, dims),
        "policy_comparison": lambda: policy_comparison(done, dims),
    }
    paths: list[Path] = []
    skipped: dict[str, str] = {}
    for stem, draw in drawers.items():
        figure = draw() if len(done) else "no finished point"
        if isinstance(figure, str):
            skipped[stem] = figure
        else:
            paths += save(figure, directory, stem)
    return paths, skipped


def _cdf(
    done: pd.DataFrame, requests: Callable[[list[str]], pd.DataFrame], dims: SweepDims
) -> Figure | str:
    if dims.bandwidth is None:
        return latency_cdf_by_bandwidth(pd.DataFrame(), dims)
    keys = [k for k in (dims.bandwidth, dims.count) if k]
    return latency_cdf_by_bandwidth(requests(["status", "latency_s", *keys]), dims)


def _ordered(values: pd.Series) -> list:
    """Distinct values in numeric order, reading quantities like '10 Mbps' by their magnitude."""
    distinct = list(pd.unique(values.dropna()))
    ureg = units.registry()

    def magnitude(value: object) -> tuple[int, float, str]:
        if isinstance(value, numbers.Real):
            return (0, float(value), "")
        try:
            return (0, float(ureg.Quantity(str(value)).to_base_units().magnitude), "")
        except Exception:  # pint raises many kinds; text it cannot read sorts after, as text
            return (1, 0.0, str(value))

    return sorted(distinct, key=magnitude)


def _policy_label(text: object) -> str:
    """``{name: early_exit, threshold: 0.5}`` -> ``early_exit\nthreshold 0.5``."""
    spec = yaml.safe_load(str(text))
    if not isinstance(spec, dict):
        return str(text)
    rest = [f"{key} {value}" for key, value in spec.items() if key != "name"]
    return "\n".join([str(spec.get("name", "?")), *rest])


def _active_energy_mj(points: pd.DataFrame) -> pd.Series:
    return (points["energy_compute_j"] + points["energy_radio_j"]) * 1e3


def _plain_log_ticks(axis: matplotlib.axis.Axis) -> None:
    # Default log ticks over a narrow range print as overlapping "4x10^0" labels.
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:.3g}")
    low, high = axis.get_view_interval()
    axis.set_major_formatter(plain)
    # Within one decade there is no major tick, so label the minor ones instead.
    narrow = low > 0 and high / low < 10
    axis.set_minor_formatter(plain if narrow else matplotlib.ticker.NullFormatter())


def _label(index: object, keys: list[str]) -> str:
    values = index if isinstance(index, tuple) else (index,)
    short = [key.rsplit(".", 1)[-1] for key in keys]
    return "\n".join(f"{k}={v}" for k, v in zip(short, values, strict=False))

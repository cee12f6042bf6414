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
import numpy as np
import pandas as pd
import seaborn as sns
import yaml
from matplotlib.figure import Figure

from fogsim import units
from fogsim.summary_table import si

# Same run, same bytes: no dates in SVG/PNG metadata, a fixed SVG id salt.
matplotlib.rcParams["svg.hashsalt"] = "fogsim"
_METADATA = {"svg": {"Date": None}, "png": {"Software": None}}
ANSWERED = ("answered_edge", "answered_fog", "answered_cloud")
# Steps drawn per CDF line: a figure is about 800 pixels wide, and a million steps take
# seconds to draw (and to place a legend among) for no visible difference.
ECDF_STEPS = 2000


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """A figure and its axes, made without pyplot.

    Outside pyplot there is no backend to choose (none is forced on a notebook that
    imports this module), no GUI window, and nothing to close afterwards.
    """
    squeeze = kwargs.pop("squeeze", True)
    sharex = kwargs.pop("sharex", False)
    sharey = kwargs.pop("sharey", False)
    figure = Figure(**kwargs)
    return figure, figure.subplots(nrows, ncols, squeeze=squeeze, sharex=sharex, sharey=sharey)


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
    """Empirical CDF of answered requests' latency, one line per path.

    Deadline fallbacks are answered exactly at the deadline, so the cloud path's
    CDF jumps there; the jump is marked and labelled rather than left to look like
    a cloud answer.
    """
    # Only the columns drawn: a copy of every column of a million rows takes seconds.
    answered = frame.loc[frame["status"].isin(ANSWERED), ["latency_s", "path", "reason"]]
    figure, axes = subplots(figsize=(7, 4.5))
    if len(answered):
        data = _ecdf_steps(answered["latency_s"] * 1e3, answered["path"], "latency_ms", "path")
        paths = [p for p in ("edge", "fog", "cloud") if (data["path"] == p).any()]
        _latency_ecdf(axes, data, "path", paths)
        _mark_fallbacks(axes, answered)
        _plain_log_ticks(axes.xaxis)
    axes.set(
        xlabel="latency (ms)", ylabel="fraction of answered requests", title="Latency CDF by path"
    )
    axes.grid(True, which="both", alpha=0.3)
    return figure


TIER_ORDER = ("device", "fog", "cloud")


def latency_cdf_by_tier(frame: pd.DataFrame) -> Figure:
    """Empirical CDF of answered requests' latency, one line per tier that answered them
    (deadline fallbacks count where they were answered: on the device)."""
    answered = frame.loc[frame["answered_at"].isin(TIER_ORDER), ["latency_s", "answered_at"]]
    figure, axes = subplots(figsize=(7, 4.5))
    if len(answered):
        at = answered["answered_at"]
        data = _ecdf_steps(answered["latency_s"] * 1e3, at, "latency_ms", "tier")
        counts = at.value_counts()  # a categorical counts its codes: no text per request
        tiers = [t for t in TIER_ORDER if counts.get(t, 0)]
        labels = {t: f"{t} ({counts[t] / len(answered):.1%})" for t in tiers}
        data["tier"] = data["tier"].map(labels)
        order = [labels[t] for t in tiers]
        _latency_ecdf(axes, data, "tier", order)
        _plain_log_ticks(axes.xaxis)
    axes.set(
        xlabel="latency (ms)",
        ylabel="fraction of the tier's answers",
        title="Latency CDF by answering tier (share of answers)",
    )
    axes.grid(True, which="both", alpha=0.3)
    return figure


def _latency_ecdf(axes: Any, data: pd.DataFrame, hue: str, order: list[str]) -> None:
    """One weighted CDF line of ``latency_ms`` per ``hue`` (``_ecdf_steps``' thinned steps)."""
    sns.ecdfplot(
        data=data,
        x="latency_ms",
        hue=hue,
        hue_order=order,
        weights="weight",
        ax=axes,
        log_scale=True,
    )


def _ecdf_steps(values: pd.Series, hue: pd.Series, x: str, name: str) -> pd.DataFrame:
    """Each hue's values thinned to about ``ECDF_STEPS`` steps, each weighted by the values
    it stands for, so that the weighted CDF equals the exact one at every value kept."""
    parts = []
    # By codes, each hue in order of first appearance (as groupby(sort=False)): pandas'
    # groupby on a million text keys holds several copies of them and of the values.
    if isinstance(hue.dtype, pd.CategoricalDtype):
        codes, keys = hue.cat.codes.to_numpy(), hue.cat.categories
    else:
        codes, keys = pd.factorize(hue.to_numpy())
    found, first = np.unique(codes, return_index=True)
    numbers = values.to_numpy()
    for code in found[np.argsort(first)]:
        if code < 0:
            continue  # no hue: groupby leaves it out
        key = keys[code]
        ordered = np.sort(numbers[codes == code])
        keep = np.linspace(0, ordered.size - 1, min(ordered.size, ECDF_STEPS)).round()
        # The last of equal values, so that a step holds all of them.
        keep = np.unique(np.searchsorted(ordered, ordered[keep.astype(np.int64)], "right") - 1)
        weight = np.diff(keep, prepend=-1)
        parts.append(pd.DataFrame({x: ordered[keep], name: str(key), "weight": weight}))
    return pd.concat(parts, ignore_index=True)


def _mark_fallbacks(axes: Any, answered: pd.DataFrame) -> None:
    fallback = answered["reason"] == "deadline_fallback"
    if not fallback.any():
        return
    deadline_ms = float(answered.loc[fallback, "latency_s"].max()) * 1e3
    share = fallback.sum() / (answered["path"] != "edge").sum()
    axes.axvline(deadline_ms, color="0.3", linestyle=":", linewidth=1.5)
    axes.annotate(
        f"deadline {deadline_ms:.4g} ms:\n{fallback.sum():,} fallbacks ({share:.1%} of the\n"
        "offloaded) answered here\nby the device's last exit",
        xy=(deadline_ms, 0.5),
        xytext=(-8, 0),
        textcoords="offset points",
        ha="right",
        va="center",
        fontsize=8,
        bbox={"boxstyle": "round", "fc": "white", "ec": "0.6", "alpha": 0.9},
    )


ENERGY_PARTS = {"energy_compute_j": "compute", "energy_radio_j": "radio", "energy_idle_j": "idle"}


def energy_breakdown(frame: pd.DataFrame) -> Figure:
    """Mean device energy per answered request by component, per device group and path.

    One panel per component, each on its own linear scale, and a last panel of
    each component's share: stacked on one logarithmic axis, a few millijoules of
    radio would look as large as joules of idle time.
    """
    answered = frame.loc[frame["status"].isin(ANSWERED), ["group", "path", *ENERGY_PARTS]]
    # Grouped by category codes, then the keys named and sorted as text: text keys per
    # request would cost a fixed-width string each (100+ bytes) for a few groups.
    keys = [answered[c].astype("category") for c in ("group", "path")]
    means = answered.groupby(keys, observed=True)[list(ENERGY_PARTS)].mean()
    if len(means):
        means.index = pd.MultiIndex.from_tuples([(str(g), str(p)) for g, p in means.index])
        means = means.sort_index()
    means = means.rename(columns=ENERGY_PARTS)
    rows = max(1, len(means))
    figure, axes = subplots(1, 4, figsize=(17, 2.6 + 0.45 * rows), sharey=True)
    if not len(means):
        axes[0].set_title("no request was answered")
        return figure
    # The path column keeps "edge" for the device; figures name the tier as the results do.
    labels = [f"{group} ({'device' if path == 'edge' else path})" for group, path in means.index]
    positions = range(len(labels))
    colours = sns.color_palette("deep", 3)
    for ax, name, colour in zip(axes[:3], ENERGY_PARTS.values(), colours, strict=True):
        bars = ax.barh(positions, means[name], color=colour)
        # Each bar says its value: a small one next to a large one is still read.
        ax.bar_label(bars, labels=[si(v, "J") for v in means[name]], padding=3, fontsize=8)
        ax.margins(x=0.3)
        ax.set(title=f"{name} (mean per request)", xlabel="energy")
        ax.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter(unit="J"))
        ax.tick_params(axis="x", labelrotation=30)
    shares = means.div(means.sum(axis=1), axis=0)
    left = pd.Series(0.0, index=means.index)
    for name, colour in zip(ENERGY_PARTS.values(), colours, strict=True):
        axes[3].barh(positions, shares[name], left=left, color=colour, label=name)
        left += shares[name]
    axes[3].set(title="share of device energy", xlabel="share", xlim=(0, 1))
    axes[3].xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    axes[3].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    axes[0].set_yticks(list(positions), labels)
    axes[0].invert_yaxis()
    figure.suptitle("Device energy per answered request: active (compute, radio) and idle")
    figure.tight_layout()
    return figure


OVER_TIME_BINS = 60  # time bins across the run


def over_time(frame: pd.DataFrame, by: str | None = None) -> Figure:
    """Latency (p50 and p95) and accuracy of the answered requests, the share answered on
    the device, and the share of requests answered at all, by arrival time; one line per
    value of ``by`` (a sweep's policies), whose lines show the p95 only."""
    arrival = frame["t_arrival_s"].to_numpy()
    width = max(float(np.nanmax(arrival)) if len(frame) else 1.0, 1e-9) / OVER_TIME_BINS
    data = pd.DataFrame(
        {
            "t": (np.minimum(np.floor(arrival / width), OVER_TIME_BINS - 1) + 0.5) * width,
            "answered": frame["status"].isin(ANSWERED),
            "latency": frame["latency_s"],
            "correct": frame["correct"],
            "device": frame["answered_at"] == "device",
        }
    )
    # One run is one group: grouping it would copy every row of it (millions) once more.
    groups = data.assign(group=_labels(frame[by])).groupby("group", sort=True) if by else None
    figure, axes = subplots(4, 1, figsize=(10, 11), sharex=True)
    for name, part in groups if groups is not None else [("", data)]:
        answered = part[part["answered"]].groupby("t")
        latency = answered["latency"]
        if not by:
            axes[0].plot(latency.median().index, latency.median(), label="p50")
        p95 = latency.quantile(0.95)
        axes[0].plot(p95.index, p95, label=name if by else "p95")
        axes[1].plot(answered["correct"].mean().index, answered["correct"].mean(), label=name)
        axes[2].plot(answered["device"].mean().index, answered["device"].mean(), label=name)
        share = part.groupby("t")["answered"].mean()
        axes[3].plot(share.index, share, label=name)
    axes[0].set(ylabel=f"latency of answered{', p95' if by else ''} (s)", yscale="log")
    axes[1].set(ylabel="accuracy of answered")
    axes[2].set(ylabel="answered on the device")
    axes[3].set(ylabel="answered of generated", xlabel="arrival time (s)")
    if by:
        # One legend for all panels, below them, where it hides no line.
        axes[3].legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, fontsize="small")
    else:
        axes[0].legend(fontsize="small")
    figure.suptitle(f"Over time, in bins of {si(width, 's')} by arrival")
    figure.tight_layout()
    return figure


def _labels(policies: pd.Series) -> pd.Series:
    """Each row's policy label, each distinct policy read once."""
    text = policies.astype(str)
    return text.map({value: _policy_label(value) for value in text.unique()})


def run_figures(frame: pd.DataFrame, directory: Path) -> list[Path]:
    """All figures of one run."""
    sns.set_theme(style="whitegrid", context="notebook")
    paths = [
        *save(latency_cdf(frame), directory, "latency_cdf"),
        *save(energy_breakdown(frame), directory, "energy_breakdown"),
    ]
    if "answered_at" in frame:  # runs from before the tiers have no such column
        paths += save(latency_cdf_by_tier(frame), directory, "latency_cdf_by_tier")
        paths += save(over_time(frame), directory, "over_time")
    if "drifted" in frame:  # runs with a drift block (fogsim.sim.drift)
        from fogsim.drift_figures import over_time as drift_over_time

        paths += save(drift_over_time({"": frame}), directory, "drift_over_time")
    return paths


# ---------------------------------------------------------------- sweeps
# Each sweep figure returns a Figure, or a sentence saying why the sweep cannot draw it.
# Idle energy between requests often outweighs compute and radio a thousandfold and
# hardly depends on the policy, so the trade-off figures plot the active part.
ACTIVE_ENERGY_LABEL = "compute + radio energy\nper request (mJ)"


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
    """Latency CDFs of answered requests, one line per backhaul bandwidth (a panel per count).

    Each bandwidth has its own line style and marker, so lines that coincide stay
    visible; the requests of all seeds of a point are pooled into its line.
    """
    if dims.bandwidth is None:
        return f"the grid has no bandwidth dimension ({dims.grid_text()})"
    answered = requests[requests["status"].astype(str).str.startswith("answered")]
    if not len(answered):
        return "no request was answered"
    data = answered.assign(
        latency_ms=answered["latency_s"] * 1e3, bandwidth=answered[dims.bandwidth]
    )
    panels = _ordered(data[dims.count]) if dims.count else [None]
    hue_order = _ordered(data["bandwidth"])
    colours = sns.color_palette(n_colors=len(hue_order))
    figure, axes = subplots(1, len(panels), figsize=(5 * len(panels), 4.4), squeeze=False)
    for ax, value in zip(axes[0], panels, strict=True):
        part = data if value is None else data[data[dims.count] == value]
        for index, (level, colour) in enumerate(zip(hue_order, colours, strict=True)):
            latency = part.loc[part["bandwidth"] == level, "latency_ms"]
            if not len(latency):
                continue
            dash, marker = LINE_STYLES[index % len(LINE_STYLES)]
            # Markers staggered along each line, so coinciding lines show all of theirs.
            sns.ecdfplot(
                x=latency, ax=ax, log_scale=True, color=colour, linestyle=dash,
                marker=marker, markevery=(0.03 * index, 0.1), label=str(level),
            )  # fmt: skip
        _hollow_markers(ax)
        title = "Latency CDF by backhaul bandwidth"
        ax.set(xlabel="latency (ms)", ylabel="fraction of answered requests", title=title)
        if value is not None:
            ax.set_title(f"{title}\n{dims.count} = {value}")
        ax.legend(title=dims.bandwidth.rsplit(".", 1)[-1])
        ax.grid(True, which="both", alpha=0.3)
        _plain_log_ticks(ax.xaxis)
    figure.supxlabel(_seeds_note(requests, "requests of {n} seeds pooled per line"), fontsize=9)
    figure.tight_layout()
    return figure


# Distinct dashes and markers, so that lines drawn on top of each other stay visible.
LINE_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1, 1, 1)), "v"))


def _seeds_note(table: pd.DataFrame, pooled: str) -> str:
    """Say how many seeds each point pools, or that each point is one seed."""
    seeds = table["seed"].nunique() if "seed" in table else 1
    return pooled.format(n=seeds) if seeds > 1 else "one seed per point"


def _style(hue: str | None) -> dict[str, Any]:
    """Line plot arguments giving each hue level its own dashes and marker."""
    if hue is None:
        return {"marker": "o"}
    return {"style": hue, "markers": True, "dashes": True, "markersize": 8}


def _hollow_markers(ax: Any) -> None:
    """Hollow markers in each line's colour: where two lines coincide, both still show."""
    for line in ax.get_lines():
        line.set_markeredgecolor(line.get_color())
        line.set_markerfacecolor("none")
        line.set_markeredgewidth(1.5)


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
    style = {**_style(hue), "style_order": hue_order} if hue else _style(None)
    figure, axes = subplots(2, 2, figsize=(11, 8))
    panels = (
        ("latency_p95_ms", "p95 latency, answered (ms)"),
        ("latency_cloud_p95_ms", "p95 latency, cloud path (ms)"),
        ("unanswered", "share of requests unanswered"),
        ("edge_exit_rate", "edge-exit rate of answered"),
    )
    for ax, (y, label) in zip(axes.flat, panels, strict=True):
        sns.lineplot(
            data, x="devices", y=y, hue=hue, hue_order=hue_order, errorbar="sd", ax=ax, **style
        )
        _hollow_markers(ax)
        ax.set(xscale="log", xlabel="devices", ylabel=label)
        _plain_log_ticks(ax.xaxis)
        if hue:
            ax.legend(title=hue.rsplit(".", 1)[-1])
    for ax in axes[0]:
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
    note = _seeds_note(points, "mean and sd over {n} seeds per point")
    figure.suptitle(f"Scale: where the shared links saturate ({note})")
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
        sns.lineplot(data, x=dims.threshold, y=y, hue=hue, errorbar="sd", ax=ax, **_style(hue))
        _hollow_markers(ax)
        ax.set(xlabel="exit threshold", ylabel=label)
    note = _seeds_note(points, "mean and sd over {n} seeds per point")
    figure.suptitle(f"Accuracy, energy and latency against the exit threshold ({note})")
    figure.tight_layout()
    return figure


def energy_by_component(points: pd.DataFrame, dims: SweepDims) -> Figure | str:
    """Mean device energy per request, a panel per component and a bar per grid point.

    A panel each, not stacked bars: idle energy is often a thousand times the compute
    energy, which would vanish on a shared axis.
    """
    columns = ENERGY_PARTS  # the summary's means, flattened to the same column names
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
        "over_time_by_policy": lambda: _over_time(done, requests, dims),
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
    return latency_cdf_by_bandwidth(requests(["status", "latency_s", "seed", *keys]), dims)


def _over_time(
    done: pd.DataFrame, requests: Callable[[list[str]], pd.DataFrame], dims: SweepDims
) -> Figure | str:
    if not dims.policies:
        return f"the grid does not vary the policy ({dims.grid_text()})"
    key = "policy" if "policy" in dims.grid else "policy.name"
    if key not in dims.grid:
        return f"the grid varies the policy by neither policy nor policy.name ({dims.grid_text()})"
    columns = ["t_arrival_s", "status", "latency_s", "correct", "answered_at", key]
    return over_time(requests(columns), by=key)


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
    plain = matplotlib.ticker.FuncFormatter(
        lambda value, _: np.format_float_positional(value, precision=3, fractional=False, trim="-")
    )
    low, high = axis.get_view_interval()
    axis.set_major_formatter(plain)
    # Within one decade there is no major tick, so label the minor ones instead.
    narrow = low > 0 and high / low < 10
    axis.set_minor_formatter(plain if narrow else matplotlib.ticker.NullFormatter())


def _label(index: object, keys: list[str]) -> str:
    values = index if isinstance(index, tuple) else (index,)
    short = [key.rsplit(".", 1)[-1] for key in keys]
    return "\n".join(f"{k}={v}" for k, v in zip(short, values, strict=False))

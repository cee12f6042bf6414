"""One design's share of a run, and the shares put back together (``fogsim.sim.assignment``).

No two designs share a device, and everything before the shared stages happens on a
device, so each design's requests are routed and computed on their own (a ``Share``). They
meet in one run of the shared stages, ordered by when they reach them; the per-request
table and the stages are then each share's, put back in request order. With one design
there is one share, holding every request, and putting it back changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from fogsim.inference import InferenceOutcomes
from fogsim.policies import Decision
from fogsim.scenario.models import Scenario
from fogsim.sim.device import DeviceStage
from fogsim.sim.records import Journeys, StageTable, in_chunks, request_columns
from fogsim.sim.routes import Kinds
from fogsim.sim.shared import StageTimes
from fogsim.sim.workload import Workload

if TYPE_CHECKING:
    from fogsim.sim.engine import DeviceEnergy


@dataclass
class Share:
    """One design's requests (``rows`` of the whole workload) and what the devices made of them."""

    rows: np.ndarray
    name: str  # the design's name ("" for a run of one design)
    outcomes: InferenceOutcomes
    workload: Workload  # its requests only
    decision: Decision
    kinds: Kinds
    kind: np.ndarray
    device: DeviceStage
    journeys: Journeys = field(default=None)  # type: ignore[assignment]  # set once planned


def subset_workload(workload: Workload, rows: np.ndarray) -> Workload:
    """The requests ``rows`` (the whole workload itself when they are all of it, in order)."""
    if rows.size == workload.size:
        return workload
    per_request = ("device", "group", "gateway", "arrival_s", "image_id")
    return dataclasses.replace(
        workload, **{name: getattr(workload, name)[rows] for name in per_request}
    )


def merge_journeys(shares: list[Share]) -> tuple[Journeys, np.ndarray | None]:
    """All shares' journeys as one, in the order requests reach the shared stages; and the
    merged position of each share's rows (shares concatenated; None for one share)."""
    if len(shares) == 1:
        return shares[0].journeys, None
    plans, rows, ready, plan, bits = [], [], [], [], []
    for share in shares:
        j = share.journeys
        plan.append(j.plan + len(plans))
        plans += j.plans
        rows.append(share.rows[j.rows])
        ready.append(j.ready_s)
        bits.append(j.bits)
    ready_all = np.concatenate(ready)
    order = np.argsort(ready_all, kind="stable")
    merged = Journeys(
        np.concatenate(rows)[order],
        ready_all[order],
        plans,
        np.concatenate(plan)[order],
        np.concatenate(bits)[order],
    )
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    return merged, position


def hand_back_times(shares: list[Share], merged: Journeys, position: np.ndarray | None) -> None:
    """Give each share the times of its own rows of the merged journeys."""
    if position is None:
        shares[0].journeys.times = merged.times
        return
    start = 0
    for share in shares:
        size = share.journeys.rows.size
        mine = position[start : start + size]
        share.journeys.times = StageTimes(
            **{f.name: getattr(merged.times, f.name)[mine] for f in dataclasses.fields(StageTimes)}
        )
        start += size


def whole_device_stage(shares: list[Share], n: int) -> DeviceStage:
    """The shares' device stages scattered back over all ``n`` requests."""
    if len(shares) == 1:
        return shares[0].device
    columns = {}
    for f in dataclasses.fields(DeviceStage):
        sample = getattr(shares[0].device, f.name)
        whole = np.full(n, None if sample.dtype == object else np.nan, dtype=sample.dtype)
        for share in shares:
            whole[share.rows] = getattr(share.device, f.name)
        columns[f.name] = whole
    return DeviceStage(**columns)


def merged_columns(
    scenario: Scenario,
    shares: list[Share],
    answer_s: np.ndarray,
    energy: DeviceEnergy,
    server_j: dict[int, np.ndarray],
    named: bool,
    lost_s: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The per-request table of every share, in request order; with a ``design`` column
    when ``named`` (a plan). ``lost_s``: see ``request_columns``."""
    blocks = []
    for share in shares:
        rows = share.rows
        whole = rows.size == answer_s.size
        block = request_columns(
            scenario,
            share.outcomes,
            share.workload,
            share.decision,
            share.kinds,
            share.kind,
            share.device,
            share.journeys,
            answer_s if whole else answer_s[rows],
            energy if whole else _energy_of(energy, rows),
            server_j if whole else {tier: joules[rows] for tier, joules in server_j.items()},
            lost_s if whole or lost_s is None else lost_s[rows],
        )
        # The share's own rows are its request ids (not copied: nothing writes to them).
        block = {"request": rows.astype(np.int64, copy=False), **block}
        if named:
            block["design"] = np.full(rows.size, share.name, dtype=object)
        blocks.append(block)
    if len(blocks) == 1:
        return blocks[0]
    order = np.argsort(np.concatenate([s.rows for s in shares]), kind="stable")
    return {key: _joined([b[key] for b in blocks])[order] for key in blocks[0]}


def _joined(parts: list) -> np.ndarray | pd.Categorical:
    """One column from the shares' blocks; text columns stay categorical."""
    if isinstance(parts[0], pd.Categorical):
        return union_categoricals(parts)
    return np.concatenate(parts)


def _energy_of(energy: DeviceEnergy, rows: np.ndarray) -> DeviceEnergy:
    return type(energy)(*(getattr(energy, f.name)[rows] for f in dataclasses.fields(energy)))


def stage_table(scenario: Scenario, shares: list[Share]) -> StageTable | MergedStages:
    """The stages of every request, as one long table."""
    if len(shares) == 1:
        s = shares[0]
        return StageTable(scenario, s.workload, s.kind, s.kinds, s.device, s.journeys)
    return MergedStages(scenario, shares)


class MergedStages:
    """The stages of every share, as one long table (``fogsim.sim.records.StageTable``)."""

    def __init__(self, scenario: Scenario, shares: list[Share]) -> None:
        self._tables = [
            (s.rows, StageTable(scenario, s.workload, s.kind, s.kinds, s.device, s.journeys))
            for s in shares
        ]

    def take_bytes_sent(self, bytes_sent: np.ndarray) -> None:
        """The bytes each request's device sent, over all requests (see ``StageTable``)."""
        for rows, table in self._tables:
            table.take_bytes_sent(bytes_sent[rows])

    def chunks(self, size: int) -> Iterator[tuple[dict[str, np.ndarray], list[str]]]:
        """The table ``size`` rows at a time (``StageTable.chunks``), from the whole table."""
        yield from in_chunks(*self.columns(), size)

    def columns(self) -> tuple[dict[str, np.ndarray], list[str]]:
        names: list[str] = []
        blocks = []
        for rows, table in self._tables:
            columns, own = table.columns()
            codes = np.array([_code(names, name) for name in own], dtype=np.int32)
            columns["request"] = rows[columns["request"]]
            columns["at"] = codes[columns["at"]] if codes.size else columns["at"]
            blocks.append(columns)
        merged = {key: np.concatenate([b[key] for b in blocks]) for key in blocks[0]}
        order = np.lexsort((merged["stage"], merged["request"]))
        return {key: value[order] for key, value in merged.items()}, names


def _code(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name)

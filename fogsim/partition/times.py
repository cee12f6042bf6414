"""Each tier's seconds for every row: its own measured profile where it has one, else
derived (``timemodel``) from a profile measured elsewhere."""

from __future__ import annotations

import numpy as np

from fogsim.errors import UserInputError
from fogsim.partition import timemodel
from fogsim.partition.network import TIERS, TierNetwork
from fogsim.partition.profiler import Profile
from fogsim.partition.search import Rows


def tier_rows(net: TierNetwork, measured: dict[str, Profile], reference: Profile | None) -> Rows:
    """The search's rows: ``measured`` profiles by tier, the others derived from
    ``reference`` (or, without one, from a measured profile that carries its calibration)."""
    profiles = [*measured.values(), *([reference] if reference is not None else [])]
    if not profiles:
        raise UserInputError("give a profile (--profile P.parquet) or a model (--model M)")
    base = profiles[0] if reference is None else reference
    for tier, other in measured.items():
        _check_same_network(base, other, tier)
    seconds = {}
    for tier in TIERS:
        if tier in measured:
            seconds[tier] = measured[tier].table["time_s"].to_numpy(dtype=float)
        else:
            source = reference or _calibrated(measured, tier)
            seconds[tier] = _derived(source, net, tier)
    table = base.table
    macs = table["macs"]
    return Rows(
        seconds=seconds,
        output_bytes=table["output_bytes"].to_numpy(dtype=np.int64),
        cut_points=np.flatnonzero(table["cut_point"].to_numpy(dtype=bool)),
        macs=None if macs.isna().any() else macs.to_numpy(dtype=float),
    )


def _calibrated(measured: dict[str, Profile], tier: str) -> Profile:
    for profile in measured.values():
        if profile.meta.get("calibration") and not profile.table["macs"].isna().any():
            return profile
    raise UserInputError(
        f"the {tier} tier has no measured profile and none given can derive it (it needs one "
        f"taken by `fogsim profile`, with macs); add --profile {tier}=P.parquet"
    )


def _derived(source: Profile, net: TierNetwork, tier: str) -> np.ndarray:
    profile = getattr(net, tier)
    peak = profile.throughput.get("fp32")
    if peak is None:
        raise UserInputError(
            f"the {tier} profile has no fp32 throughput, which deriving its times needs; "
            f"add one or give --profile {tier}=P.parquet"
        )
    here = timemodel.measured_rates(source.meta)
    there = timemodel.tier_rates(net.names.get(tier, ""), peak)
    return timemodel.derive(source.table, here, there)


def _check_same_network(base: Profile, other: Profile, tier: str) -> None:
    a, b = base.table, other.table
    if len(a) != len(b):
        raise UserInputError(
            f"the {tier} profile has {len(b)} rows, the other {len(a)}: profiles of one "
            "network must agree on layers and cut points; profile the same model on each tier"
        )
    for column in ("layer", "cut_point"):
        differ = np.flatnonzero(a[column].to_numpy() != b[column].to_numpy())
        if len(differ):
            row = int(differ[0])
            raise UserInputError(
                f"the {tier} profile differs from the other at row {row} ({column} "
                f"{b[column].iloc[row]!r} against {a[column].iloc[row]!r}): profiles of one "
                "network must agree on layers and cut points; profile the same model on each tier"
            )

"""Arithmetic energy per MAC by precision, from the named tables in profiles/energy_per_op.yaml.

These count the multiply-adds alone: no memory traffic, no rest of the chip, which
on a real board cost far more. They give `fogsim eval` and the model cards their
relative figure (fp32 against a quantized edge, as the seed paper states its 5.5x).
A simulated device's energy comes from its own profile instead (active power over
its compute time, or its own energy per MAC): see fogsim/profiles/devices.yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import yaml

from fogsim.errors import UserInputError
from fogsim.nn.precisions import PRECISIONS
from fogsim.units import ENERGY_PER_OP

_TABLE_FILE = "energy_per_op.yaml"


@cache
def _tables() -> dict[str, Any]:
    text = resources.files("fogsim.profiles").joinpath(_TABLE_FILE).read_text()
    return yaml.safe_load(text)


def default_table() -> str:
    """Name of the table used when none is given."""
    return str(_tables()["default"])


def table_names() -> list[str]:
    """Names of all energy-per-op tables."""
    return sorted(_tables()["tables"])


def _table(table: str | None) -> dict[str, Any]:
    name = default_table() if table is None else table
    tables = _tables()["tables"]
    if name not in tables:
        raise UserInputError(f"unknown energy table {name!r}; known: {', '.join(table_names())}")
    return tables[name]["energy_per_mac"]


def energy_per_mac(table: str | None = None) -> dict[str, float]:
    """Joules per MAC for every precision in ``table`` (default: the file's default table)."""
    entries = _table(table)
    missing = [p for p in PRECISIONS if p not in entries]
    if missing:
        raise UserInputError(f"energy table {table!r} lacks precision(s) {missing}")
    return {p: ENERGY_PER_OP.parse(entries[p]["value"]) for p in PRECISIONS}


def energy_sources(table: str | None = None) -> dict[str, str]:
    """Where each precision's figure comes from (for reports and model cards)."""
    return {p: str(e["source"]) for p, e in _table(table).items()}


def compute_energy_j(
    ops_by_precision: Mapping[str, int | float], table: str | None = None
) -> float:
    """Arithmetic energy in joules of MACs counted by precision (the multiply-adds alone)."""
    per_mac = energy_per_mac(table)
    unknown = set(ops_by_precision) - set(per_mac)
    if unknown:
        raise ValueError(f"unknown precision(s) {sorted(unknown)}; use {', '.join(PRECISIONS)}")
    return float(sum(n * per_mac[p] for p, n in ops_by_precision.items()))

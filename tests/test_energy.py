"""Energy per MAC by precision: values, units, sources, and sums."""

import pytest

from fogsim.energy import (
    compute_energy_j,
    default_table,
    energy_per_mac,
    energy_sources,
    table_names,
)
from fogsim.errors import UserInputError
from fogsim.nn.quant import PRECISIONS


def test_default_table_values_in_joules_per_mac():
    e = energy_per_mac()
    assert default_table() in table_names()
    assert e["fp32"] == pytest.approx(4.6e-12)  # Horowitz: 3.7 pJ mult + 0.9 pJ add
    assert e["int8"] == pytest.approx(0.23e-12)  # 0.2 pJ + 0.03 pJ
    assert e["binary"] == pytest.approx(35e-15)  # BrainTTA
    assert e["ternary"] == pytest.approx(67e-15)
    assert e["int4"] == pytest.approx(0.23e-12 / 4)  # derived: (4/8)^2 of int8
    assert e["int2"] == pytest.approx(0.23e-12 / 16)


def test_every_precision_has_a_source():
    sources = energy_sources()
    assert set(sources) == set(PRECISIONS)
    assert all(s for s in sources.values())
    assert "derived" in sources["int4"] and "derived" in sources["int2"]


def test_compute_energy_sums_ops_times_energy():
    assert compute_energy_j({"fp32": 1_000_000, "binary": 2_000_000}) == pytest.approx(
        1e6 * 4.6e-12 + 2e6 * 35e-15
    )
    assert compute_energy_j({}) == 0.0


def test_unknown_table_and_precision_are_errors():
    with pytest.raises(UserInputError, match="unknown energy table"):
        energy_per_mac("nope")
    with pytest.raises(ValueError, match="fp16"):
        compute_energy_j({"fp16": 1})

"""Unit parsing: the right base-unit value, and a clear refusal of the wrong dimension."""

import pytest

from fogsim import units


@pytest.mark.parametrize(
    "text, dim, expected",
    [
        ("10 Mbps", units.BANDWIDTH, 10e6),
        ("250 kbps", units.BANDWIDTH, 250e3),
        ("1 Gbit/s", units.BANDWIDTH, 1e9),
        ("25 ms", units.TIME, 0.025),
        ("3 min", units.TIME, 180.0),
        ("2.5 W", units.POWER, 2.5),
        ("438 mW", units.POWER, 0.438),
        ("0.65 uJ/bit", units.ENERGY_PER_BIT, 0.65e-6),
        ("4 GMAC/s", units.THROUGHPUT, 4e9),
        ("11.9 GFLOP/s", units.THROUGHPUT, 5.95e9),
        ("35 fJ/op", units.ENERGY_PER_OP, 35e-15),
        ("10 Wh", units.ENERGY, 36000.0),
        ("2 MB", units.DATA, 16e6),
        ("0.5 /s", units.RATE, 0.5),
        ("30 /min", units.RATE, 0.5),
        ("438.39 mW/Mbps", units.POWER_PER_BANDWIDTH, 438.39e-3 / 1e6),
    ],
)
def test_parse_to_base_units(text: str, dim: units.Dimension, expected: float) -> None:
    assert dim.parse(text) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "value, dim, words",
    [
        ("10 Mbps", units.TIME, "not a time"),
        ("5 W", units.ENERGY, "not a energy"),
        (5, units.TIME, "has no unit"),
        ("fast", units.BANDWIDTH, "cannot read"),
        (None, units.TIME, "string with units"),
        ("inf s", units.TIME, "finite"),
    ],
)
def test_wrong_input_is_refused(value: object, dim: units.Dimension, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        dim.parse(value)


def test_format_round_trips_exactly() -> None:
    # 5 uW parses to 4.9999999999999996e-06 W: a rounded write-back would change it.
    for dim, text in [(units.POWER, "5 uW"), (units.BANDWIDTH, "12.5 Mbps"), (units.TIME, "1/3 s")]:
        value = dim.parse(text)
        assert dim.parse(dim.format(value)) == value

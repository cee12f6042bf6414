"""Physical quantities: parse unit strings at the edges, keep one base unit inside.

Inside fogsim every quantity is a plain float in its base unit: seconds, bits,
joules, watts, operations (one MAC is one operation) and their ratios. Units
appear only where people read or write them: scenarios, profiles and reports.
"""

from __future__ import annotations

import tokenize
from dataclasses import dataclass
from functools import cache

import pint

# Bit rates are spelled out because pint would otherwise guess between
# "mega-baud" and "mega-point-second" for "Mbps" and warn.
# A MAC (multiply-accumulate) is the unit of compute: a FLOP is half of one,
# so "11.9 GFLOP/s" and "5.95 GMAC/s" are the same throughput.
_DEFINITIONS = """
MAC = [compute] = mac
operation = MAC = op
FLOP = 0.5 * MAC
kbps = 1e3 * bit / second
Mbps = 1e6 * bit / second
Gbps = 1e9 * bit / second
"""


@cache
def registry() -> pint.UnitRegistry:
    """The one unit registry fogsim uses (pint), with compute units added."""
    ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    for line in _DEFINITIONS.strip().splitlines():
        ureg.define(line)
    return ureg


@dataclass(frozen=True)
class Dimension:
    """A physical dimension fogsim accepts, its base unit and example spellings."""

    name: str
    base: str
    examples: str

    def parse(self, value: object) -> float:
        """Return ``value`` in this dimension's base unit, or raise ValueError."""
        return parse(value, self)

    def format(self, value: float) -> str:
        """Write a base-unit float back as a string that ``parse`` reads to the same float."""
        return f"{value!r} {self.base}"


TIME = Dimension("time", "s", "'25 ms', '3 min', '1.5 h'")
DATA = Dimension("data size", "bit", "'1500 byte', '2 MB', '800 bit'")
BANDWIDTH = Dimension("bandwidth", "bit/s", "'10 Mbps', '1 Gbit/s', '250 kbit/s'")
POWER = Dimension("power", "W", "'2.5 W', '438 mW'")
ENERGY = Dimension("energy", "J", "'10 Wh', '3.6 kJ', '50 mJ'")
ENERGY_PER_BIT = Dimension("energy per bit", "J/bit", "'0.65 uJ/bit', '100 nJ/bit'")
ENERGY_PER_OP = Dimension("energy per operation", "J/MAC", "'4.6 pJ/MAC', '35 fJ/op'")
THROUGHPUT = Dimension("compute throughput", "MAC/s", "'4 GMAC/s', '11.9 GFLOP/s'")
RATE = Dimension("rate", "1/s", "'0.5 /s', '2 Hz', '30 /min'")
POWER_PER_BANDWIDTH = Dimension("power per bandwidth", "W/(bit/s)", "'438 mW/Mbps'")
LENGTH = Dimension("length", "m", "'250 m', '1.5 km'")
SPEED = Dimension("speed", "m/s", "'1.4 m/s', '50 km/h'")


# What pint's expression parser raises on malformed text ("(", "1/0 s", "**"), besides
# its own errors: found by fuzzing --set values.
_PINT_PARSE_ERRORS = (
    pint.errors.PintError,
    ValueError,
    TypeError,
    AttributeError,
    SyntaxError,
    tokenize.TokenError,
    AssertionError,
    ZeroDivisionError,
    OverflowError,
)


def parse(value: object, dim: Dimension) -> float:
    """Parse ``value`` (a string with units) into ``dim``'s base unit.

    A bare number is refused for dimensioned quantities: a missing unit is the
    most common slip in a scenario, and guessing one hides it.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a {dim.name} as a string with units, e.g. {dim.examples}")
    if isinstance(value, int | float):
        raise ValueError(
            f"{value!r} has no unit; write a {dim.name} with its unit, e.g. {dim.examples}"
        )
    ureg = registry()
    try:
        quantity = ureg.Quantity(value.strip())
    except _PINT_PARSE_ERRORS as exc:
        raise ValueError(
            f"cannot read {value!r} as a {dim.name} ({str(exc) or 'malformed'}); "
            f"e.g. {dim.examples}"
        ) from None
    try:
        magnitude = float(quantity.to(ureg.Unit(dim.base)).magnitude)
    except OverflowError:
        raise ValueError(f"{value!r} is not a finite {dim.name}") from None
    except pint.errors.DimensionalityError:
        unit = f"{quantity.units:~}" or "no unit"
        raise ValueError(
            f"{value!r} is not a {dim.name} (its unit is {unit}); e.g. {dim.examples}"
        ) from None
    if magnitude != magnitude or magnitude in (float("inf"), float("-inf")):
        raise ValueError(f"{value!r} is not a finite {dim.name}")
    return magnitude

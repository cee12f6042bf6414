"""Pydantic field types for physical quantities: a unit string in, a base-unit float inside."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer

from fogsim import units
from fogsim.units import Dimension


def _quantity(dim: Dimension, *, gt: float | None = None, ge: float | None = None):
    return Annotated[
        float,
        BeforeValidator(dim.parse),
        Field(gt=gt, ge=ge, json_schema_extra={"unit": dim.base}),
        # Written back with its base unit, so a resolved scenario re-validates.
        PlainSerializer(dim.format, return_type=str),
    ]


Seconds = _quantity(units.TIME, ge=0)
PositiveSeconds = _quantity(units.TIME, gt=0)
Bits = _quantity(units.DATA, ge=0)
BitRate = _quantity(units.BANDWIDTH, gt=0)
Watts = _quantity(units.POWER, ge=0)
Joules = _quantity(units.ENERGY, gt=0)
JoulesPerBit = _quantity(units.ENERGY_PER_BIT, ge=0)
JoulesPerMac = _quantity(units.ENERGY_PER_OP, ge=0)
MacsPerSecond = _quantity(units.THROUGHPUT, gt=0)
Rate = _quantity(units.RATE, gt=0)
WattsPerBitRate = _quantity(units.POWER_PER_BANDWIDTH, ge=0)
Metres = _quantity(units.LENGTH, ge=0)
PositiveMetres = _quantity(units.LENGTH, gt=0)
Speed = _quantity(units.SPEED, gt=0)

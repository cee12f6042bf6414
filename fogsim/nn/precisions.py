"""Precision names and their bitwidths, without torch: the simulator and the energy table
read them in runs that never load a network (``fogsim.nn.quant`` quantizes with them)."""

from __future__ import annotations

PRECISIONS: tuple[str, ...] = ("binary", "ternary", "int2", "int4", "int8", "fp32")
"""All precisions, from the narrowest to the widest."""

BITS: dict[str, int] = {"binary": 1, "ternary": 2, "int2": 2, "int4": 4, "int8": 8, "fp32": 32}
"""Storage bits per value (a ternary value needs 2 bits)."""

_BY_BITS = {1: "binary", 2: "int2", 4: "int4", 8: "int8", 32: "fp32"}


def parse_precision(value: str | int) -> str:
    """Return the precision name for a name or a bitwidth (1, 2, 4, 8, 32)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a precision")
    if isinstance(value, int):
        if value not in _BY_BITS:
            raise ValueError(f"no precision has {value} bits; use one of {sorted(_BY_BITS)}")
        return _BY_BITS[value]
    if value not in BITS:
        raise ValueError(f"unknown precision {value!r}; use one of {', '.join(PRECISIONS)}")
    return value


def op_precision(weight: str, act: str) -> str:
    """The precision a MAC runs at: the wider of its two operands."""
    return max(weight, act, key=PRECISIONS.index)

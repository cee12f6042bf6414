"""The profile library: named device, radio and server profiles shipped as YAML data.

A scenario names a profile (``profile: rpi4``), or names one and overrides
fields (``profile: {base: rpi4, idle_power: 3 W}``), or writes one in full.
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib import resources
from typing import Any

import yaml

# Fog servers and clouds draw on one library of servers; "cloud" is its older name.
KINDS = {
    "device": "devices.yaml",
    "radio": "radios.yaml",
    "server": "servers.yaml",
    "cloud": "servers.yaml",
}


@cache
def library(kind: str) -> dict[str, dict[str, Any]]:
    """All shipped profiles of one kind ("device", "radio" or "server"), by name."""
    text = resources.files("fogsim.profiles").joinpath(KINDS[kind]).read_text()
    return yaml.safe_load(text)


def expand(kind: str, value: Any) -> Any:
    """Turn a profile reference into the full mapping pydantic validates.

    Anything that is not a reference is returned as it is, for pydantic to judge.
    """
    if isinstance(value, str):
        return dict(_lookup(kind, value))
    if isinstance(value, dict) and "base" in value:
        overrides = {k: v for k, v in value.items() if k != "base"}
        merged = dict(_lookup(kind, value["base"]))
        for key, override in overrides.items():
            # Mappings such as `throughput` merge per entry, so one precision can change alone.
            if isinstance(override, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **override}
            else:
                merged[key] = override
        return merged
    return value


def _lookup(kind: str, name: object) -> dict[str, Any]:
    known = library(kind)
    if isinstance(name, str) and name in known:
        return known[name]
    hint = difflib.get_close_matches(str(name), known, n=1)
    suggestion = f"did you mean '{hint[0]}'? " if hint else ""
    raise ValueError(
        f"unknown {kind} profile {name!r}; {suggestion}known {kind} profiles: {', '.join(known)}"
    )

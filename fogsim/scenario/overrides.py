"""``--set path=value`` overrides, applied to the raw scenario data before validation."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from fogsim.scenario.source import YamlError, load_value

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_path(path: str) -> list[str | int]:
    """Split ``devices[0].radio.uplink`` into ``['devices', 0, 'radio', 'uplink']``."""
    steps: list[str | int] = []
    position = 0
    for match in _STEP.finditer(path):
        gap = path[position : match.start()]
        if gap not in ("", "."):
            raise ValueError(f"cannot read the path {path!r} near {gap!r}")
        key, index = match.groups()
        steps.append(int(index) if index is not None else key)
        position = match.end()
    if not steps or position != len(path):
        raise ValueError(f"cannot read the path {path!r}; write it like devices[0].count")
    return steps


def apply_overrides(data: Any, assignments: list[str]) -> Any:
    """Return a copy of ``data`` with each ``path=value`` assignment applied.

    Values are read as YAML scalars, so ``count=100`` sets a number and
    ``bandwidth=10 Mbps`` a string. A path whose parent is missing is an error.
    """
    result = copy.deepcopy(data)
    for assignment in assignments:
        path, sep, raw = assignment.partition("=")
        if not sep:
            raise ValueError(f"override {assignment!r} has no '='; write path=value")
        steps = parse_path(path.strip())
        value = _value(path, raw)
        node = result
        for depth, step in enumerate(steps[:-1]):
            node = _child(node, step, steps[: depth + 1], path)
        _assign(node, steps[-1], value, path)
    return result


def _value(path: str, raw: str) -> Any:
    if not raw.strip():
        return ""
    try:
        return load_value(raw)
    except YamlError as exc:
        raise ValueError(
            f"{path.strip()}: the value {raw!r} is not readable YAML ({exc})"
        ) from None


def _child(node: Any, step: str | int, prefix: list[str | int], path: str) -> Any:
    if isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
        return node[step]
    if isinstance(step, str) and isinstance(node, dict):
        return node.setdefault(step, {})
    raise ValueError(f"override path {path!r}: {format_steps(prefix)} does not exist")


def _assign(node: Any, step: str | int, value: Any, path: str) -> None:
    if contains(node, step) or (isinstance(step, str) and isinstance(node, dict)):
        node[step] = value
    else:
        raise ValueError(f"override path {path!r} does not exist in the scenario")


def contains(node: Any, step: str | int) -> bool:
    """Whether ``node`` (a mapping or a list) has the key or index ``step``."""
    if isinstance(node, dict):
        return step in node
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


def format_steps(steps: list[str | int] | tuple[str | int, ...]) -> str:
    """Write a path the way users type it: ``devices[2].radio.uplink``."""
    text = ""
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "(top level)"


def plan_from_here(assignment: str) -> str:
    """``--set plan=P``: a plan named on the command line is relative to where it is typed
    (``plan:`` in the file stays relative to the scenario, as its other paths)."""
    key, _, value = assignment.partition("=")
    if key.strip() != "plan" or not value or Path(value).is_absolute():
        return assignment
    return f"plan={Path(value).resolve()}"

"""A sweep's specification: a scenario, a grid of overrides and seeds, expanded into points."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fogsim.errors import UserInputError
from fogsim.scenario.overrides import parse_path
from fogsim.scenario.source import YamlError, load_value, read_yaml

# A number glued to its unit ("10Mbps", "2min", "0.1/s"); the unit starts with a letter or "/".
_GLUED = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z/%].*?)\s*$")
_SPEC_KEYS = {"scenario", "grid", "replications", "seeds", "set"}

Value = int | float | str | bool | None


@dataclass(frozen=True)
class Point:
    """One simulation of a sweep: grid values and a seed, and the overrides that make it."""

    index: int
    params: dict[str, Value]
    seed: int

    @property
    def id(self) -> str:
        """A short, stable name: the same values and seed give the same id in every rerun."""
        text = json.dumps([self.params, self.seed], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    @property
    def overrides(self) -> list[str]:
        return [f"{key}={_yaml_scalar(value)}" for key, value in self.params.items()] + [
            f"seed={self.seed}"
        ]


@dataclass(frozen=True)
class SweepSpec:
    """A scenario file, a grid (path -> values, in order), and the seeds to run each point with."""

    scenario: Path
    grid: dict[str, list[Value]] = field(default_factory=dict)
    replications: int = 1
    seeds: list[int] | None = None  # explicit seeds; otherwise scenario seed + 0..replications-1
    overrides: list[str] = field(default_factory=list)  # applied to every point, before the grid

    def resolved_seeds(self, base_seed: int) -> list[int]:
        if self.seeds is not None:
            return list(self.seeds)
        return [base_seed + i for i in range(self.replications)]

    def points(self, base_seed: int) -> list[Point]:
        """The Cartesian grid times the seeds, in a fixed order."""
        keys = list(self.grid)
        combos = itertools.product(*(self.grid[key] for key in keys))
        pairs = itertools.product(combos, self.resolved_seeds(base_seed))
        return [
            Point(index, dict(zip(keys, values, strict=True)), seed)
            for index, (values, seed) in enumerate(pairs)
        ]

    def to_data(self, base_seed: int) -> dict[str, Any]:
        """The resolved spec as plain data (what ``sweep.yaml`` holds)."""
        return {
            "scenario": str(self.scenario.resolve()),
            "grid": {key: list(values) for key, values in self.grid.items()},
            "seeds": self.resolved_seeds(base_seed),
            "set": list(self.overrides),
        }


def parse_grid_option(option: str) -> tuple[str, list[Value]]:
    """Read ``path=v1,v2,...`` (commas inside brackets or braces do not split)."""
    path, sep, raw = option.partition("=")
    path = path.strip()
    if not sep or not raw.strip():
        raise UserInputError(f"--grid {option!r}: write path=value1,value2,...")
    _check_path(path, "--grid")
    try:
        return path, [normalize_value(item) for item in _split_top_level(raw)]
    except ValueError as exc:
        raise UserInputError(f"--grid {option!r}: {exc}") from None


def normalize_value(raw: Any) -> Value:
    """A grid value as a YAML scalar; a number glued to its unit gets a space (``10 Mbps``).

    Text that is not readable YAML raises ValueError.
    """
    if isinstance(raw, str):
        glued = _GLUED.match(raw)
        if glued and not _is_number(raw):
            return f"{glued.group(1)} {glued.group(2)}"
        try:
            loaded = load_value(raw) if raw.strip() else ""
        except YamlError as exc:
            raise ValueError(f"the value {raw!r} is not readable YAML ({exc})") from None
        if isinstance(loaded, dict | list):
            # Mappings like `policy={name: cloud_only}` stay text; the override reads them back.
            return raw.strip()
        return loaded
    if isinstance(raw, dict | list):
        return yaml.safe_dump(raw, default_flow_style=True, width=10_000).strip()
    return raw


def spec_from_options(
    scenario: str | Path,
    grid: list[str] | dict[str, list[Any]] | None = None,
    replications: int = 1,
    seeds: list[int] | None = None,
    overrides: list[str] | None = None,
) -> SweepSpec:
    """A spec from CLI-style ``path=v1,v2`` strings or a mapping of path -> values."""
    items: list[tuple[str, list[Value]]]
    if isinstance(grid, dict):
        items = []
        for path, values in grid.items():
            _check_path(path, "grid")
            values = values if isinstance(values, list) else [values]
            try:
                items.append((path, [normalize_value(v) for v in values]))
            except ValueError as exc:
                raise UserInputError(f"grid: {path}: {exc}") from None
    else:
        items = [parse_grid_option(option) for option in grid or []]
    paths = [path for path, _ in items]
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise UserInputError(f"grid: {', '.join(repeated)} given more than once")
    for path, values in items:
        if not values:
            raise UserInputError(f"grid: {path} has no values")
        if len({_yaml_scalar(v) for v in values}) != len(values):
            raise UserInputError(f"grid: {path} repeats a value: {values}")
        if path == "seed":
            raise UserInputError("grid: sweep seeds with replications or seeds, not a grid on seed")
    if replications < 1:
        raise UserInputError(f"replications must be at least 1, got {replications}")
    if seeds is not None and (not seeds or len(set(seeds)) != len(seeds)):
        raise UserInputError(f"seeds must be a non-empty list without repeats, got {seeds}")
    grid_values = {path: _one_type(values) for path, values in items}
    return SweepSpec(Path(scenario), grid_values, replications, seeds, list(overrides or []))


def load_sweep_file(path: Path) -> SweepSpec:
    """A sweep YAML: ``scenario`` (relative to the file), ``grid``, ``replications``, ``seeds``."""
    try:
        data = read_yaml(path, "sweep").data
    except YamlError as exc:
        raise UserInputError(f"{path}: cannot read the sweep file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("scenario"), str):
        raise UserInputError(f"{path}: a sweep file is a mapping with at least 'scenario: FILE'")
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        known = ", ".join(sorted(_SPEC_KEYS))
        raise UserInputError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {known}")
    grid = data.get("grid") or {}
    if not isinstance(grid, dict):
        raise UserInputError(f"{path}: grid maps a scenario path to a list of values")
    replications = data.get("replications", 1)
    if not _is_int(replications):
        raise UserInputError(f"{path}: replications is a whole number, got {replications!r}")
    seeds = data.get("seeds")
    if seeds is not None and not (isinstance(seeds, list) and all(map(_is_int, seeds))):
        raise UserInputError(f"{path}: seeds is a list of whole numbers, got {seeds!r}")
    overrides = data.get("set") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise UserInputError(f"{path}: set is a list of 'path=value' texts, got {overrides!r}")
    return spec_from_options(path.parent / data["scenario"], grid, replications, seeds, overrides)


def is_sweep_file(path: Path) -> bool:
    """Whether a YAML file is a sweep spec (it names a scenario) rather than a scenario."""
    try:
        data = read_yaml(path, "sweep").data
    except YamlError:
        return False  # then it is read as a scenario, whose loader reports the problem
    return isinstance(data, dict) and "scenario" in data and "devices" not in data


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _one_type(values: list[Value]) -> list[Value]:
    # One Parquet type per column: ints with floats become floats; any text makes all text.
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return values
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values]
    if all(isinstance(v, bool) for v in values):
        return values
    return [v if isinstance(v, str) else _yaml_scalar(v) for v in values]


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [part for part in parts if part]


def _check_path(path: str, where: str) -> None:
    try:
        parse_path(path)
    except ValueError as exc:
        raise UserInputError(f"{where}: {exc}") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _yaml_scalar(value: Value) -> str:
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()

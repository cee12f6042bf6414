"""Load a scenario file: YAML, overrides, validation, and errors anchored to the file."""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from fogsim.errors import UserInputError
from fogsim.scenario.drift import cross_checks as drift_cross_checks
from fogsim.scenario.models import Scenario
from fogsim.scenario.overrides import apply_overrides, contains, format_steps
from fogsim.scenario.preflight import problems as run_problems
from fogsim.scenario.source import Loc, YamlError, YamlSource, read_yaml


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario, where it is, and what was expected."""

    loc: Loc
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = format_steps(self.loc)
        line = f" (line {self.line})" if self.line else ""
        return f"{where}{line}: {self.message}"


class ScenarioError(UserInputError):
    """A scenario with one or more problems; the message lists them all."""

    def __init__(self, path: Path | str, problems: list[Problem]) -> None:
        self.path = str(path)
        self.problems = problems
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{self.path}: {count}:\n{listing}")


def load_scenario(
    path: str | Path,
    overrides: list[str] | None = None,
    *,
    preflight: bool = False,
    max_memory: float | None = None,
) -> Scenario:
    """Read, override and validate the scenario at ``path``; raise ScenarioError if bad.

    With ``preflight``, also check what running it needs: its files can be read and
    it fits under ``max_memory`` bytes (default: a share of the available memory).
    """
    path = Path(path)
    try:
        source = read_yaml(path)
    except YamlError as exc:
        raise ScenarioError(path, [Problem((), str(exc))]) from None
    return scenario_from_data(
        source,
        base_dir=path.parent,
        origin=path,
        overrides=overrides,
        preflight=preflight,
        max_memory=max_memory,
    )


def scenario_from_data(
    source: YamlSource | dict[str, Any],
    *,
    base_dir: Path,
    origin: Path | str = "<scenario>",
    overrides: list[str] | None = None,
    preflight: bool = False,
    max_memory: float | None = None,
) -> Scenario:
    """Validate already-parsed scenario data; relative paths resolve against ``base_dir``."""
    if not isinstance(source, YamlSource):
        source = YamlSource(source)
    data = source.data
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ScenarioError(origin, [Problem((), f"expected a mapping of keys, got {kind}")])
    try:
        data = apply_overrides(data, overrides or [])
    except ValueError as exc:
        raise ScenarioError(origin, [Problem((), f"--set: {exc}")]) from None
    problems = [Problem(loc, message, source.line_of(loc)) for loc, message in cross_checks(data)]
    try:
        scenario = Scenario.model_validate(data, context={"base_dir": base_dir.resolve()})
    except ValidationError as exc:
        problems += [_problem(error, data, source) for error in exc.errors()]
    else:
        if not problems:
            # Routes and placements need the whole, valid scenario.
            from fogsim.scenario.mobility import problems as mobility_problems
            from fogsim.topology import problems as network_problems

            found = network_problems(scenario) + mobility_problems(scenario)
            problems = [_placed(loc, message, data, source) for loc, message in found]
    if not problems and preflight:
        # Only a valid scenario says which files to read and how many requests to expect.
        found = run_problems(scenario, max_memory)
        problems = [
            Problem(loc, message, source.line_of(loc) if loc else None) for loc, message in found
        ]
    if problems:
        problems.sort(key=lambda problem: problem.line or 0)
        raise ScenarioError(origin, _unique(problems))
    return scenario


def cross_checks(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Checks that span several parts of a scenario (names that must refer to each other).

    They read the raw data, so they are reported together with every field error.
    """
    found: list[tuple[Loc, str]] = []
    network = _mapping(data.get("network"))
    gateways = _entries(network.get("gateways"))
    names = [str(g.get("name")) for g in gateways]
    for index, name in _duplicates(names):
        found.append((("network", "gateways", index, "name"), f"gateway name {name!r} repeats"))
    # The explicit form's gateways are its nodes of kind gateway.
    names += [
        str(node.get("name"))
        for node in _entries(network.get("nodes"))
        if node.get("kind") == "gateway"
    ]
    groups = _entries(data.get("devices"))
    for index, name in _duplicates([str(group.get("name")) for group in groups]):
        found.append((("devices", index, "name"), f"device group name {name!r} repeats"))
    for index, group in enumerate(groups):
        wanted = group.get("gateway")
        for name in [wanted] if isinstance(wanted, str) else _strings(wanted):
            if name not in names:
                message = f"unknown gateway {name!r}; {_hint(name, names)}"
                found.append((("devices", index, "gateway"), message))
    for key in ("gateways", "nodes"):
        for index, gateway in enumerate(_entries(network.get(key))):
            if gateway.get("access") == "shared" and gateway.get("cell") is None:
                found.append(
                    (
                        ("network", key, index, "cell"),
                        "access is 'shared', so give the shared cell: cell: {bandwidth: 50 Mbps}",
                    )
                )
    dataset = data.get("dataset")
    if isinstance(dataset, dict) and dataset.get("name") is None and dataset.get("path") is None:
        found.append((("dataset",), "give a dataset name (e.g. fashion-mnist) or a path"))
    return found + drift_cross_checks(data)


def _placed(loc: Loc, message: str, data: Any, source: YamlSource) -> Problem:
    """A problem found on the validated scenario, at its place in the file."""
    loc, missing = _data_loc(loc, data)
    return Problem(loc, message, source.line_of(loc[:-1] if missing else loc))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _entries(value: Any) -> list[dict[str, Any]]:
    """The mappings in a list, or none; indexes stay those of the file where it is a list."""
    if not isinstance(value, list):
        return []
    return [_mapping(item) for item in value]


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _duplicates(names: list[str]) -> list[tuple[int, str]]:
    seen: set[str] = set()
    repeated = []
    for index, name in enumerate(names):
        if name in seen:
            repeated.append((index, name))
        seen.add(name)
    return repeated


def _hint(word: str, choices: typing.Iterable[str]) -> str:
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1)
    known = f"known: {', '.join(choices)}" if choices else "none defined"
    return f"did you mean {close[0]!r}? ({known})" if close else known


def _problem(error: dict[str, Any], data: Any, source: YamlSource) -> Problem:
    loc, missing = _data_loc(tuple(error["loc"]), data)
    kind = error["type"]
    if missing and kind not in ("missing", "extra_forbidden"):
        # Only a missing key is absent from the data; any other absent last step is
        # pydantic's label for a union member ('float', 'list[float]', a model's name).
        loc, missing = loc[:-1], False
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if kind == "extra_forbidden":
        fields = _fields_at(loc[:-1], data)
        hint = _hint(str(loc[-1]), fields) if fields else ""
        message = f"unknown key {loc[-1]!r}" + (f"; {hint}" if hint else "")
    elif kind == "missing":
        message = "required key is missing"
    elif kind in ("union_tag_not_found", "union_tag_invalid"):
        message = _tag_message(error)
    elif "input" in error and kind != "value_error" and not missing:
        message = f"{message} (got {error['input']!r})"
    line = source.line_of(loc[:-1] if missing else loc)
    return Problem(loc, message, line)


def _tag_message(error: dict[str, Any]) -> str:
    ctx = error.get("ctx", {})
    tag = ctx.get("discriminator", "the kind").strip("'")
    expected = ctx.get("expected_tags", "")
    got = ctx.get("tag")
    if got is None:
        return f"missing key {tag!r}; one of {expected}"
    return f"unknown {tag} {got!r}; expected one of {expected}"


def _data_loc(loc: Loc, data: Any) -> tuple[Loc, bool]:
    """Drop pydantic's union-member labels from ``loc``, keeping only steps in the data.

    Returns the cleaned path and whether its last step is absent from the data.
    """
    cleaned: list[str | int] = []
    node = data
    for position, step in enumerate(loc):
        last = position == len(loc) - 1
        if contains(node, step):
            cleaned.append(step)
            node = node[step]
        elif last:
            cleaned.append(step)
            return tuple(cleaned), True
    return tuple(cleaned), False


def _fields_at(loc: Loc, data: Any) -> list[str]:
    """The keys the scenario schema accepts at ``loc`` (for 'did you mean' hints)."""
    annotation: Any = Scenario
    node = data
    for step in loc:
        node = node[step] if isinstance(node, dict | list) else None
        annotation = _step_type(annotation, step, node)
        if annotation is None:
            return []
    model = _model_of(annotation, node)
    if model is None:
        return []
    names = list(model.model_fields)
    from fogsim.scenario.models import CloudProfile, DeviceProfile, RadioProfile

    if model in (DeviceProfile, RadioProfile, CloudProfile):
        names.append("base")
    return names


def _step_type(annotation: Any, step: str | int, node: Any) -> Any:
    model = _model_of(annotation, node)
    if model is not None and isinstance(step, str):
        field = model.model_fields.get(step)
        return field.annotation if field else None
    for arg in _flatten(annotation):
        origin = typing.get_origin(arg)
        if origin is list and isinstance(step, int):
            return typing.get_args(arg)[0]
        if origin is dict and isinstance(step, str):
            return typing.get_args(arg)[1]
    return None


def _model_of(annotation: Any, node: Any) -> type[BaseModel] | None:
    """The pydantic model behind ``annotation``; for unions, the member ``node`` selects."""
    members = [a for a in _flatten(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    if len(members) <= 1:
        return members[0] if members else None
    for member in members:
        for key in ("name", "process", "model"):
            field = member.model_fields.get(key)
            if field and isinstance(node, dict) and node.get(key) == field.default:
                return member
            literal = typing.get_args(field.annotation) if field else ()
            if isinstance(node, dict) and node.get(key) in literal:
                return member
    return None


def _flatten(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return [leaf for arg in typing.get_args(annotation) for leaf in _flatten(arg)]
    return [annotation]


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    unique = []
    for problem in problems:
        if str(problem) not in seen:
            seen.add(str(problem))
            unique.append(problem)
    return unique

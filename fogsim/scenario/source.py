"""Reading scenario YAML while remembering the line of every key and item.

Input is bounded before anything walks it: a file's size, and the number of
values it holds once aliases are expanded, since a few lines of nested aliases
(a "billion laughs") expand to more values than memory holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]

MAX_BYTES = 4 * 2**20  # a large scenario is a few kB
MAX_VALUES = 100_000  # keys, items and scalars once aliases are expanded
MAX_DEPTH = 64  # levels of nesting; a scenario has about six


@dataclass(frozen=True)
class YamlSource:
    """Parsed YAML plus the line (1-based) at which each path starts."""

    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """The line of ``loc``, or of its nearest ancestor that the file spells out."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None


class YamlError(ValueError):
    """YAML that cannot be read: the message says why, and the line where it knows one."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def read_yaml(path: Path, what: str = "scenario") -> YamlSource:
    """Read the YAML file at ``path``; a missing, binary, huge or malformed file is a YamlError."""
    if path.is_dir():
        raise YamlError(f"is a directory; give the path of a {what} YAML file")
    if not path.is_file():
        raise YamlError(f"file not found; give the path to a {what} YAML file")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise YamlError(f"is {size:,} bytes; a {what} file holds at most {MAX_BYTES:,}")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise YamlError(f"not a text file (it is not UTF-8); give a {what} YAML file") from None
    except OSError as exc:
        raise YamlError(f"cannot read it: {exc.strerror or exc}") from None
    return parse_yaml(text)


def parse_yaml(text: str) -> YamlSource:
    """Parse ``text`` safely into plain data and a map of lines."""
    if len(text) > MAX_BYTES:
        raise YamlError(f"the YAML text is {len(text):,} characters; at most {MAX_BYTES:,}")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _check_size(node)
        data = yaml.safe_load(text)
        lines: dict[Loc, int] = {}
        if node is not None:
            _walk(node, (), lines)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        where = f"line {line}, column {mark.column + 1}: " if mark is not None else ""
        raise YamlError(f"{where}YAML syntax error: {problem}", line) from None
    except RecursionError:
        raise YamlError(f"the YAML is nested more than {MAX_DEPTH} levels deep") from None
    return YamlSource(data, lines)


def load_value(text: str) -> Any:
    """One YAML value (an override, a grid value), with the same bounds as a file."""
    return parse_yaml(text).data


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_size(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand past MAX_VALUES or refer to themselves,
    or that nests deeper than MAX_DEPTH.

    Counted over the graph of shared nodes, each node once, so the count costs
    as much as the file is long, not as much as its expansion.
    """
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            open_nodes.discard(id(node))
            children = _children(node)
            total = 1 + sum(sizes[id(child)] for child in children)
            depth = 1 + max((depths[id(child)] for child in children), default=0)
            line = node.start_mark.line + 1
            if total > MAX_VALUES:
                raise YamlError(
                    f"line {line}: the YAML expands to more than {MAX_VALUES:,} values "
                    "(aliases repeat their anchor's values); write the values out instead",
                    line,
                )
            if depth > MAX_DEPTH:
                raise YamlError(f"line {line}: nested more than {MAX_DEPTH} levels deep", line)
            sizes[id(node)], depths[id(node)] = total, depth
            continue
        if id(node) in sizes:
            continue
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                line = child.start_mark.line + 1
                raise YamlError(f"line {line}: an alias refers to a value that holds it", line)
            if id(child) not in sizes:
                stack.append((child, False))


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*loc, key.value)
            lines[child] = key.start_mark.line + 1
            _walk(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), lines)

"""The README against the code: the commands and options it shows exist, and the columns
and summary keys it lists are those a run writes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from fogsim import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _commands() -> typer.core.TyperGroup:
    if not cli.app.registered_commands:
        cli._register()
    return typer.main.get_command(cli.app)


def readme_invocations() -> list[str]:
    """Every `fogsim ...` the README shows: lines of its code blocks and inline code."""
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("fogsim "):
                found.append(line)
    found += re.findall(r"`(fogsim [a-z][^`]*)`", README)
    return sorted(set(found))


def _options(line: str) -> tuple[list[str], list[str]]:
    """The command words and the option names in one invocation."""
    line = re.sub(r"\s#.*$", "", line)
    try:
        words = shlex.split(line.replace("[", " ").replace("]", " ").replace("|", " "))
    except ValueError:  # an example cut short inside quotes
        words = line.split()
    names = [w for w in words[1:] if re.fullmatch(r"[a-z][a-z-]*", w)]
    options = [w.split("=")[0] for w in words if re.fullmatch(r"--?[a-zA-Z][\w-]*(=.*)?", w)]
    return names, options


@pytest.mark.parametrize("line", readme_invocations())
def test_every_command_and_option_in_the_readme_exists(line: str) -> None:
    names, options = _options(line)
    root = command = _commands()
    for name in names:
        if name not in getattr(command, "commands", {}):
            break
        command = command.commands[name]
    assert command is not root, f"README shows an unknown command: {line}"
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    unknown = [opt for opt in options if opt not in known | {"--help"}]
    assert not unknown, f"{command.name} has no {unknown} (README: {line})"


def test_every_command_is_in_the_readme_table() -> None:
    table = README.split("| command | what it does |", 1)[1].split("\n\n", 1)[0]
    group = _commands()
    for name, command in group.commands.items():
        words = [f"fogsim {name} {sub}" for sub in getattr(command, "commands", {})] or [
            f"fogsim {name}"
        ]
        for word in words:
            assert f"`{word}" in table, f"the README's command table lacks {word}"


def _documented(heading: str, end: str) -> set[str]:
    """The names in the first cell of each row of the README table after ``heading``."""
    section = README.split(heading, 1)[1].split(end, 1)[0]
    rows = [row.split("|")[1] for row in section.splitlines() if row.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z_0-9]+)`", row)}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    import yaml
    from cli_fixtures import invoke
    from test_scenario import BASE

    folder = tmp_path_factory.mktemp("readme")
    shutil.copyfile(ROOT / "models/fmnist-binary.pt", folder / "net.pt")
    (folder / "scenario.yaml").write_text(yaml.safe_dump(BASE, sort_keys=False))
    done = invoke("run", str(folder / "scenario.yaml"), "-o", str(folder / "run"), "-q")
    assert done.code == 0, done.stderr
    return folder / "run"


def test_the_readme_lists_exactly_the_columns_a_run_writes(run_dir: Path) -> None:
    import pyarrow.parquet as pq

    for table, end in (("requests", "Columns of `stages.parquet`"), ("stages", "Answers on")):
        columns = set(pq.read_schema(run_dir / f"{table}.parquet").names)
        documented = _documented(f"Columns of `{table}.parquet`", end)
        assert columns == documented, (table, columns ^ documented)


def test_the_readme_names_every_summary_key(run_dir: Path) -> None:
    import json

    summary = json.loads((run_dir / "summary.json").read_text())
    listing = README.split("- `summary.json`:", 1)[1].split("- `figures/", 1)[0]
    assert [key for key in summary if f"`{key}`" not in listing] == []


def _scenario_keys() -> list[str]:
    """Every key of the scenario schema, as YAML path to it ('devices.arrival.rate')."""
    import typing

    import pydantic

    from fogsim.scenario.models import Scenario

    def models(annotation: object) -> list[type[pydantic.BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            return [annotation]
        return [m for arg in typing.get_args(annotation) for m in models(arg)]

    keys, seen = [], set()

    def walk(model: type[pydantic.BaseModel], path: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            keys.append(f"{path}{name}")
            for inner in models(field.annotation):
                walk(inner, f"{path}{name}.")

    walk(Scenario, "")
    return keys


@pytest.mark.parametrize("key", _scenario_keys())
def test_every_scenario_key_is_named_in_the_readme(key: str) -> None:
    name = key.rsplit(".", 1)[-1]
    # As a YAML key, in code, or as a word in the prose (e.g. '+-degrees').
    assert re.search(rf"(?<![\w.]){re.escape(name)}(?=[:`=\s,}})])", README), key


def test_the_readme_shows_the_csv_headers_the_readers_want() -> None:
    from fogsim.sim.movement import POSITION_COLUMNS, ROAD_COLUMNS

    for columns in (POSITION_COLUMNS, ROAD_COLUMNS, ("time_s", "rate_bps")):
        assert ",".join(columns) in README, columns

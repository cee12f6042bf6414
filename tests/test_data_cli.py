"""`fogsim data list` and `fogsim data info`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_fixtures import imagefolder_files, isolate, write_zip
from typer.testing import CliRunner

from fogsim.commands.data import app
from fogsim.errors import DatasetNotFoundError


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)
    # Narrower than any path: nothing may be folded to fit it.
    monkeypatch.setenv("COLUMNS", "40")


def test_list_shows_where_each_resolves_one_line_each(tmp_path: Path) -> None:
    folder = tmp_path / "xdg-cache" / "fogsim" / "datasets" / "cifar10"
    folder.mkdir(parents=True)
    write_zip(folder / "test.zip", imagefolder_files({"a": [np.zeros((2, 2), np.uint8)]}), "test/")
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 5 and lines[0].split()[0] == "name"
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["cifar10"].endswith(str(folder / "test.zip"))
    for name in ("cifar100", "fashion-mnist", "mnist"):
        assert rows[name].endswith("missing")


def test_info_prints_the_summary(tmp_path: Path) -> None:
    files = imagefolder_files({"a": [np.zeros((2, 2), np.uint8)], "b": [np.ones((2, 2), np.uint8)]})
    archive = write_zip(tmp_path / "test.zip", files, "test/")
    result = CliRunner().invoke(app, ["info", "tiny", "--path", str(archive)])
    assert result.exit_code == 0, result.output
    assert "tiny (test)" in result.output
    assert "2 x 2x2x1 uint8" in result.output
    assert "2: a (1), b (1)" in result.output
    assert "fingerprint  " in result.output and "load time" in result.output


def test_info_of_a_missing_dataset_raises_the_user_error() -> None:
    # The CLI entry point turns FogsimError into a message and exit code 2.
    result = CliRunner().invoke(app, ["info", "mnist"])
    assert isinstance(result.exception, DatasetNotFoundError)

"""The Python API mirrors the command line: fogsim.run and fogsim.sweep return frames."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client

import fogsim

ROOT = Path(__file__).resolve().parents[1]
CAMPUS = ROOT / "scenarios/campus.yaml"
SMALL = ["duration=10 s", "devices[0].count=4"]


def test_import_fogsim_stays_light() -> None:
    code = (
        "import sys, fogsim; print(sorted({'pandas', 'torch', 'distributed'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_run_returns_the_requests_frame_and_summary() -> None:
    result = fogsim.run(CAMPUS, overrides=SMALL, write=False)
    assert isinstance(result.requests, pd.DataFrame) and len(result.requests) > 0
    assert result.summary["requests"] == len(result.requests)
    assert fogsim.run is fogsim.runner.run


def test_sweep_returns_points_and_requests(tmp_path: Path) -> None:
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        result = fogsim.sweep(
            CAMPUS, {"devices[0].count": [2, 3]}, overrides=SMALL, out_dir=tmp_path, client=c
        )
    points, requests = result.points, result.requests
    assert list(points["devices[0].count"]) == [2, 3] and set(points["status"]) == {"done"}
    assert len(requests) == points["requests"].sum()
    assert set(requests["devices[0].count"]) == {2, 3}
    again = fogsim.load_sweep(tmp_path)
    pd.testing.assert_frame_equal(again.points, points)
    assert list(result.read_requests(["latency_s"]).columns) == ["latency_s", "point"]


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'simulate'"):
        fogsim.simulate  # noqa: B018


def test_load_run_is_one_function_under_every_name() -> None:
    import fogsim.results
    import fogsim.rundir

    assert fogsim.load_run is fogsim.rundir.load_run is fogsim.results.load_run
    assert fogsim.results.write_run is fogsim.rundir.write_run


def test_run_takes_a_memory_limit_as_text_or_bytes() -> None:
    from fogsim.errors import UserInputError
    from fogsim.scenario import ScenarioError

    with pytest.raises(ScenarioError, match="over the limit of 1.0 kB"):
        fogsim.run(CAMPUS, overrides=SMALL, write=False, max_memory="1 kB")
    with pytest.raises(ScenarioError, match="over the limit of 2.0 kB"):
        fogsim.run(CAMPUS, overrides=SMALL, write=False, max_memory=2000)
    with pytest.raises(UserInputError, match="max_memory"):
        fogsim.run(CAMPUS, overrides=SMALL, write=False, max_memory="a lot")

"""Fuzzing user input through the real command line: CSV arrival traces and --set values.

Whatever the input, the outcome is either OK or exit code 2 with a message;
never a traceback (an exception other than FogsimError fails the test).
"""

from __future__ import annotations

import copy
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_fixtures import Outcome, invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_scenario import BASE

from fogsim.sim.arrivals import make_arrival

ROOT = Path(__file__).resolve().parents[1]

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-5, 10**6).map(str),
)
fields = st.one_of(numbers, st.text(max_size=8), st.sampled_from(["", " ", "1e400", "0x1", '"3"']))
rows = st.lists(fields, min_size=0, max_size=4).map(",".join)
headers = st.lists(
    st.sampled_from(["time_s", "device", "t", "", " time_s ", "x"]), min_size=0, max_size=3
).map(",".join)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scenarios and traces, each example under its own name, beside a real checkpoint."""
    path = tmp_path_factory.mktemp("fuzz")
    shutil.copyfile(ROOT / "models/fmnist-binary.pt", path / "net.pt")
    return path


def scenario_with(folder: Path, arrival: dict | None = None) -> Path:
    data = copy.deepcopy(BASE)
    if arrival:
        data["devices"][0]["arrival"] = arrival
    path = folder / f"scenario-{uuid.uuid4().hex}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def assert_clean(outcome: Outcome) -> None:
    assert outcome.code in (0, 2), outcome
    if outcome.code == 2:
        assert "error:" in outcome.stderr and len(outcome.stderr.strip()) > len("error:")
    else:
        assert outcome.stdout.startswith("OK: ")


@FUZZ
@given(header=headers, body=st.lists(rows, max_size=6), device_column=st.booleans())
def test_any_csv_trace_validates_or_is_a_clear_error(
    folder: Path, header: str, body: list[str], device_column: bool
) -> None:
    # Each example its own file: a rewrite within the clock's resolution could look unchanged.
    trace = folder / f"trace-{uuid.uuid4().hex}.csv"
    trace.write_text("\n".join([header, *body]) + "\n")
    arrival = {"process": "csv", "path": str(trace)}
    if device_column:
        arrival["device_column"] = "device"
    outcome = invoke("validate", str(scenario_with(folder, arrival)))
    assert_clean(outcome)
    if outcome.code == 0:
        # What validate accepts, the run replays.
        process = make_arrival("csv", path=trace, device_column=arrival.get("device_column"))
        times = process.sample(np.random.default_rng(0), 10.0, device_index=0)
        assert np.all(np.isfinite(times)) and np.all(np.diff(times) >= 0)


@FUZZ
@given(
    path=st.one_of(
        st.sampled_from(
            [
                "duration",
                "seed",
                "devices[0].count",
                "devices[0].arrival",
                "devices[0].arrival.rate",
                "network.cloud_link.bandwidth",
                "policy",
                "dataset",
                "model.checkpoint",
                "deadline",
            ]
        ),
        st.text(max_size=12),
    ),
    value=st.text(max_size=30),
)
def test_any_set_value_validates_or_is_a_clear_error(folder: Path, path: str, value: str) -> None:
    outcome = invoke("validate", str(scenario_with(folder)), "--set", f"{path}={value}")
    assert_clean(outcome)


@FUZZ
@given(value=st.text(max_size=30))
def test_any_grid_value_is_a_clear_error_or_a_grid(value: str) -> None:
    from fogsim.errors import UserInputError
    from fogsim.sweeping.spec import parse_grid_option

    try:
        path, values = parse_grid_option(f"policy={value}")
    except UserInputError as exc:
        assert str(exc).startswith("--grid ")
    else:
        assert path == "policy" and isinstance(values, list)

"""The memory estimate of a run: expected requests by arrival process, bytes by column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fogsim.errors import UserInputError
from fogsim.runner import run
from fogsim.scenario import footprint, load_scenario
from fogsim.sim.arrivals import make_arrival

ROOT = Path(__file__).resolve().parents[1]
CAMPUS = ROOT / "scenarios/campus.yaml"


def campus(*overrides: str):
    return load_scenario(CAMPUS, list(overrides))


@pytest.mark.parametrize(
    ("arrival", "expected"),
    [
        # 40 devices x 2 /s x 120 s (the file's own Poisson arrivals).
        (None, 9_600),
        # 40 devices x 120 s / 0.5 s.
        ("{process: periodic, period: 500 ms}", 9_600),
        # 40 x 10 /s x (1 s on of every 4 s) x 120 s.
        ("{process: bursty, on_rate: 10 /s, mean_on: 1 s, mean_off: 3 s}", 12_000),
    ],
)
def test_expected_requests_by_hand(arrival: str | None, expected: float) -> None:
    overrides = [f"devices[0].arrival={arrival}"] if arrival else []
    assert footprint.estimate(campus(*overrides)).requests == pytest.approx(expected)


def test_trace_requests_count_rows_inside_the_run(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("time_s,device\n1,0\n2,0\n3,39\n4,40\n200,1\n")
    spec = f"{{process: csv, path: {trace}, device_column: device}}"
    # Rows 1, 2 and 3: device 40 is past the 40 devices, 200 s is past the 120 s run.
    assert footprint.estimate(campus(f"devices[0].arrival={spec}")).requests == 3
    shared = f"{{process: csv, path: {trace}}}"
    # Without a device column every one of the 40 devices replays the 4 rows before 120 s.
    assert footprint.estimate(campus(f"devices[0].arrival={shared}")).requests == 160


@pytest.mark.parametrize(
    ("name", "params", "spec"),
    [
        ("poisson", {"rate_per_s": 3.0}, "{process: poisson, rate: 3 /s}"),
        (
            "periodic",
            {"period_s": 0.7, "jitter_s": 0.2},
            "{process: periodic, period: 0.7 s, jitter: 0.2 s}",
        ),
        (
            "bursty",
            {"on_rate_per_s": 20.0, "mean_on_s": 0.5, "mean_off_s": 2.0},
            "{process: bursty, on_rate: 20 /s, mean_on: 0.5 s, mean_off: 2 s}",
        ),
    ],
)
def test_estimate_agrees_with_sampled_arrivals(name: str, params: dict, spec: str) -> None:
    process = make_arrival(name, **params)
    rng = np.random.default_rng(3)
    sampled = np.mean([process.sample(rng, 120.0).size for _ in range(400)])
    per_device = footprint.estimate(campus(f"devices[0].arrival={spec}")).requests / 40
    assert sampled == pytest.approx(per_device, rel=0.05)


@pytest.fixture(scope="module")
def small_run():
    return run(CAMPUS, overrides=["duration=20 s", "devices[0].count=5"], write=False)


def test_column_table_matches_a_real_runs_frame(small_run) -> None:
    frame: pd.DataFrame = small_run.requests
    assert set(footprint.COLUMN_BYTES) == set(frame.columns)
    for name, dtype in frame.dtypes.items():
        size = 1 if isinstance(dtype, pd.CategoricalDtype) else dtype.itemsize
        assert footprint.COLUMN_BYTES[name] == size, name


def test_a_real_run_lands_near_its_expected_requests(small_run) -> None:
    # 5 devices x 2 /s x 20 s = 200 expected; a Poisson count within four deviations.
    expected = footprint.estimate(small_run.scenario).requests
    assert expected == 200
    assert abs(len(small_run.requests) - expected) < 4 * np.sqrt(expected)


def test_bytes_grow_with_requests_and_devices() -> None:
    small = footprint.estimate(campus())
    longer = footprint.estimate(campus("duration=240 s"))
    assert longer.bytes - small.bytes == pytest.approx(9_600 * footprint.request_bytes())
    more = footprint.estimate(campus("devices[0].count=80", "devices[0].arrival.rate=1 /s"))
    assert more.requests == small.requests
    assert more.bytes - small.bytes == pytest.approx(40 * footprint.BYTES_PER_DEVICE)


def test_check_names_the_estimate_the_limit_and_the_option() -> None:
    estimate = footprint.Footprint(requests=2e6, devices=10, bytes=3e9)
    assert footprint.check(estimate, 4e9) is None
    message = footprint.check(estimate, 1e9)
    assert "about 2,000,000 requests, 3.0 GB" in message  # type: ignore[operator]
    assert "limit of 1.0 GB" in message and "--max-memory" in message  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "size"),
    [("8GB", 8e9), ("8 GB", 8e9), ("512 MiB", 512 * 2**20), ("1.5 TB", 1.5e12), ("64 kB", 64e3)],
)
def test_memory_sizes_parse_to_bytes(text: str, size: float) -> None:
    assert footprint.parse_memory(text) == pytest.approx(size)


@pytest.mark.parametrize("text", ["8", "", "lots", "8 Mbps", "0 GB", "-1 GB", "8 s"])
def test_bad_memory_sizes_are_user_errors(text: str) -> None:
    with pytest.raises(UserInputError, match="--max-memory"):
        footprint.parse_memory(text)


def test_the_default_limit_is_a_share_of_available_memory() -> None:
    available = footprint.available_memory()
    assert available > 0
    assert footprint.default_limit() == pytest.approx(footprint.LIMIT_SHARE * available, rel=0.2)

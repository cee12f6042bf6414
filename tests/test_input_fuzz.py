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


# Malformed input for each scenario feature: a clear error naming the key, never a traceback.
SITE = {"name": "gw", "x": "0 m", "y": "0 m", "coverage": "500 m"}
WALK = {"group": "cams", "model": "random_waypoint", "speed": ["1 m/s", "2 m/s"]}
MOBILITY = {"area": {"width": "1 km", "height": "1 km"}, "gateways": [SITE], "devices": [WALK]}
TRACE_HEADER = "time_s,device,x_m,y_m\n"
ROADS_HEADER = "x1_m,y1_m,x2_m,y2_m\n"


def _mobility(**changes) -> dict:
    return {"mobility": {**copy.deepcopy(MOBILITY), **changes}}


def _trace(text: str) -> tuple[dict, dict]:
    walker = {"group": "cams", "model": "trace", "path": "moves.csv"}
    return _mobility(devices=[walker]), {"moves.csv": text}


def _roads(text: str) -> tuple[dict, dict]:
    driver = {
        "group": "cams",
        "model": "road_graph",
        "roads": "roads.csv",
        "speed": ["1 m/s", "2 m/s"],
    }
    return _mobility(devices=[driver]), {"roads.csv": text}


def _cloud_link(bandwidth) -> dict:
    return {
        "network": {**BASE["network"], "cloud_link": {"bandwidth": bandwidth, "delay": "20 ms"}}
    }


def _cloud(**changes) -> dict:
    return {"cloud": {**BASE["cloud"], **changes}}


def _drift(**corruption) -> dict:
    return {"drift": [{"group": "cams", "start": "1 s", "corruptions": [corruption]}]}


BAD_SCENARIOS = {
    # (top-level changes, files beside the scenario, what the message must name)
    "payload_bytes negative": (
        {"policy": {"name": "cloud_only", "payload_bytes": -5}},
        {},
        "payload_bytes",
    ),
    "payload_bytes on early_exit": (
        {"policy": {"name": "early_exit", "payload_bytes": 10}},
        {},
        "payload_bytes",
    ),
    "reply not a boolean": ({"network": {**BASE["network"], "reply": "maybe"}}, {}, "reply"),
    "reply false with recovery": (
        {
            "network": {**BASE["network"], "reply": False},
            "policy": {"name": "cloud_only"},
            "recovery": {"timeout": "1 s"},
        },
        {},
        "network.reply",
    ),
    "request_time beside a base's throughput": (
        _cloud(profile={"base": "t4", "request_time": "1 ms"}),
        {},
        "request_time",
    ),
    "in_flight unknown": (
        _mobility(handover={"in_flight": "bounce"}),
        {},
        "mobility.handover.in_flight",
    ),
    "gateway site without coverage": (
        _mobility(gateways=[{"name": "gw", "x": "0 m", "y": "0 m"}]),
        {},
        "coverage",
    ),
    "no gateway sites": (
        {"mobility": {k: v for k, v in MOBILITY.items() if k != "gateways"}},
        {},
        "gateways",
    ),
    "trace empty": (*_trace(""), "time_s,device,x_m,y_m"),
    "trace wrong header": (*_trace("t,x,y\n0,1,2\n"), "time_s,device,x_m,y_m"),
    "trace header only": (*_trace(TRACE_HEADER), "no rows"),
    "trace not a number": (*_trace(TRACE_HEADER + "a,0,1,2\n"), "time_s"),
    "trace NaN": (*_trace(TRACE_HEADER + "nan,0,1,2\n"), "time_s"),
    "trace infinite": (*_trace(TRACE_HEADER + "0,0,inf,2\n"), "x_m"),
    "trace negative time": (*_trace(TRACE_HEADER + "-1,0,0,0\n1,0,1,1\n"), "time_s -1 is negative"),
    "trace device not whole": (*_trace(TRACE_HEADER + "0,0.5,0,0\n"), "device 0.5 is not a whole"),
    "trace short row": (*_trace(TRACE_HEADER + "0,0\n"), "fields"),
    "trace missing": (_trace("")[0], {}, "moves.csv"),
    "roads empty": (*_roads(""), "x1_m,y1_m,x2_m,y2_m"),
    "roads NaN": (*_roads(ROADS_HEADER + "nan,0,1,1\n"), "x1_m"),
    "roads apart": (*_roads(ROADS_HEADER + "0,0,1,1\n5,5,6,6\n"), "roads"),
    "plan missing": ({"plan": "none.parquet"}, {}, "plan"),
    "plan not parquet": ({"plan": "plan.parquet"}, {"plan.parquet": "not parquet"}, "plan"),
    "drift unknown corruption": (_drift(kind="fog"), {}, "kind 'fog'"),
    "drift severity out of range": (_drift(kind="blur", sigma=1e9), {}, "sigma"),
    "failures negative mtbf": (_cloud(failures={"mtbf": "-1 s", "mttr": "1 s"}), {}, "mtbf"),
    "failures unknown work rule": (
        _cloud(failures={"mtbf": "10 s", "mttr": "1 s", "work": "vanish"}),
        {},
        "work",
    ),
    "recovery unknown then": ({"recovery": {"timeout": "1 s", "then": "cry"}}, {}, "then"),
    "link trace missing": (_cloud_link({"trace": "none.csv"}), {}, "none.csv"),
    "link trace not numbers": (
        _cloud_link({"trace": "rate.csv"}),
        {"rate.csv": "time_s,rate_bps\nx,y\n"},
        "rate.csv",
    ),
    "link generator unknown": (_cloud_link({"generator": "zigzag"}), {}, "zigzag"),
    "random_walk bounds inverted": (
        _cloud_link(
            {
                "generator": "random_walk",
                "start": "5 Mbps",
                "min": "20 Mbps",
                "max": "1 Mbps",
                "sigma": "1 Mbps",
            }
        ),
        {},
        "min <= start <= max",
    ),
}


@pytest.mark.parametrize(("changes", "files", "named"), BAD_SCENARIOS.values(), ids=BAD_SCENARIOS)
def test_bad_scenario_input_is_a_clear_error(
    tmp_path: Path, changes: dict, files: dict, named: str
) -> None:
    shutil.copyfile(ROOT / "models/fmnist-binary.pt", tmp_path / "net.pt")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({**copy.deepcopy(BASE), **changes}, sort_keys=False))
    outcome = invoke("validate", str(scenario))
    assert outcome.code != 0 and named in outcome.stderr, outcome
    assert "Traceback" not in outcome.stderr + outcome.stdout


def test_a_plan_without_its_columns_names_them(tmp_path: Path) -> None:
    import pandas as pd

    pd.DataFrame({"unit": [0, 1, 2]}).to_parquet(tmp_path / "plan.parquet")
    shutil.copyfile(ROOT / "models/fmnist-binary.pt", tmp_path / "net.pt")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({**BASE, "plan": "plan.parquet"}, sort_keys=False))
    outcome = invoke("validate", str(scenario))
    assert outcome.code == 2
    assert "no device or design column (its columns: unit)" in outcome.stderr


BAD_OPTIONS = {
    # (command and options after the scenario, what the message must name)
    "grid unknown key": (["sweep", "-o", "{out}", "--grid", "zzz=1,2"], "zzz"),
    "grid without values": (["sweep", "-o", "{out}", "--grid", "policy.threshold"], "--grid"),
    "grid past the devices": (
        ["sweep", "-o", "{out}", "--grid", "devices[9].count=1,2"],
        "devices[9]",
    ),
    "grid not numbers": (
        ["sweep", "-o", "{out}", "--grid", "policy.threshold=a,b"],
        "policy.threshold",
    ),
    "seeds not integers": (["sweep", "-o", "{out}", "--seeds", "1,x"], "--seeds"),
    "method unknown": (["optimize", "-o", "{out}.parquet", "--method", "magic"], "--method"),
    "objective unknown": (
        ["optimize", "-o", "{out}.parquet", "--objective", "mood"],
        "--objective",
    ),
    "constraint syntax": (
        ["optimize", "-o", "{out}.parquet", "--constraint", "latency<"],
        "METRIC<=VALUE",
    ),
    "constraint unit": (
        ["optimize", "-o", "{out}.parquet", "--constraint", "latency<=fast"],
        "fast",
    ),
    "run engine unknown": (["run", "-o", "{out}", "--engine", "warp"], "--engine"),
    "no workers": (["sweep", "-o", "{out}", "--grid", "seed=1", "--workers", "0"], "--workers"),
    "plan missing by --set": (
        ["validate", "--set", "plan=none.parquet"],
        "--set plan=P is relative",
    ),
}


@pytest.mark.parametrize(("args", "named"), BAD_OPTIONS.values(), ids=BAD_OPTIONS)
def test_bad_command_options_are_a_clear_error(tmp_path: Path, args: list[str], named: str) -> None:
    shutil.copyfile(ROOT / "models/fmnist-binary.pt", tmp_path / "net.pt")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(BASE, sort_keys=False))
    out = tmp_path / "out"
    outcome = invoke(args[0], str(scenario), *[a.format(out=out) for a in args[1:]])
    assert outcome.code != 0 and named in outcome.stderr, outcome
    assert "Traceback" not in outcome.stderr + outcome.stdout
    assert not out.exists() and not Path(f"{out}.parquet").exists()


def test_a_failed_run_leaves_an_existing_directory_as_it_was(tmp_path: Path) -> None:
    shutil.copyfile(ROOT / "models/fmnist-binary.pt", tmp_path / "net.pt")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(BASE, sort_keys=False))
    out = tmp_path / "out"
    assert invoke("run", str(scenario), "-o", str(out)).code == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    failed = invoke("run", str(scenario), "-o", str(out), "--overwrite", "--set", "policy.name=x")
    assert failed.code == 2 and "policy" in failed.stderr
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_value_no_union_member_takes_is_placed_at_its_key(tmp_path: Path) -> None:
    shutil.copyfile(ROOT / "models/fmnist-binary.pt", tmp_path / "net.pt")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(BASE, sort_keys=False))
    outcome = invoke("validate", str(scenario), "--set", "policy.threshold=a")
    assert outcome.code == 2
    # Not 'policy.threshold.float' or 'policy.threshold.list[float]': pydantic's labels.
    assert "policy.threshold (line" in outcome.stderr and "threshold." not in outcome.stderr
    assert "(got 'a')" in outcome.stderr


def test_a_file_that_is_no_checkpoint_says_why_without_torchs_advice(tmp_path: Path) -> None:
    (tmp_path / "net.pt").write_text("not a checkpoint")
    outcome = invoke("eval", str(tmp_path / "net.pt"))
    assert outcome.code != 0 and "is not a readable checkpoint" in outcome.stderr
    assert "WeightsUnpickler error: Unsupported operand" in outcome.stderr
    assert "weights_only" not in outcome.stderr

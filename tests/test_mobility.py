"""Mobility: where devices are, which gateway serves them, and what handovers do to a run."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_fixtures import small_scenario, synthetic_outcomes

from fogsim.scenario import ScenarioError
from fogsim.sim.engine import simulate
from fogsim.sim.movement import NO_GATEWAY, Sites, Track, attachments, random_waypoints
from fogsim.sim.rng import Streams

OUTCOMES = synthetic_outcomes()
A, B = 0, 1  # the gateways' indices

NETWORK = {
    "gateways": [
        {"name": "a", "backhaul": {"bandwidth": "10 Mbps", "delay": "5 ms"}},
        {"name": "b", "backhaul": {"bandwidth": "10 Mbps", "delay": "5 ms"}},
    ],
    "cloud_link": {"bandwidth": "1 Gbps", "delay": "20 ms"},
}


def _sites(coverage: float) -> Sites:
    return Sites(np.array([A, B]), np.array([0.0, 1000.0]), np.zeros(2), np.full(2, coverage))


def _line() -> Track:
    """From gateway a to gateway b (1 km east) at 10 m/s."""
    return Track(np.array([0.0, 100.0]), np.array([0.0, 1000.0]), np.zeros(2))


def test_a_device_hands_over_where_the_nearest_gateway_changes() -> None:
    at, gateway = attachments(_line(), _sites(800.0), 100.0)
    np.testing.assert_array_equal(at, [0.0, 50.0])  # the midpoint, 500 m from each
    np.testing.assert_array_equal(gateway, [A, B])


def test_a_gap_in_coverage_leaves_the_device_without_a_gateway() -> None:
    at, gateway = attachments(_line(), _sites(400.0), 100.0)
    np.testing.assert_allclose(at, [0.0, 40.0, 60.0])  # out at 400 m, in again 400 m from b
    np.testing.assert_array_equal(gateway, [A, NO_GATEWAY, B])


def test_a_diagonal_crossing_is_found_exactly() -> None:
    # From (0, 300) to (1000, 300): the bisector x = 500 is crossed at t = 50 whatever y is.
    track = Track(np.array([10.0, 110.0]), np.array([0.0, 1000.0]), np.full(2, 300.0))
    at, gateway = attachments(track, _sites(2000.0), 200.0)
    np.testing.assert_array_equal(at, [0.0, 60.0])
    np.testing.assert_array_equal(gateway, [A, B])


@given(seed=st.integers(0, 2**32 - 1), low=st.floats(0.5, 20), spread=st.floats(0, 20))
@settings(max_examples=30, deadline=None)
def test_random_waypoints_stay_in_the_area_at_speeds_in_range(
    seed: int, low: float, spread: float
) -> None:
    tracks = random_waypoints(
        5, (800.0, 300.0), (low, low + spread), (0.0, 4.0), 120.0, np.random.default_rng(seed)
    )
    for track in tracks:
        assert track.t[0] == 0.0 and track.t[-1] >= 120.0
        assert (np.diff(track.t) > 0).all()
        assert (track.x >= 0).all() and (track.x <= 800).all()
        assert (track.y >= 0).all() and (track.y <= 300).all()
        speed = np.hypot(np.diff(track.x), np.diff(track.y)) / np.diff(track.t)
        moving = speed > 1e-9
        # The last leg may be cut at the end of the run; all legs keep their own speed.
        assert (speed[moving] >= low * (1 - 1e-9)).all()
        assert (speed[moving] <= (low + spread) * (1 + 1e-9)).all()


def _positions(tmp_path: Path, rows: list[tuple[float, int, float, float]]) -> str:
    path = tmp_path / "positions.csv"
    lines = ["time_s,device,x_m,y_m", *(",".join(str(v) for v in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path.name


def _arrivals(tmp_path: Path, times: list[float]) -> dict:
    path = tmp_path / "arrivals.csv"
    path.write_text("time_s\n" + "".join(f"{t}\n" for t in times))
    return {"process": "csv", "path": path.name}


def _mobility(
    path: str, coverage: str = "800 m", interruption: str = "2 s", in_flight: str | None = None
) -> dict:
    handover = {"interruption": interruption}
    if in_flight is not None:
        handover["in_flight"] = in_flight
    return {
        "gateways": [
            {"name": "a", "x": "0 m", "y": "0 m", "coverage": coverage},
            {"name": "b", "x": "1 km", "y": "0 m", "coverage": coverage},
        ],
        "devices": [{"group": "pis", "model": "trace", "path": path}],
        "handover": handover,
    }


def _commuter(
    tmp_path: Path,
    arrivals: list[float],
    policy: dict | None = None,
    network: dict | None = None,
    rows: list[tuple[float, int, float, float]] | None = None,
    **mobility,
):
    """One device driving from gateway a to gateway b in 100 s (or along ``rows``);
    requests at ``arrivals``."""
    path = _positions(tmp_path, rows or [(0, 0, 0, 0), (100, 0, 1000, 0)])
    devices = [
        {
            "name": "pis",
            "count": 1,
            "profile": "rpi4",
            "radio": "wifi",
            "arrival": _arrivals(tmp_path, arrivals),
            "gateway": ["a", "b"],
        }
    ]
    changes = {"network": network or NETWORK, "devices": devices, "duration": "100 s"}
    if policy is not None:
        changes["policy"] = policy
    return small_scenario(tmp_path, mobility=_mobility(path, **mobility), **changes)


def test_a_request_leaves_through_its_devices_gateway_at_arrival(tmp_path: Path) -> None:
    scenario = _commuter(tmp_path, [10.0, 49.9, 50.0, 90.0], policy={"name": "cloud_only"})
    result = simulate(scenario, OUTCOMES)
    assert list(result.columns["gateway"]) == ["a", "a", "b", "b"]
    assert result.mobility is not None and result.mobility["handovers"] == 1


def test_a_handover_pauses_the_send_it_interrupts(tmp_path: Path) -> None:
    policy = {"name": "cloud_only"}
    moving = simulate(_commuter(tmp_path, [50.0], policy), OUTCOMES).columns
    steady = simulate(_commuter(tmp_path, [50.0], policy, interruption="0 s"), OUTCOMES).columns
    # The device computes nothing (cloud_only), so it would send at 50 s; its radio is down
    # for the handover's 2 s, so it sends from 52 s, taking as long as it would have.
    assert steady["t_uplink_start_s"][0] == 50.0
    assert moving["t_uplink_start_s"][0] == 52.0
    assert moving["t_answer_s"][0] == pytest.approx(steady["t_answer_s"][0] + 2.0, abs=1e-12)
    assert moving["handovers"][0] == 0  # sent after the handover, on the new gateway


def test_a_request_in_flight_finishes_on_its_path_and_its_answer_waits(tmp_path: Path) -> None:
    policy = {"name": "cloud_only"}
    moving = simulate(_commuter(tmp_path, [49.99], policy), OUTCOMES).columns
    steady = simulate(_commuter(tmp_path, [49.99], policy, interruption="0 s"), OUTCOMES).columns
    # It leaves through a before the handover; its answer comes back after 50 s, while the
    # radio is down, and is received in full once it is up again at 52 s.
    assert moving["gateway"][0] == steady["gateway"][0] == "a"
    assert 50.0 < steady["t_answer_s"][0] < 52.0
    received = moving["t_answer_s"][0]
    assert 52.0 < received < 52.01
    assert moving["t_cloud_end_s"][0] == steady["t_cloud_end_s"][0]
    assert moving["handovers"][0] == 1 and moving["status"][0] == "answered_cloud"


def test_out_of_coverage_is_answered_on_the_device_where_it_can_be(tmp_path: Path) -> None:
    arrivals = list(np.arange(41.0, 60.0, 0.5))  # the gap in coverage is 40 s to 60 s
    columns = simulate(_commuter(tmp_path, arrivals, coverage="400 m"), OUTCOMES).columns
    assert (columns["gateway"] == "").all()
    assert (columns["status"] == "answered_edge").all()
    sent = columns["reason"] == "out_of_coverage"
    assert sent.any() and (columns["exit"][sent] == 0).all()
    assert (columns["bytes_sent"] == 0).all()


def test_out_of_coverage_raw_images_are_dropped_with_the_reason(tmp_path: Path) -> None:
    arrivals = [10.0, 45.0, 55.0, 80.0]
    scenario = _commuter(tmp_path, arrivals, {"name": "cloud_only"}, coverage="400 m")
    result = simulate(scenario, OUTCOMES)
    columns = result.columns
    assert list(columns["status"]) == ["answered_cloud", "dropped", "dropped", "answered_cloud"]
    assert list(columns["reason"][1:3]) == ["out_of_coverage"] * 2
    assert result.mobility is not None and result.mobility["dropped_out_of_coverage"] == 2
    assert result.mobility["out_of_coverage_device_s"] == pytest.approx(20.0)


def _city_changes(seed: int = 3, **mobility_changes) -> dict:
    """Six devices on random waypoints over a 2 km x 500 m strip with two gateways."""
    devices = [
        {
            "name": "pis",
            "count": 6,
            "profile": "rpi4",
            "radio": "wifi",
            "arrival": {"process": "poisson", "rate": "4 /s"},
            "gateway": ["a", "b"],
        }
    ]
    mobility = {
        "area": {"width": "2 km", "height": "500 m"},
        "gateways": [
            {"name": "a", "x": "500 m", "y": "250 m", "coverage": "600 m"},
            {"name": "b", "x": "1500 m", "y": "250 m", "coverage": "600 m"},
        ],
        "devices": [{"group": "pis", "model": "random_waypoint", "speed": ["20 m/s", "40 m/s"]}],
        "handover": {"interruption": "300 ms"},
        **mobility_changes,
    }
    return {
        "network": NETWORK,
        "devices": devices,
        "mobility": mobility,
        "seed": seed,
        "duration": "40 s",
    }


def _city(tmp_path: Path, seed: int = 3, **mobility_changes):
    return small_scenario(tmp_path, **_city_changes(seed, **mobility_changes))


def test_a_mobile_run_repeats_and_depends_on_its_seed(tmp_path: Path) -> None:
    first = simulate(_city(tmp_path), OUTCOMES)
    again = simulate(_city(tmp_path), OUTCOMES)
    other = simulate(_city(tmp_path, seed=4), OUTCOMES)
    for name, column in first.columns.items():
        np.testing.assert_array_equal(column, again.columns[name], err_msg=name)
    assert first.mobility == again.mobility
    assert first.mobility is not None and first.mobility["handovers"] > 0
    assert first.mobility != other.mobility


def test_both_engines_agree_with_mobility(tmp_path: Path) -> None:
    scenario = _city(tmp_path)
    simpy_run = simulate(scenario, OUTCOMES, engine="simpy")
    fast_run = simulate(scenario, OUTCOMES, engine="fast")
    assert fast_run.engine == "fast"
    for name, column in simpy_run.columns.items():
        np.testing.assert_array_equal(column, fast_run.columns[name], err_msg=name)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 1000),
    coverage=st.floats(100, 1200),
    speed=st.tuples(st.floats(1, 30), st.floats(0, 30)),
    pause=st.floats(0, 5),
    interruption=st.floats(0, 1),
    policy=st.sampled_from(["early_exit", "cloud_only", "device_only", "adaptive_exit"]),
    outage=st.one_of(st.none(), st.tuples(st.floats(0, 30), st.floats(0.1, 5))),
    recover=st.booleans(),
)
def test_every_request_ends_in_one_state_however_devices_move(
    tmp_path: Path, seed, coverage, speed, pause, interruption, policy, outage, recover
) -> None:
    sites = [
        {"name": "a", "x": "500 m", "y": "250 m", "coverage": f"{coverage} m"},
        {"name": "b", "x": "1500 m", "y": "250 m", "coverage": f"{coverage} m"},
    ]
    walk = {
        "group": "pis",
        "model": "random_waypoint",
        "speed": [f"{speed[0]} m/s", f"{speed[0] + speed[1]} m/s"],
        "pause": f"{pause} s",
    }
    changes = _city_changes(
        seed, gateways=sites, devices=[walk], handover={"interruption": f"{interruption} s"}
    )
    network = {**NETWORK, "gateways": [dict(g) for g in NETWORK["gateways"]]}
    if outage is not None:
        down = outage[0]
        network["gateways"][0]["backhaul"] = {
            "bandwidth": "10 Mbps",
            "failures": {"at": [[f"{down} s", f"{down + outage[1]} s"]], "work": "lost"},
        }
    recovery = {"timeout": "500 ms", "retries": 1, "then": "fallback"} if recover else None
    rule = {"name": policy}
    if policy == "adaptive_exit":
        rule.update(threshold=1.0, degraded_threshold=2.0, target="50 ms")
    changes.update(network=network, recovery=recovery, policy=rule)
    scenario = small_scenario(tmp_path, **changes)
    result = simulate(scenario, OUTCOMES)  # it checks the accounting
    columns = result.columns
    assert result.mobility is not None
    uncovered = columns["gateway"] == ""
    assert np.isin(columns["status"][uncovered], ("answered_edge", "dropped")).all()
    dropped = (columns["status"] == "dropped") & uncovered
    assert (columns["reason"][dropped] == "out_of_coverage").all()
    assert (columns["handovers"] >= 0).all()
    assert (columns["handovers"][columns["status"] == "dropped"] == 0).all()
    assert columns["handovers"].max(initial=0) <= result.mobility["handovers"]
    assert (columns["bytes_sent"][uncovered] == 0).all()


@pytest.mark.parametrize(
    ("change", "wanted"),
    [
        (
            {
                "devices": [
                    {"group": "nobody", "model": "random_waypoint", "speed": ["1 m/s", "2 m/s"]}
                ]
            },
            "unknown device group 'nobody'",
        ),
        (
            {"gateways": [{"name": "a", "x": "0 m", "y": "0 m", "coverage": "1 km"}]},
            "gateway 'b', which has no site",
        ),
        ({"area": None}, "add area"),
        (
            {
                "devices": [
                    {"group": "pis", "model": "random_waypoint", "speed": ["5 m/s", "2 m/s"]}
                ]
            },
            "swap them",
        ),
        (
            {"devices": [{"group": "pis", "model": "random_waypoint", "speed": ["5 s", "6 s"]}]},
            "speed",
        ),
    ],
)
def test_a_bad_mobility_block_is_refused_by_name(tmp_path: Path, change: dict, wanted: str):
    with pytest.raises(ScenarioError, match=wanted):
        _city(tmp_path, **change)


def test_a_position_trace_must_cover_every_device(tmp_path: Path) -> None:
    path = _positions(tmp_path, [(0, 0, 0, 0), (10, 2, 5, 5)])
    mobility = {**_mobility(path)}
    devices = [
        {
            "name": "pis",
            "count": 2,
            "profile": "rpi4",
            "radio": "wifi",
            "arrival": {"process": "poisson", "rate": "1 /s"},
            "gateway": ["a", "b"],
        }
    ]
    with pytest.raises(ScenarioError, match="device 2 is beyond the group's 2 devices"):
        small_scenario(tmp_path, network=NETWORK, devices=devices, mobility=mobility)
    (tmp_path / path).write_text("time,device,x,y\n0,0,0,0\n")
    with pytest.raises(ScenarioError, match="time_s,device,x_m,y_m"):
        small_scenario(tmp_path, network=NETWORK, devices=devices, mobility=mobility)


def test_adaptive_with_retry_and_shared_cells_are_refused_with_mobility(tmp_path: Path) -> None:
    adaptive = {
        "name": "adaptive_exit",
        "threshold": 1.0,
        "degraded_threshold": 2.0,
        "target": "50 ms",
    }
    retry = {"handover": {"in_flight": "retry"}}
    with pytest.raises(ScenarioError, match="adaptive_exit with in_flight: retry"):
        small_scenario(tmp_path, **_city_changes(**retry), policy=adaptive)
    small_scenario(tmp_path, **_city_changes(), policy=adaptive)  # finish: it runs
    network = {**NETWORK, "gateways": [dict(g) for g in NETWORK["gateways"]]}
    network["gateways"][1].update(access="shared", cell={"bandwidth": "20 Mbps"})
    changes = {**_city_changes(), "network": network}
    with pytest.raises(ScenarioError, match="shared cell; mobile devices need dedicated"):
        small_scenario(tmp_path, **changes)


def test_streams_are_named_per_group() -> None:
    # The walk draws from mobility/<group> only: other streams do not move it.
    one, two = Streams(5), Streams(5)
    two.stream("arrivals/pis").random(10)
    walk = (3, (100.0, 100.0), (1.0, 2.0), (0.0, 0.0), 60.0)
    a = random_waypoints(*walk, one.stream("mobility/pis"))
    b = random_waypoints(*walk, two.stream("mobility/pis"))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.t, y.t)


def _roads(tmp_path: Path, rows: list[tuple[float, float, float, float]]) -> str:
    path = tmp_path / "roads.csv"
    lines = ["x1_m,y1_m,x2_m,y2_m", *(",".join(str(v) for v in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path.name


L_ROADS = [(0, 0, 1000, 0), (1000, 0, 1000, 1000), (1000, 1000, 0, 1000)]


def test_road_walks_stay_on_the_roads_at_speeds_in_range(tmp_path: Path) -> None:
    from fogsim.sim.movement import read_roads, road_walks

    roads = read_roads(tmp_path / _roads(tmp_path, L_ROADS))
    tracks = road_walks(4, roads, (5.0, 10.0), (0.0, 3.0), 600.0, np.random.default_rng(1))
    for track in tracks:
        assert track.t[0] == 0.0 and track.t[-1] >= 600.0
        # Every point, and so every straight stretch between two, lies on one road: on the
        # bottom (y = 0), the side (x = 1000) or the top (y = 1000).
        on_road = (track.y == 0) | (track.x == 1000) | (track.y == 1000)
        assert on_road.all()
        dx, dy = np.diff(track.x), np.diff(track.y)
        assert ((dx == 0) | (dy == 0)).all()  # never across the corner
        speed = np.hypot(dx, dy) / np.diff(track.t)
        moving = speed > 1e-9
        assert (speed[moving] >= 5.0 * (1 - 1e-9)).all()
        assert (speed[moving] <= 10.0 * (1 + 1e-9)).all()


def test_a_road_graph_run_repeats_and_accounts_for_every_request(tmp_path: Path) -> None:
    roads = _roads(tmp_path, L_ROADS)
    drive = {"group": "pis", "model": "road_graph", "roads": roads, "speed": ["10 m/s", "20 m/s"]}
    sites = [
        {"name": "a", "x": "0 m", "y": "0 m", "coverage": "900 m"},
        {"name": "b", "x": "1000 m", "y": "1000 m", "coverage": "900 m"},
    ]
    first = simulate(_city(tmp_path, devices=[drive], gateways=sites), OUTCOMES)
    again = simulate(_city(tmp_path, devices=[drive], gateways=sites), OUTCOMES)
    for name, column in first.columns.items():
        np.testing.assert_array_equal(column, again.columns[name], err_msg=name)
    assert first.mobility is not None and first.mobility["handovers"] > 0
    assert set(first.columns["gateway"]) <= {"a", "b", ""}


def test_roads_in_separate_parts_are_refused(tmp_path: Path) -> None:
    roads = _roads(tmp_path, [(0, 0, 10, 0), (20, 0, 30, 0)])
    drive = {"group": "pis", "model": "road_graph", "roads": roads, "speed": ["1 m/s", "2 m/s"]}
    with pytest.raises(ScenarioError, match="the roads form 2 separate parts"):
        _city(tmp_path, devices=[drive])


def test_the_summary_and_its_table_report_handovers(tmp_path: Path) -> None:
    from rich.console import Console

    from fogsim.results import requests_frame, summarize
    from fogsim.summary_table import headline_table

    scenario = _commuter(
        tmp_path, [10.0, 45.0, 49.99, 80.0], {"name": "cloud_only"}, coverage="400 m"
    )
    result = simulate(scenario, OUTCOMES)
    summary = summarize(scenario, requests_frame(result.columns), result.summary_extra())
    moves = summary["mobility"]
    assert moves["handovers"] == 1 and moves["mobile_devices"] == 1
    assert moves["requests_out_of_coverage"] == 2  # 45 s and 49.99 s: out from 40 s to 60 s
    assert summary["dropped_by_reason"] == {"out_of_coverage": 2}
    console = Console(record=True, width=140)
    console.print(headline_table(summary))
    text = console.export_text()
    assert re.search(r"handovers\s+│\s+1\s+│ of 1 devices; 0 in flight", text), text
    assert re.search(r"out of coverage\s+│\s+20(\.00)? s", text), text


def test_a_plan_run_refuses_mobility_rather_than_ignore_it(tmp_path: Path) -> None:
    from fogsim.sim.assignment import not_with_a_plan

    assert not_with_a_plan(_city(tmp_path)) == ["mobility:"]


def test_commute_writes_the_same_bytes_twice_and_on_both_engines(tmp_path: Path) -> None:
    from fogsim.runner import run

    path = Path(__file__).resolve().parents[1] / "scenarios/commute.yaml"
    overrides = ["duration=60 s", "outputs.figures=false"]
    runs = {
        name: run(path, overrides=overrides, out_dir=tmp_path / name, engine=engine)
        for name, engine in (("first", "simpy"), ("again", "simpy"), ("fast", "fast"))
    }
    assert runs["fast"].summary["engine"] == "fast"
    assert runs["first"].summary["mobility"]["handovers"] > 0
    for name in ("requests.parquet", "stages.parquet"):
        first = (tmp_path / "first" / name).read_bytes()
        assert (
            first
            == (tmp_path / "again" / name).read_bytes()
            == (tmp_path / "fast" / name).read_bytes()
        )


def test_adaptive_exit_sends_and_receives_as_a_fixed_policy_does(tmp_path: Path) -> None:
    # Thresholds at 0 never exit, late or not: adaptive_exit sends every request, as
    # early_exit at 0 does, so a moving device's sends and answers must match, outages
    # (the handover at 50 s, and no coverage from 40 s to 60 s) included.
    never = {"name": "adaptive_exit", "threshold": 0.0, "degraded_threshold": 0.0,
             "target": "50 ms"}  # fmt: skip
    arrivals = [10.0, 39.99, 49.99, 60.005, 61.0, 80.0]
    for coverage in ("800 m", "400 m"):
        fixed = _commuter(tmp_path, arrivals, {"name": "early_exit", "threshold": 0.0},
                          coverage=coverage)  # fmt: skip
        adaptive = _commuter(tmp_path, arrivals, never, coverage=coverage)
        want = simulate(fixed, OUTCOMES).columns
        got = simulate(adaptive, OUTCOMES).columns
        for name in ("t_uplink_start_s", "t_uplink_end_s", "t_cloud_end_s", "t_answer_s"):
            np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-9, err_msg=name)
        for name in ("status", "reason", "gateway", "handovers"):
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        # An answer that waited for the radio: after the handover, or for coverage.
        assert want["t_answer_s"][2 if coverage == "800 m" else 1] > 52.0

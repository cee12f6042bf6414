"""Mobility's ``in_flight: retry``: a request in flight at a handover leaves its old path and
is sent again through the new gateway once the radio is up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sim_fixtures import small_scenario, synthetic_outcomes
from test_mobility import NETWORK, _city_changes, _commuter

from fogsim.sim.engine import simulate
from fogsim.sim.fast import FastEngineUnsupported
from fogsim.sim.link import Link
from fogsim.sim.movement import Sites, attachments, read_positions
from fogsim.sim.server import Server

OUTCOMES = synthetic_outcomes()
RAW_BITS = OUTCOMES.input_bytes * 8.0
CLOUD_ONLY = {"name": "cloud_only"}
SEND_ALL = {"name": "early_exit", "threshold": 0.0}  # no exit is confident: features sent
HANDOVER_S, INTERRUPTION_S = 50.0, 2.0


def _slow_a(bandwidth: str = "100 kbps", delay: str = "5 ms") -> dict:
    """Gateway a's backhaul slow (a request on it is still there at the handover)."""
    network = {**NETWORK, "gateways": [dict(g) for g in NETWORK["gateways"]]}
    network["gateways"][0] = {"name": "a", "backhaul": {"bandwidth": bandwidth, "delay": delay}}
    return network


def _drive(
    tmp_path: Path,
    arrivals: list[float],
    policy: dict,
    in_flight: str = "retry",
    network: dict | None = None,
    coverage: str = "800 m",
    rows: list[tuple[float, int, float, float]] | None = None,
    interruption_s: float = INTERRUPTION_S,
):
    """One device driving from gateway a to b (1 km) in 100 s: it hands over at 50 s (or,
    with coverage 400 m, leaves coverage at 40 s and is back at 60 s); or along ``rows``."""
    return _commuter(
        tmp_path,
        arrivals,
        policy,
        network=network or _slow_a(),
        rows=rows,
        coverage=coverage,
        interruption=f"{interruption_s} s",
        in_flight=in_flight,
    )


def _through_b_s(scenario) -> float:
    """A raw image's time from the start of its send to its answer at the device, through
    gateway b, alone in the network: by hand from the scenario's figures."""
    radio = scenario.devices[0].radio
    backhaul = scenario.network.gateways[1].backhaul
    cloud_link = scenario.network.cloud_link
    cloud = scenario.clouds[0]
    answer = scenario.network.answer_size
    up = RAW_BITS / radio.uplink + radio.delay
    up += RAW_BITS / backhaul.bandwidth + backhaul.delay
    up += RAW_BITS / cloud_link.bandwidth + cloud_link.delay
    # Alone, it waits the batching's max_wait for company, then its batch runs.
    serve = cloud.batching.max_wait + cloud.profile.batch_overhead
    serve += cloud.profile.seconds(OUTCOMES.full_ops)
    down = answer / cloud_link.bandwidth + cloud_link.delay
    down += answer / backhaul.bandwidth + backhaul.delay
    down += answer / radio.downlink + radio.delay
    return up + serve + down


def test_a_request_on_the_old_backhaul_is_withdrawn_and_sent_again(tmp_path: Path) -> None:
    scenario = _drive(tmp_path, [49.95], CLOUD_ONLY)
    # Sent at 49.95 s, it reaches a at 49.955 s; 6,272 bits at 100 kbit/s would hold the
    # backhaul until 50.018 s, so the handover at 50 s finds it there.
    result = simulate(scenario, OUTCOMES)
    columns = result.columns
    assert result.engine == "simpy"
    assert columns["retries"][0] == 1 and columns["gateway"][0] == "b"
    assert columns["status"][0] == "answered_cloud" and columns["handovers"][0] == 1
    # Its work on a stopped at the handover: a carried none of it.
    assert result.links["backhaul:a"]["bits_carried"] == 0.0
    assert result.links["backhaul:a"]["transfers"] == 0
    assert result.links["backhaul:b"]["bits_carried"] == RAW_BITS
    # Sent again when the radio is back up, 2 s after the handover.
    expected = HANDOVER_S + INTERRUPTION_S + _through_b_s(scenario)
    assert columns["t_answer_s"][0] == pytest.approx(expected, rel=0, abs=1e-9)
    # Under finish it stays on a and its answer waits for the radio.
    finish = simulate(_drive(tmp_path, [49.95], CLOUD_ONLY, "finish"), OUTCOMES).columns
    assert finish["retries"][0] == 0 and finish["gateway"][0] == "a"
    assert finish["t_answer_s"][0] < expected


def test_a_resend_costs_the_radio_a_second_send(tmp_path: Path) -> None:
    retry = simulate(_drive(tmp_path, [49.95, 70.0], CLOUD_ONLY), OUTCOMES).columns
    radio = _drive(tmp_path, [1.0], CLOUD_ONLY).devices[0].radio
    once = radio.energy.tx * radio.uplink * RAW_BITS / radio.uplink
    # The request at 70 s is sent once; the one at 49.95 s twice.
    assert retry["energy_radio_j"][0] - retry["energy_radio_j"][1] == pytest.approx(once)


def test_a_send_cut_by_the_handover_starts_again_on_the_new_gateway(tmp_path: Path) -> None:
    # Sent from 49.999 s, 3.1 ms long: the handover at 50 s cuts it after 1 ms.
    scenario = _drive(tmp_path, [49.999], CLOUD_ONLY)
    columns = simulate(scenario, OUTCOMES).columns
    assert columns["t_uplink_start_s"][0] == HANDOVER_S + INTERRUPTION_S
    assert columns["retries"][0] == 1 and columns["gateway"][0] == "b"
    expected = HANDOVER_S + INTERRUPTION_S + _through_b_s(scenario)
    assert columns["t_answer_s"][0] == pytest.approx(expected, rel=0, abs=1e-9)
    radio = scenario.devices[0].radio
    per_s = radio.energy.tx * radio.uplink
    steady = simulate(_drive(tmp_path, [70.0], CLOUD_ONLY), OUTCOMES).columns
    # One whole send, and the millisecond cut short.
    cut_s = HANDOVER_S - 49.999
    assert columns["energy_radio_j"][0] - steady["energy_radio_j"][0] == pytest.approx(
        per_s * cut_s, rel=1e-6
    )


def test_an_answer_on_its_way_back_is_abandoned_and_the_request_sent_again(
    tmp_path: Path,
) -> None:
    # Through a with a 500 ms backhaul: sent at 49 s, its answer is on a's backhaul from
    # about 49.55 s to 50.05 s, when the device hands over at 50 s.
    network = _slow_a("10 Mbps", "500 ms")
    scenario = _drive(tmp_path, [49.0], CLOUD_ONLY, network=network)
    columns = simulate(scenario, OUTCOMES).columns
    finish = _drive(tmp_path, [49.0], CLOUD_ONLY, "finish", network, interruption_s=0.0)
    steady = simulate(finish, OUTCOMES).columns
    # The cloud answered before the handover; the answer reached the device after it.
    assert steady["t_cloud_end_s"][0] < HANDOVER_S < steady["t_answer_s"][0] - 0.01
    assert columns["retries"][0] == 1 and columns["gateway"][0] == "b"
    expected = HANDOVER_S + INTERRUPTION_S + _through_b_s(scenario)
    assert columns["t_answer_s"][0] == pytest.approx(expected, rel=0, abs=1e-9)


def test_in_flight_out_of_coverage_the_device_answers_or_drops(tmp_path: Path) -> None:
    # Coverage 400 m: the device leaves a's at 40 s and reaches b's at 60 s.
    dropped = simulate(_drive(tmp_path, [39.95], CLOUD_ONLY, coverage="400 m"), OUTCOMES)
    assert dropped.columns["status"][0] == "dropped"
    assert dropped.columns["reason"][0] == "out_of_coverage"
    assert dropped.links["backhaul:a"]["bits_carried"] == 0.0
    assert dropped.mobility is not None and dropped.mobility["lost_in_flight"] == 1
    answered = simulate(_drive(tmp_path, [39.9], SEND_ALL, coverage="400 m"), OUTCOMES)
    columns = answered.columns
    assert columns["status"][0] == "answered_edge"
    assert columns["reason"][0] == "out_of_coverage"
    assert columns["t_answer_s"][0] == 40.0  # when it lost coverage
    assert (
        columns["exit"][0] == 0
        and columns["prediction"][0] == OUTCOMES.exit_pred[columns["image"][0], 0]
    )


def test_a_request_ready_out_of_coverage_is_not_held_back(tmp_path: Path) -> None:
    # Arrived at 39.99999 s in coverage, its features are ready after 40 s, out of coverage:
    # under retry the device answers then; under finish it waits 20 s for coverage.
    arrival = [39.99999]
    retry = simulate(_drive(tmp_path, arrival, SEND_ALL, coverage="400 m"), OUTCOMES).columns
    finish = simulate(
        _drive(tmp_path, arrival, SEND_ALL, "finish", coverage="400 m"), OUTCOMES
    ).columns
    assert retry["t_edge_end_s"][0] > 40.0
    assert retry["t_answer_s"][0] == retry["t_edge_end_s"][0]
    assert retry["gateway"][0] == "" and retry["bytes_sent"][0] == 0
    assert finish["t_answer_s"][0] > 60.0


def test_a_link_withdraws_a_transfer_and_the_others_speed_up() -> None:
    env = simpy.Environment()
    link = Link(env, "l", 1.0, 0.0, "ps")
    kept, taken = link.transmit(10.0), link.transmit(10.0)
    env.run(until=4.0)  # each has had 2 bits of the 1 bit/s
    assert link.withdraw(taken)
    env.run()
    # The other's 8 bits left go at the full 1 bit/s: through at 12 s, not 20 s.
    assert kept.processed and env.now == 12.0 and not taken.triggered
    assert link.bits_carried == 10.0 and link.busy_time_s == 12.0
    assert not link.withdraw(kept)


def test_a_server_withdraws_a_waiting_item_and_stops_a_batch_left_empty() -> None:
    env = simpy.Environment()
    server = Server(env, "s", 1, lambda _size: 0.0)
    first, second, third = (server.submit(i, 10.0) for i in range(3))
    env.run(until=1.0)
    assert server.withdraw(second)  # waiting: out of the queue
    env.run(until=5.0)
    assert server.withdraw(first)  # alone in service: the worker stops now
    env.run()
    assert third.value.start_s == 5.0 and third.value.end_s == 15.0
    assert not first.triggered and not second.triggered
    assert server.completed == 1 and server.withdrawn == 2 and server.busy_time_s == 15.0


def test_the_fast_engine_refuses_retry_by_name(tmp_path: Path) -> None:
    scenario = _drive(tmp_path, [10.0], CLOUD_ONLY)
    with pytest.raises(FastEngineUnsupported, match="in_flight: retry"):
        simulate(scenario, OUTCOMES, engine="fast")
    assert simulate(scenario, OUTCOMES, engine="auto").engine == "simpy"


def test_a_fifo_link_withdraws_a_transfer_and_those_behind_move_up() -> None:
    env = simpy.Environment()
    link = Link(env, "l", 1.0, 0.5, "fifo", retractable=True)
    first, second, third, fourth = (link.transmit(10.0) for _ in range(4))
    env.run(until=5.0)
    assert link.withdraw(second)  # waiting: the third's turn comes at 10 s, not 20 s
    assert link.withdraw(first)  # half sent: the link is the third's from 5 s
    env.run(until=5.0 + 1e-9)
    assert third.started_s == 5.0 and fourth.started_s == 15.0
    env.run()
    # Delivered after the 0.5 s delay, valued when their last bit left.
    assert third.processed and third.value == 15.0 and fourth.value == 25.0
    assert not first.triggered and not second.triggered
    assert link.bits_carried == 20.0 and link.busy_time_s == 25.0
    assert not link.withdraw(third)
    with pytest.raises(ValueError, match="retractable"):
        Link(env, "m", 1.0, 0.0, "fifo").withdraw(third)


def test_a_request_on_a_fifo_backhaul_is_withdrawn_too(tmp_path: Path) -> None:
    network = _slow_a()
    network["gateways"][0]["backhaul"]["sharing"] = "fifo"
    scenario = _drive(tmp_path, [49.95], CLOUD_ONLY, network=network)
    result = simulate(scenario, OUTCOMES)
    assert result.links["backhaul:a"]["bits_carried"] == 0.0
    expected = HANDOVER_S + INTERRUPTION_S + _through_b_s(scenario)
    assert result.columns["t_answer_s"][0] == pytest.approx(expected, rel=0, abs=1e-9)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 1000),
    coverage=st.floats(100, 1200),
    interruption=st.floats(0, 1),
    policy=st.sampled_from(["early_exit", "cloud_only", "device_only"]),
    recover=st.booleans(),
    slow=st.booleans(),
    sharing=st.sampled_from(["ps", "fifo"]),
    outage=st.one_of(
        st.none(),
        st.tuples(st.floats(0, 30), st.floats(0.1, 5), st.sampled_from(["lost", "restart"])),
    ),
)
def test_every_request_ends_in_one_state_and_a_run_repeats(
    tmp_path: Path, seed, coverage, interruption, policy, recover, slow, sharing, outage
) -> None:
    sites = [
        {"name": "a", "x": "500 m", "y": "250 m", "coverage": f"{coverage} m"},
        {"name": "b", "x": "1500 m", "y": "250 m", "coverage": f"{coverage} m"},
    ]
    handover = {"interruption": f"{interruption} s", "in_flight": "retry"}
    changes = _city_changes(seed, gateways=sites, handover=handover)
    recovery = {"timeout": "300 ms", "retries": 2, "then": "fallback"} if recover else None
    network = _slow_a("300 kbps") if slow else _slow_a("10 Mbps")
    if outage is not None:
        down, length, work = outage
        network["gateways"][1]["backhaul"] = {
            "bandwidth": "10 Mbps",
            "failures": {"at": [[f"{down} s", f"{down + length} s"]], "work": work},
        }
    for gateway in network["gateways"]:
        gateway["backhaul"]["sharing"] = sharing
    network["cloud_link"] = {**network["cloud_link"], "sharing": sharing}
    changes.update(recovery=recovery, policy={"name": policy}, network=network)
    scenario = small_scenario(tmp_path, **changes)
    first = simulate(scenario, OUTCOMES)  # it checks the accounting
    again = simulate(scenario, OUTCOMES)
    for name, column in first.columns.items():
        np.testing.assert_array_equal(column, again.columns[name], err_msg=name)
    columns = first.columns
    moves = first.mobility
    assert moves is not None and moves["in_flight"] == "retry"
    lost = columns["reason"] == "out_of_coverage"
    assert np.isin(columns["status"][lost], ("answered_edge", "dropped")).all()
    assert (columns["handovers"] >= 0).all()
    assert columns["retries"].sum() >= moves["resends_at_handover"]
    if not recover:
        assert columns["retries"].sum() == moves["resends_at_handover"]
        # A re-send follows a handover in the request's life.
        assert (columns["handovers"][columns["retries"] > 0] > 0).all()


def _changes(tmp_path: Path, trace: str, coverage: float) -> np.ndarray:
    track = read_positions(tmp_path / trace).track(0, 100.0)
    sites = Sites(np.array([0, 1]), np.array([0.0, 1000.0]), np.zeros(2), np.full(2, coverage))
    at, _ = attachments(track, sites, 100.0)
    return at[1:]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# a to b at 10 m/s: the request sent at 49.7 s is on a's backhaul at the handover (50 s).
@example(xs=[0, 200, 400, 600, 800, 1000], coverage=800, interruption=0.5, policy=CLOUD_ONLY)
@given(
    xs=st.lists(st.floats(-700, 1700), min_size=6, max_size=6),
    coverage=st.floats(300, 1200),
    interruption=st.floats(0, 1),
    policy=st.sampled_from([CLOUD_ONLY, SEND_ALL, {"name": "early_exit", "threshold": 1.0}]),
)
def test_retry_changes_only_the_requests_in_flight_at_a_change(
    tmp_path: Path, xs, coverage, interruption, policy
) -> None:
    """One device, requests 1.5 s apart (none waits for another; a's backhaul holds each
    for 0.3 s): a request with no change of gateway between its arrival and its end, under
    either rule, ends the same."""
    rows = [(20.0 * i, 0, x, 0.0) for i, x in enumerate(xs)]
    arrivals = list(np.arange(0.7, 99.0, 1.5))
    runs = {}
    for rule in ("finish", "retry"):
        network = _slow_a("20 kbps")
        scenario = _drive(
            tmp_path, arrivals, policy, rule, network, f"{coverage} m", rows, interruption
        )
        runs[rule] = simulate(scenario, OUTCOMES)
    finish, retry = runs["finish"].columns, runs["retry"].columns
    changes = _changes(tmp_path, "positions.csv", coverage)
    arrival = finish["t_arrival_s"]
    touched = np.zeros(arrival.size, dtype=bool)
    for columns in (finish, retry):
        end = np.where(np.isfinite(columns["t_answer_s"]), columns["t_answer_s"], 100.0)
        end = np.where(columns["status"] == "dropped", arrival, end)
        for change in changes:
            touched |= (arrival < change) & (change <= end)
    for name, column in finish.items():
        np.testing.assert_array_equal(column[~touched], retry[name][~touched], err_msg=name)
    # What differs was in flight at a change, and only a handover sends again.
    assert (retry["retries"][~touched] == 0).all()


def test_the_summary_counts_resends_and_losses(tmp_path: Path) -> None:
    from fogsim.results import requests_frame, summarize

    # 39.95 s: on a's backhaul when the device leaves coverage at 40 s, and lost.
    scenario = _drive(tmp_path, [10.0, 39.95, 70.0], CLOUD_ONLY, coverage="400 m")
    result = simulate(scenario, OUTCOMES)
    summary = summarize(scenario, requests_frame(result.columns), result.summary_extra())
    moves = summary["mobility"]
    assert moves["in_flight"] == "retry" and moves["lost_in_flight"] == 1
    assert summary["dropped_by_reason"] == {"out_of_coverage": 1}
    assert moves["dropped_out_of_coverage"] == 1
    assert summary["resilience"]["availability"] == pytest.approx(2 / 3)
    assert summary["resilience"]["dropped_by_reason"] == {"out_of_coverage": 1}
    resent = _drive(tmp_path, [49.95, 70.0], CLOUD_ONLY)
    result = simulate(resent, OUTCOMES)
    summary = summarize(resent, requests_frame(result.columns), result.summary_extra())
    assert summary["mobility"]["resends_at_handover"] == 1
    assert summary["resilience"]["retries"] == {"total": 1, "requests": 1, "max": 1}
    assert summary["resilience"]["availability"] == 1.0


def test_commute_with_retry_writes_the_same_bytes_twice(tmp_path: Path) -> None:
    from fogsim.runner import run

    path = Path(__file__).resolve().parents[1] / "scenarios/commute.yaml"
    overrides = [
        "duration=60 s",
        "outputs.figures=false",
        "mobility.handover.in_flight=retry",
        "policy={name: cloud_only}",
    ]
    runs = [run(path, overrides=overrides, out_dir=tmp_path / str(i)) for i in range(2)]
    assert runs[0].summary["engine"] == "simpy"
    assert runs[0].summary["mobility"]["resends_at_handover"] > 0
    for name in ("requests.parquet", "stages.parquet", "summary.json"):
        assert (tmp_path / "0" / name).read_bytes() == (tmp_path / "1" / name).read_bytes()

"""The simulation engine: accounting, policies, deadlines, batteries, determinism, theory."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_fixtures import BASE, small_scenario, synthetic_outcomes

from fogsim.sim.engine import STATUSES, simulate

OUTCOMES = synthetic_outcomes()


def device(**changes) -> list[dict]:
    group = copy.deepcopy(BASE["devices"][0])
    group.update(changes)
    return [group]


def test_every_request_ends_in_the_state_its_times_show(tmp_path: Path) -> None:
    """Counted a second way: the arrival process fixes how many requests there are, and a
    lightly loaded fog answers every one that arrives well before the end."""
    periodic = {"process": "periodic", "period": "200 ms"}
    columns = simulate(small_scenario(tmp_path, devices=device(arrival=periodic)), OUTCOMES).columns
    status = columns["status"]
    assert status.size == 3 * 100  # 3 devices, one request per 200 ms slot of 20 s
    assert set(status) <= set(STATUSES)
    early = columns["t_arrival_s"] < 20.0 - 1.0  # latency here is tens of milliseconds
    edge = columns["path"] == "edge"
    assert (status[early & edge] == "answered_edge").all()
    assert (status[early & ~edge] == "answered_cloud").all()
    assert early.sum() > 250
    # What did not finish was still in progress when the run ended.
    unfinished = status == "unfinished"
    assert (columns["t_arrival_s"][unfinished] > 19.0).all()
    assert np.isnan(columns["t_answer_s"][unfinished]).all()


def test_edge_answers_follow_the_exit_rule(tmp_path: Path) -> None:
    columns = simulate(small_scenario(tmp_path), OUTCOMES).columns
    entropy = OUTCOMES.exit_entropy[columns["image"], 0]
    assert (entropy[columns["path"] == "edge"] < 1.0).all()
    assert (entropy[columns["path"] == "cloud"] >= 1.0).all()
    edge = columns["status"] == "answered_edge"
    assert (columns["prediction"][edge] == OUTCOMES.exit_pred[columns["image"][edge], 0]).all()
    cloud = columns["status"] == "answered_cloud"
    assert (columns["prediction"][cloud] == OUTCOMES.cloud_pred[columns["image"][cloud]]).all()


def test_edge_only_sends_nothing_and_cloud_only_computes_nothing(tmp_path: Path) -> None:
    edge = simulate(small_scenario(tmp_path, policy={"name": "edge_only"}), OUTCOMES).columns
    assert (edge["bytes_sent"] == 0).all() and (edge["path"] == "edge").all()
    assert (edge["energy_radio_j"] == 0).all()
    cloud = simulate(small_scenario(tmp_path, policy={"name": "cloud_only"}), OUTCOMES).columns
    answered = cloud["status"] == "answered_cloud"
    assert answered.mean() > 0.9
    assert (cloud["bytes_sent"][answered] == OUTCOMES.input_bytes).all()
    assert (cloud["energy_compute_j"] == 0).all()


def test_cloud_latency_covers_every_delay_on_the_way(tmp_path: Path) -> None:
    scenario = small_scenario(tmp_path)
    columns = simulate(scenario, OUTCOMES).columns
    cloud = columns["status"] == "answered_cloud"
    bits = columns["bytes_sent"][cloud] * 8
    radio = scenario.devices[0].radio
    # Up and down: radio, backhaul and cloud-link delays, plus uplink serialisation.
    floor = 2 * (radio.delay + 0.005 + 0.020) + bits / radio.uplink + bits / 10e6
    assert (columns["latency_s"][cloud] >= floor - 1e-9).all()
    assert (columns["t_cloud_end_s"][cloud] >= columns["t_cloud_start_s"][cloud]).all()


def test_same_seed_same_records_and_other_seed_differs(tmp_path: Path) -> None:
    first = simulate(small_scenario(tmp_path), OUTCOMES).columns
    again = simulate(small_scenario(tmp_path), OUTCOMES).columns
    for name, column in first.items():
        np.testing.assert_array_equal(column, again[name], err_msg=name)
    other = simulate(small_scenario(tmp_path, seed=4), OUTCOMES).columns
    assert not np.array_equal(first["t_arrival_s"], other["t_arrival_s"])


def test_bounded_device_queue_drops_with_a_reason(tmp_path: Path) -> None:
    slow = {"base": "rpi4", "throughput": {"binary": "2 MMAC/s"}}
    scenario = small_scenario(tmp_path, devices=device(profile=slow, queue_capacity=2))
    columns = simulate(scenario, OUTCOMES).columns
    dropped = columns["status"] == "dropped"
    assert dropped.any()
    assert set(columns["reason"][dropped]) == {"device_queue_full"}
    assert (columns["energy_j"][dropped] == 0).all()


def test_empty_battery_stops_the_device_for_good(tmp_path: Path) -> None:
    scenario = small_scenario(tmp_path, devices=device(battery="20 J"))
    columns = simulate(scenario, OUTCOMES).columns
    flat = columns["reason"] == "battery_empty"
    assert flat.any()
    for dev in np.unique(columns["device"][flat]):
        mine = columns["device"] == dev
        first = columns["t_arrival_s"][mine & flat].min()
        later = mine & (columns["t_arrival_s"] > first)
        assert (columns["reason"][later] == "battery_empty").all()
        assert (columns["energy_j"][later] == 0).all()
        # The request during which it ran out keeps what was left: nothing goes unrecorded.
        assert columns["energy_j"][mine].sum() == pytest.approx(20.0, rel=1e-12)
        dying = mine & flat & (columns["t_arrival_s"] == first)
        assert columns["energy_j"][dying].item() > 0


def test_deadline_fallback_answers_with_the_edge_prediction(tmp_path: Path) -> None:
    slow_net = copy.deepcopy(BASE["network"])
    slow_net["gateways"][0]["backhaul"]["bandwidth"] = "20 kbps"
    scenario = small_scenario(
        tmp_path, network=slow_net, deadline={"latency": "100 ms", "fallback": "edge"}
    )
    columns = simulate(scenario, OUTCOMES).columns
    fallback = columns["reason"] == "deadline_fallback"
    assert fallback.any()
    assert (columns["status"][fallback] == "answered_edge").all()
    np.testing.assert_allclose(columns["latency_s"][fallback], 0.1)
    images = columns["image"][fallback]
    assert (columns["prediction"][fallback] == OUTCOMES.exit_pred[images, 0]).all()
    without = small_scenario(tmp_path, network=slow_net, deadline={"latency": "100 ms"})
    late = simulate(without, OUTCOMES).columns
    assert (late["reason"] == "late").any() and not (late["reason"] == "deadline_fallback").any()


def trace(tmp_path: Path, *times: float) -> dict:
    """Arrivals at exactly ``times``, replayed by every device of the group."""
    path = tmp_path / "arrivals.csv"
    path.write_text("time_s\n" + "".join(f"{t}\n" for t in times))
    return {"process": "csv", "path": str(path)}


# Edge part of the synthetic network: 100,000 fp32 MACs and 1,000,000 binary ones.
COMPUTE_S = {
    "rpi4": 1e5 / 11.9e9 + 1e6 / 190.4e9,
    "jetson-nano": 1e5 / 118e9 + 1e6 / 944e9,
    "mcu-cortex-m4": 1e5 / 64e6 + 1e6 / 512e6,
}
POWER_W = {"rpi4": (6.4, 2.9), "jetson-nano": (10.0, 1.25), "mcu-cortex-m4": (10e-3, 5e-6)}


def test_device_energy_is_its_own_power_over_its_compute_and_idle_time(tmp_path: Path) -> None:
    """Hand-computed: active power x compute time, idle power x the time before it."""
    groups = [
        {**device()[0], "name": name, "count": 1, "profile": name, "arrival": trace(tmp_path, 1.5)}
        for name in COMPUTE_S
    ]
    scenario = small_scenario(tmp_path, devices=groups, policy={"name": "edge_only"})
    columns = simulate(scenario, OUTCOMES).columns
    for row, name in enumerate(columns["group"]):
        active_w, idle_w = POWER_W[name]
        assert columns["energy_compute_j"][row] == pytest.approx(active_w * COMPUTE_S[name])
        assert columns["energy_idle_j"][row] == pytest.approx(idle_w * 1.5)
        assert columns["energy_radio_j"][row] == 0.0
        expected = active_w * COMPUTE_S[name] + idle_w * 1.5
        assert columns["energy_j"][row] == pytest.approx(expected)
    # Three devices, three compute energies: a microcontroller is not a Jetson.
    assert len(set(columns["energy_compute_j"].round(15))) == 3


def test_device_timeline_accounts_for_every_second(tmp_path: Path) -> None:
    """Counted a second way: up to its last compute, a device drew active power while
    computing and idle power the rest of the time, whatever the queueing in between."""
    scenario = small_scenario(tmp_path, policy={"name": "edge_only"})
    columns = simulate(scenario, OUTCOMES).columns
    active_w, idle_w = POWER_W["rpi4"]
    for dev in np.unique(columns["device"]):
        mine = columns["device"] == dev
        busy_s = (columns["t_edge_end_s"][mine] - columns["t_edge_start_s"][mine]).sum()
        last_end = columns["t_edge_end_s"][mine].max()
        expected = active_w * busy_s + idle_w * (last_end - busy_s)
        assert columns["energy_j"][mine].sum() == pytest.approx(expected, rel=1e-9)


def test_per_op_profile_counts_the_devices_own_energy_per_mac(tmp_path: Path) -> None:
    profile = {
        "base": "rpi4",
        "compute_energy": "per_op",
        "energy_per_mac": {"fp32": "100 pJ/MAC", "binary": "10 pJ/MAC"},
    }
    scenario = small_scenario(
        tmp_path, devices=device(profile=profile, count=1), policy={"name": "edge_only"}
    )
    columns = simulate(scenario, OUTCOMES).columns
    np.testing.assert_allclose(columns["energy_compute_j"], 1e5 * 100e-12 + 1e6 * 10e-12)


CELL_NETWORK = {
    "gateways": [
        {
            "name": "gw",
            "backhaul": {"bandwidth": "10 Mbps", "delay": "3 ms"},
            "access": "shared",
            "cell": {"bandwidth": "62.72 kbps", "delay": "4 ms"},
        }
    ],
    "cloud_link": {"bandwidth": "1 Gbps", "delay": "20 ms"},
}
RAW_BITS = 784 * 8  # cloud_only sends the raw image


@pytest.mark.parametrize(("sharing", "sending_s"), [("ps", 0.2), ("fifo", 0.1)])
def test_radio_on_a_shared_cell_is_charged_for_the_time_the_cell_took(
    tmp_path: Path, sharing: str, sending_s: float
) -> None:
    """Hand-computed: two devices send 6,272 bits each at t = 1 s over a 62.72 kbps cell.

    Shared equally, both send for 0.2 s; one after the other, each sends for 0.1 s.
    Wi-Fi's 0.65 uJ/bit at its 2 Mbps is 1.3 W; receiving the 512-bit answer over
    the cell takes 512 / 62,720 s at 0.2 uJ/bit x 2 Mbps = 0.4 W.
    """
    network = copy.deepcopy(CELL_NETWORK)
    network["gateways"][0]["cell"]["sharing"] = sharing
    scenario = small_scenario(
        tmp_path,
        devices=device(count=2, arrival=trace(tmp_path, 1.0)),
        network=network,
        policy={"name": "cloud_only"},
    )
    columns = simulate(scenario, OUTCOMES).columns
    assert (columns["bytes_sent"] * 8 == RAW_BITS).all()
    assert (columns["status"] == "answered_cloud").all()
    expected = 1.3 * sending_s + 0.4 * 512 / 62_720
    np.testing.assert_allclose(columns["energy_radio_j"], expected, rtol=1e-9)
    # One after the other, the second radio waits its turn before it begins.
    waited = [0.0, 0.0] if sharing == "ps" else [0.0, 0.1]
    np.testing.assert_allclose(np.sort(columns["wait_uplink_s"]), waited, atol=1e-12)
    # At the radio's own 2 Mbps the same bits would cost 0.65 uJ x 6,272: 4.1 mJ, not 0.26 J.
    assert expected > 10 * RAW_BITS * 0.65e-6


def test_lte_radio_sends_waits_in_its_tail_receives_and_tails_again(tmp_path: Path) -> None:
    """Hand-computed from Huang et al.'s model: send at 5.64 Mbps, high-power tail until
    the answer, receive at 12.74 Mbps, then the tail until the run ends (under 11.576 s)."""
    scenario = small_scenario(
        tmp_path,
        duration="10 s",
        devices=device(count=1, radio="lte", arrival=trace(tmp_path, 1.0)),
        policy={"name": "cloud_only"},
    )
    columns = simulate(scenario, OUTCOMES).columns
    answered_at = columns["t_answer_s"].item()
    send_s, receive_s = RAW_BITS / 5.64e6, 512 / 12.74e6
    beta, tail_w = 1.28804, 1.06
    expected = (
        0.43839e-6 * RAW_BITS
        + beta * send_s
        + tail_w * (answered_at - receive_s - (1.0 + send_s))
        + 0.05197e-6 * 512
        + beta * receive_s
        + tail_w * (10.0 - answered_at)
    )
    assert columns["energy_radio_j"].item() == pytest.approx(expected, rel=1e-9)


def test_cloud_energy_counts_busy_and_idle_worker_time(tmp_path: Path) -> None:
    """Counted a second way: each batch in the records kept one worker busy."""
    times = [round(0.05 * k, 2) for k in range(1, 100)]  # all served well before the end
    scenario = small_scenario(
        tmp_path, devices=device(arrival=trace(tmp_path, *times)), policy={"name": "cloud_only"}
    )
    result = simulate(scenario, OUTCOMES)
    columns = result.columns
    served = ~np.isnan(columns["t_cloud_start_s"])
    starts, ends = columns["t_cloud_start_s"][served], columns["t_cloud_end_s"][served]
    batches = set(zip(starts.tolist(), ends.tolist(), strict=True))
    busy_s = sum(end - start for start, end in batches)
    assert result.cloud["busy_worker_s"] == pytest.approx(busy_s, rel=1e-9)
    assert result.cloud["energy_j"] == pytest.approx(70.0 * busy_s + 10.0 * (20.0 - busy_s))


def test_edge_queue_matches_md1_theory(tmp_path: Path) -> None:
    """One device, Poisson arrivals, fixed compute time: mean sojourn is Pollaczek-Khinchine's."""
    macs = 1_000_000 + 100_000  # the synthetic network's edge part: binary plus fp32
    profile = {"base": "rpi4", "throughput": {"binary": "0.01 GMAC/s", "fp32": "0.001 GMAC/s"}}
    service = 1_000_000 / 0.01e9 + 100_000 / 0.001e9  # 0.2 s
    rate = 3.0  # rho = 0.6
    scenario = small_scenario(
        tmp_path,
        duration="40000 s",
        devices=device(
            count=1, profile=profile, arrival={"process": "poisson", "rate": f"{rate} /s"}
        ),
        policy={"name": "edge_only"},
    )
    columns = simulate(scenario, OUTCOMES).columns
    assert macs == sum(OUTCOMES.edge_ops.values())
    rho = rate * service
    expected = service + rho * service / (2 * (1 - rho))
    measured = np.nanmean(columns["latency_s"])
    assert measured == pytest.approx(expected, rel=0.02)


@st.composite
def scenarios(draw):
    groups = []
    for index in range(draw(st.integers(1, 3))):
        group = copy.deepcopy(BASE["devices"][0])
        group.update(
            name=f"g{index}",
            count=draw(st.integers(1, 4)),
            radio=draw(st.sampled_from(["wifi", "lte", "nbiot"])),
            profile=draw(st.sampled_from(["rpi4", "mcu-cortex-m4", "jetson-nano"])),
            arrival=draw(
                st.sampled_from(
                    [
                        {"process": "poisson", "rate": "4 /s"},
                        {"process": "periodic", "period": "300 ms", "jitter": "50 ms"},
                        {
                            "process": "bursty",
                            "on_rate": "10 /s",
                            "mean_on": "1 s",
                            "mean_off": "2 s",
                        },
                    ]
                )
            ),
            queue_capacity=draw(st.sampled_from([None, 1, 3])),
            battery=draw(st.sampled_from([None, "2 J", "50 J"])),
            gateway=draw(st.sampled_from(["gw", ["gw", "cell"]])),
        )
        groups.append(group)
    network = copy.deepcopy(BASE["network"])
    network["gateways"].append(
        {
            "name": "cell",
            "backhaul": {
                "bandwidth": draw(st.sampled_from(["100 kbps", "5 Mbps"])),
                "delay": "3 ms",
            },
            "access": "shared",
            "cell": {
                "bandwidth": "1 Mbps",
                "delay": "4 ms",
                "sharing": draw(st.sampled_from(["ps", "fifo"])),
            },
        }
    )
    network["gateways"][0]["backhaul"]["bandwidth"] = draw(st.sampled_from(["200 kbps", "20 Mbps"]))
    cloud = {
        "profile": "t4",
        "workers": draw(st.integers(1, 3)),
        "batching": {"max_batch": draw(st.integers(1, 8)), "max_wait": "3 ms"},
        "queue_capacity": draw(st.sampled_from([None, 2])),
    }
    policy = draw(
        st.sampled_from(
            [
                {"name": "early_exit", "threshold": 0.5},
                {"name": "early_exit", "rule": "maxprob", "threshold": 0.7},
                {"name": "edge_only"},
                {"name": "cloud_only"},
            ]
        )
    )
    deadline = draw(
        st.sampled_from([None, {"latency": "150 ms", "fallback": "edge"}, {"latency": "150 ms"}])
    )
    return dict(
        devices=groups,
        network=network,
        cloud=cloud,
        policy=policy,
        deadline=deadline,
        duration="8 s",
        seed=draw(st.integers(0, 10_000)),
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=scenarios())
def test_accounting_holds_for_random_small_scenarios(changes: dict, tmp_path: Path) -> None:
    result = simulate(small_scenario(tmp_path, **changes), OUTCOMES)
    columns = result.columns  # simulate itself checks accounting; these are the invariants
    status = columns["status"]
    assert np.isin(status, STATUSES).all()
    answered = np.char.startswith(np.asarray(status, dtype=str), "answered")
    assert (columns["t_answer_s"][answered] <= 8.0 + 1e-9).all()
    assert (columns["latency_s"][answered] >= 0).all()
    assert (columns["energy_j"] >= 0).all()
    assert (
        (status == "dropped")
        == (np.isin(columns["reason"], ["device_queue_full", "battery_empty", "cloud_queue_full"]))
    ).all()
    for stats in result.links.values():
        assert stats["bits_carried"] <= stats["bandwidth_bps"] * 8.0 * (1 + 1e-9)
    # A request left unfinished was still being worked on when the run ended: its edge
    # part ended after the end, or its cloud answer had not had time to come back
    # (at most 1 s of NB-IoT delay, 19 ms of its downlink and 32 ms of links).
    unfinished = status == "unfinished"
    edge = columns["path"] == "edge"
    assert (columns["t_edge_end_s"][unfinished & edge] > 8.0).all()
    cloud_end = columns["t_cloud_end_s"][unfinished & ~edge]
    assert (cloud_end[~np.isnan(cloud_end)] > 8.0 - 1.06).all()
    # No device spends more than its battery, and each answer's energy is counted.
    for group in changes["devices"]:
        battery = float(group["battery"].split()[0]) if group["battery"] else np.inf
        mine = columns["group"] == group["name"]
        spent = np.bincount(columns["device"][mine], weights=columns["energy_j"][mine])
        assert (spent <= battery * (1 + 1e-12)).all()
    assert (columns["energy_j"][answered & (columns["bytes_sent"] > 0)] > 0).all()


@pytest.mark.parametrize("seed", range(5))
def test_rows_by_device_then_time_are_lexsort_s_order(seed):
    from fogsim.sim.device import _by_device_then

    rng = np.random.default_rng(seed)
    device = np.repeat(np.arange(30), rng.integers(0, 6, 30))
    time_s = np.round(rng.random(device.size) * 4) / 4  # ties within a device
    time_s[rng.random(device.size) < 0.1] = np.nan
    rows = np.flatnonzero(rng.random(device.size) < 0.8)
    expected = rows[np.lexsort((time_s[rows], device[rows]))]
    np.testing.assert_array_equal(_by_device_then(rows, device, time_s), expected)
    # Already in order (the usual case): the rows as they are.
    ordered = np.lexsort((np.nan_to_num(time_s), device))
    np.testing.assert_array_equal(
        _by_device_then(ordered, device, np.nan_to_num(time_s)), ordered
    )

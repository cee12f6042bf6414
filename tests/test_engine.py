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


def test_every_request_ends_in_exactly_one_state(tmp_path: Path) -> None:
    columns = simulate(small_scenario(tmp_path), OUTCOMES).columns
    counts = {s: int((columns["status"] == s).sum()) for s in STATUSES}
    assert sum(counts.values()) == columns["request"].size > 100
    assert counts["answered_edge"] > 0 and counts["answered_cloud"] > 0


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
        assert columns["energy_j"][mine].sum() <= 20.0


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


def test_energy_components_add_up(tmp_path: Path) -> None:
    columns = simulate(small_scenario(tmp_path), OUTCOMES).columns
    total = columns["energy_compute_j"] + columns["energy_radio_j"] + columns["energy_idle_j"]
    np.testing.assert_allclose(columns["energy_j"], total)
    sent = columns["bytes_sent"] > 0
    np.testing.assert_allclose(
        columns["energy_radio_j"][sent], columns["bytes_sent"][sent] * 8 * 0.65e-6
    )


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
    answered = np.char.startswith(status.astype(str), "answered")
    assert (columns["t_answer_s"][answered] <= 8.0 + 1e-9).all()
    assert (columns["latency_s"][answered] >= 0).all()
    assert (columns["energy_j"] >= 0).all()
    assert (
        (status == "dropped")
        == (np.isin(columns["reason"], ["device_queue_full", "battery_empty", "cloud_queue_full"]))
    ).all()
    for stats in result.links.values():
        assert stats["bits_carried"] <= stats["bandwidth_bps"] * 8.0 * (1 + 1e-9)

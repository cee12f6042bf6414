"""The adaptive policy: devices that answer more on their own while their answers come
back late, deciding during the run from what each one has seen of its own requests."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from sim_fixtures import FOG_NETWORK, FOG_SERVER, fog_scenario, three_part_outcomes

from fogsim.errors import UserInputError
from fogsim.policies import AdaptiveExit
from fogsim.scenario import ScenarioError, load_scenario
from fogsim.sim.adaptive import DeviceViews
from fogsim.sim.engine import simulate

THREE = three_part_outcomes()
ADAPTIVE = {"name": "adaptive_exit", "threshold": 1.0, "degraded_threshold": 2.0,
            "target": "100 ms"}
FIXED = {"name": "early_exit", "threshold": 1.0}


def test_thresholds_move_from_the_target_to_twice_it() -> None:
    policy = AdaptiveExit(degraded_threshold=2.0, target="200 ms")
    levels = [policy.level(s) for s in (0.0, 0.2, 0.3, 0.4, 5.0)]
    assert levels == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])


def test_a_device_learns_of_an_answer_only_when_it_arrives() -> None:
    views = DeviceViews(devices=2, rows=3, smoothing=0.5, window_s=5.0)
    views.sent(0, 0, now=0.0)
    views.sent(0, 1, now=1.0)
    views.answer_arrives(0, 0, at_s=2.0, rtt_s=2.0)
    seen = views.observe(0, now=1.5)  # the answer is still on its way
    assert (seen.rtt_s, seen.oldest_wait_s, seen.in_flight) == (0.0, 1.5, 2)
    seen = views.observe(0, now=2.0)
    assert (seen.rtt_s, seen.oldest_wait_s, seen.in_flight) == (2.0, 1.0, 1)
    views.answer_arrives(0, 1, at_s=3.0, rtt_s=1.0)
    assert views.observe(0, now=3.0).rtt_s == 1.5  # smoothed: 2 + 0.5 * (1 - 2)
    assert views.observe(1, now=3.0) == views.observe(1, now=0.0)  # its own only


def test_a_request_unanswered_past_the_window_is_given_up_on() -> None:
    views = DeviceViews(devices=1, rows=2, smoothing=0.5, window_s=5.0)
    views.sent(0, 0, now=0.0)
    assert views.observe(0, now=4.0).oldest_wait_s == 4.0
    seen = views.observe(0, now=6.0)
    assert (seen.oldest_wait_s, seen.in_flight) == (0.0, 0)
    views.answer_arrives(0, 0, at_s=7.0, rtt_s=7.0)  # late: counts as a round trip only
    assert views.observe(0, now=8.0).in_flight == 0
    assert views.observe(0, now=8.0).rtt_s == 7.0


def _shared_cell() -> dict:
    network = copy.deepcopy(FOG_NETWORK)
    network["nodes"][0].update(access="shared", cell={"bandwidth": "5 Mbps", "delay": "5 ms"})
    return network


@pytest.mark.parametrize("network", [FOG_NETWORK, _shared_cell()], ids=["own radio", "cell"])
def test_a_device_never_late_decides_as_the_fixed_thresholds_do(
    tmp_path: Path, network: dict
) -> None:
    # With a target no answer misses, every decision made during the run is the fixed one,
    # and so is every time: the radios' first-in first-out, the cell, the shared stages.
    # (The radio's queue, run request by request here, rounds apart from the closed form
    # the fixed policy's uses by an ulp or so.)
    fixed = simulate(fog_scenario(tmp_path, network=network, policy=FIXED), THREE).columns
    patient = {**ADAPTIVE, "target": "1 h"}
    adaptive = simulate(fog_scenario(tmp_path, network=network, policy=patient), THREE).columns
    for name, column in fixed.items():
        if column.dtype == np.float64:
            np.testing.assert_allclose(column, adaptive[name], rtol=1e-12, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(column, adaptive[name], err_msg=name)


SLOW_TO_ADAPT = {**ADAPTIVE, "target": "300 ms"}  # above the slow box's round trips


def _outage(tmp_path: Path, policy: dict):
    # A fog box slowed to 50 ms a batch and down from 5 s to 12 s: answers stop coming.
    slow = {**FOG_SERVER, "profile": {"base": "edge-server", "batch_overhead": "50 ms"}}
    fog = [{**slow, "failures": {"at": [["5 s", "12 s"]]}}]
    return simulate(fog_scenario(tmp_path, fog=fog, policy=policy), THREE).columns


def test_during_an_outage_devices_answer_more_on_their_own(tmp_path: Path) -> None:
    fixed, adaptive = _outage(tmp_path, FIXED), _outage(tmp_path, SLOW_TO_ADAPT)
    before = fixed["t_arrival_s"] < 4.5
    np.testing.assert_array_equal(fixed["path"][before], adaptive["path"][before])
    during = (fixed["t_arrival_s"] > 6.0) & (fixed["t_arrival_s"] < 12.0)
    on_device = {name: (c["path"][during] == "edge").mean() for name, c in
                 (("fixed", fixed), ("adaptive", adaptive))}
    assert on_device["adaptive"] > on_device["fixed"] + 0.2, on_device
    # Each request it kept is one the fixed thresholds sent on and the looser one exits.
    kept = (adaptive["path"] == "edge") & (fixed["path"] != "edge")
    entropy = THREE.exit_entropy[adaptive["image"][kept], 0]
    assert kept.any() and (entropy >= 1.0).all() and (entropy < 2.0).all()
    assert (adaptive["bytes_sent"][kept] == 0).all() and (adaptive["exit"][kept] == 0).all()
    assert np.isnan(adaptive["t_uplink_start_s"][kept]).all()
    assert (adaptive["latency_s"][during] <= fixed["latency_s"][during] + 1e-9).mean() > 0.9


def test_the_same_seed_gives_the_same_decisions(tmp_path: Path) -> None:
    first, again = _outage(tmp_path, ADAPTIVE), _outage(tmp_path, ADAPTIVE)
    for name, column in first.items():
        np.testing.assert_array_equal(column, again[name], err_msg=name)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"policy": {**ADAPTIVE, "degraded_threshold": 0.5}}, "at or above"),
        ({"policy": {**ADAPTIVE, "rule": "maxprob", "threshold": 0.5,
                     "degraded_threshold": 0.9}}, "at or below"),
    ],
)
def test_a_degraded_threshold_that_exits_less_is_refused(
    tmp_path: Path, changes: dict, message: str
) -> None:
    with pytest.raises(UserInputError, match=message):
        simulate(fog_scenario(tmp_path, **changes), THREE)


def test_batteries_are_refused_with_the_group_named(tmp_path: Path) -> None:
    scenario = fog_scenario(tmp_path, policy=ADAPTIVE)
    devices = [{**scenario.model_dump(mode="json")["devices"][0], "battery": "5 J"}]
    with pytest.raises(UserInputError, match=r"devices\[0\]\.battery"):
        simulate(fog_scenario(tmp_path, policy=ADAPTIVE, devices=devices), THREE)


def test_validate_finds_what_the_run_would_refuse() -> None:
    # The direction needs the checkpoint card's thresholds: fogsim validate reads them.
    path = Path(__file__).resolve().parents[1] / "scenarios/bad-day.yaml"
    bad = ["policy={name: adaptive_exit, degraded_threshold: 0.1, target: 1 s}",
           "devices[1].battery=5 J"]
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, bad, preflight=True)
    text = str(caught.value)
    assert "policy.degraded_threshold" in text and "devices[1].battery" in text
    load_scenario(path, preflight=True)  # as shipped it is fine

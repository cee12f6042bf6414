"""The peer workload's features: a payload in bytes for the raw-offload policies, servers
at a fixed time per request, and runs with no answer coming back; on both engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sim_fixtures import small_scenario, synthetic_outcomes
from test_fast_engine import assert_same_run

from fogsim.policies import FogOnly
from fogsim.results import stages_frame
from fogsim.runner import outcomes_for
from fogsim.scenario import ScenarioError, load_scenario
from fogsim.scenario.models import Scenario
from fogsim.sim.engine import simulate

ROOT = Path(__file__).resolve().parents[1]
UPLINK_BPS, RADIO_DELAY_S = 10e6, 5e-3
BACKHAUL_BPS, BACKHAUL_DELAY_S = 100e6, 10e-3
REQUEST_S, PAYLOAD = 0.05e-3, 1000
ANSWER_BITS, DOWNLINK_BPS = 512, 10e6


def offload(tmp_path: Path, reply: bool = True, **changes: Any) -> Scenario:
    """One device sending a request a second over its own radio, one backhaul, one server."""
    network: dict[str, Any] = {
        "nodes": [{"name": "gw", "kind": "gateway"}, {"name": "dc", "kind": "site"}],
        "links": [
            {
                "from": "gw",
                "to": "dc",
                "bandwidth": "100 Mbps",
                "delay": "10 ms",
                "sharing": "fifo",
            },
        ],  # fmt: skip
    }
    if not reply:
        network["reply"] = False
    data: dict[str, Any] = {
        "name": "offload",
        "seed": 1,
        "duration": "5 s",
        "devices": [
            {
                "name": "sensor",
                "count": 1,
                "profile": "rpi4",
                "radio": {
                    "base": "wifi",
                    "uplink": "10 Mbps",
                    "downlink": "10 Mbps",
                    "delay": "5 ms",
                },
                "arrival": {"process": "periodic", "period": "1 s"},
                "gateway": "gw",
            }
        ],  # fmt: skip
        "network": network,
        "cloud": {
            "at": "dc",
            "profile": {
                "request_time": "0.05 ms",
                "batch_overhead": "0 s",
                "power": "70 W",
                "idle_power": "10 W",
            },
        },  # fmt: skip
        "policy": {"name": "cloud_only", "payload_bytes": PAYLOAD},
    }
    return small_scenario(tmp_path, **{**data, **changes})


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_latency_without_an_answer_is_uplink_backhaul_and_service(
    tmp_path: Path, engine: str
) -> None:
    result = simulate(offload(tmp_path, reply=False), synthetic_outcomes(), engine=engine)
    assert result.engine == engine
    columns = result.columns
    expected = (
        PAYLOAD * 8 / UPLINK_BPS + RADIO_DELAY_S
        + PAYLOAD * 8 / BACKHAUL_BPS + BACKHAUL_DELAY_S
        + REQUEST_S
    )  # fmt: skip
    assert columns["request"].size == 5  # one a second, none waits for another
    assert (columns["bytes_sent"] == PAYLOAD).all()  # not the image's 784 bytes
    np.testing.assert_allclose(columns["latency_s"], expected, rtol=0, atol=1e-12)
    # Nothing comes back: the radio only sends, and the request ends with the server.
    stages = stages_frame(*result.stages.columns())
    last = stages.groupby("request").tail(1)
    assert (last["at"] == "cloud").all() and (last["kind"] == "compute").all()
    np.testing.assert_array_equal(last["t_end_s"].to_numpy(), columns["t_answer_s"])
    assert list(stages.groupby("request").size().unique()) == [3]  # radio, backhaul, cloud
    sent_only = 0.65e-6 * PAYLOAD * 8  # wifi's tx energy per bit, no answer received
    np.testing.assert_allclose(columns["energy_radio_j"], sent_only, rtol=1e-9)


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_an_answer_adds_the_way_back(tmp_path: Path, engine: str) -> None:
    outcomes = synthetic_outcomes()
    one_way = simulate(offload(tmp_path, reply=False), outcomes, engine=engine).columns
    both = simulate(offload(tmp_path), outcomes, engine=engine).columns
    back = (
        BACKHAUL_DELAY_S + ANSWER_BITS / BACKHAUL_BPS + RADIO_DELAY_S + ANSWER_BITS / DOWNLINK_BPS
    )
    np.testing.assert_allclose(both["latency_s"] - one_way["latency_s"], back, rtol=0, atol=1e-12)
    assert (both["energy_radio_j"] > one_way["energy_radio_j"]).all()


def test_without_a_payload_the_raw_image_is_sent(tmp_path: Path) -> None:
    scenario = offload(tmp_path, policy={"name": "cloud_only"})
    columns = simulate(scenario, synthetic_outcomes()).columns
    assert (columns["bytes_sent"] == 784).all()


def test_fog_only_takes_a_payload_too() -> None:
    outcomes = synthetic_outcomes()
    assert FogOnly(payload_bytes=2000).raw_bytes(outcomes) == 2000
    assert FogOnly().raw_bytes(outcomes) == outcomes.input_bytes


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"policy": {"name": "cloud_only", "payload_bytes": 0}}, "greater than 0"),
        ({"policy": {"name": "early_exit", "payload_bytes": 10}}, "payload_bytes"),
        (
            {"cloud": {"profile": {"base": "t4", "request_time": "1 ms"}}},
            "not both",
        ),
        (
            {"cloud": {"profile": {"batch_overhead": "0 s", "power": "1 W", "idle_power": "0 W"}}},
            "give throughput .* or request_time",
        ),
        ({"recovery": {"timeout": "1 s", "retries": 1}}, "recovery .* needs answers"),
        (
            {"policy": {"name": "adaptive_exit", "degraded_threshold": 2.0, "target": "1 s"}},
            "adaptive_exit",
        ),
        ({"deadline": {"latency": "1 s", "fallback": "device"}}, "deadline.fallback"),
    ],
)
def test_bad_combinations_are_refused_by_name(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ScenarioError, match=message):
        offload(tmp_path, reply=False, **changes)


def test_answer_size_needs_replies(tmp_path: Path) -> None:
    scenario = offload(tmp_path, reply=False)
    network = scenario.network.model_dump(mode="json")
    network["answer_size"] = "1 kB"
    with pytest.raises(ScenarioError, match="answer_size counts only"):
        offload(tmp_path, network=network)
    network["answer_size"] = scenario.network.model_dump(mode="json")["answer_size"]
    network["links"][0]["downlink"] = {"bandwidth": "10 Mbps"}
    with pytest.raises(ScenarioError, match="remove the downlink of gw->dc"):
        offload(tmp_path, network=network)
    del network["links"][0]["downlink"]
    # A resolved scenario lists the default answer size: it loads again.
    network["answer_size"] = scenario.network.model_dump(mode="json")["answer_size"]
    assert offload(tmp_path, network=network).network.reply is False


def test_peer_offload_is_the_same_run_on_both_engines() -> None:
    overrides = ["devices[0].count=400", "duration=20 s"]
    scenario = load_scenario(ROOT / "scenarios/peer-offload.yaml", overrides)
    outcomes = outcomes_for(scenario)
    reference = simulate(scenario, outcomes, engine="simpy")
    fast = simulate(scenario, outcomes, engine="fast")
    assert_same_run(reference, fast)
    columns = fast.columns
    assert columns["request"].size > 7000  # 400 devices at 1/s for 20 s
    assert (columns["bytes_sent"] == 1000).all()
    # No answer: each request ends when the server is done with it.
    assert (columns["status"] == "answered_cloud").mean() > 0.99

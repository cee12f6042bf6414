"""The fast engine against SimPy, the reference: identical per-request tables, stages and
counters on every shipped scenario and on random ones; refusals where it cannot be exact."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sim_fixtures import BASE, FOG_NETWORK, synthetic_outcomes, three_part_outcomes

from fogsim.errors import UserInputError
from fogsim.results import requests_frame, stages_frame
from fogsim.runner import outcomes_for, run
from fogsim.scenario import load_scenario, scenario_from_data
from fogsim.sim.engine import SimResult, simulate
from fogsim.sim.fast import FastEngineUnsupported

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted(ROOT.glob("scenarios/*.yaml"))
# What the fast engine refuses, and why.
SIMPY_ONLY = {
    "5g-backhaul": "has a varying rate",
    "bad-day": "adaptive_exit|retries late or lost requests",
}
# Scenarios a policy cannot run at all: drift-adapt's devices adapt their device part.
CANNOT_RUN = {("drift-adapt", "cloud_only")}
# Sizes that keep each run short (peer-offload's 10,000 devices are too many for SimPy in a
# test) and still cross the fog more than 100 times (the drift scenarios' fmnist-rct answers
# most of their requests on the device).
RESIZED = {
    "peer-offload": ["devices[0].count=500"],
    "drift-adapt": ["duration=60 s"],
    "drift-static": ["duration=60 s"],
}


def assert_same_run(a: SimResult, b: SimResult) -> None:
    """Two runs agree bit for bit: requests, stages and every counter of the summary."""
    pd.testing.assert_frame_equal(
        requests_frame(a.columns), requests_frame(b.columns), check_exact=True
    )
    pd.testing.assert_frame_equal(
        stages_frame(*a.stages.columns()), stages_frame(*b.stages.columns()), check_exact=True
    )
    extra_a, extra_b = a.summary_extra(), b.summary_extra()
    extra_a.pop("engine"), extra_b.pop("engine")
    assert extra_a == extra_b


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
@pytest.mark.parametrize("policy", ["", "cloud_only"])
def test_shipped_scenarios_give_the_same_run_on_both_engines(path: Path, policy: str) -> None:
    if (path.stem, policy) in CANNOT_RUN:
        pytest.skip(f"{path.stem} cannot run under {policy}")
    overrides = ["duration=30 s", *RESIZED.get(path.stem, [])]
    overrides += [f"policy={{name: {policy}}}"] if policy else []
    scenario = load_scenario(path, overrides)
    outcomes = outcomes_for(scenario)
    reference = simulate(scenario, outcomes, engine="simpy")
    auto = simulate(scenario, outcomes, engine="auto")
    assert reference.engine == "simpy"
    assert_same_run(reference, auto)
    if path.stem in SIMPY_ONLY:
        assert auto.engine == "simpy"
        with pytest.raises(FastEngineUnsupported, match=SIMPY_ONLY[path.stem]):
            simulate(scenario, outcomes, engine="fast")
    else:
        assert auto.engine == "fast"
        assert (reference.columns["bytes_sent"] > 0).sum() > 100  # the fog was crossed


def test_written_runs_are_byte_identical(tmp_path: Path) -> None:
    path = ROOT / "scenarios/three-tier.yaml"  # fog servers, batching, a contended downlink
    overrides = ["duration=20 s", "outputs.figures=false"]
    for engine in ("simpy", "fast"):
        result = run(path, overrides=overrides, out_dir=tmp_path / engine, engine=engine)
        assert result.summary["engine"] == engine
    for name in ("requests.parquet", "stages.parquet"):
        assert (tmp_path / "simpy" / name).read_bytes() == (tmp_path / "fast" / name).read_bytes()


links = st.fixed_dictionaries(
    {
        "bandwidth": st.sampled_from(["2 Mbps", "10 Mbps", "50 Mbps"]),
        "delay": st.sampled_from(["0 ms", "3 ms", "20 ms"]),
        "sharing": st.sampled_from(["ps", "fifo"]),
    }
)
arrivals = st.one_of(
    st.builds(lambda r: {"process": "poisson", "rate": f"{r} /s"}, st.integers(1, 30)),
    st.builds(
        lambda p, j: {"process": "periodic", "period": f"{p} ms", "jitter": f"{j} ms"},
        st.sampled_from([50, 200, 1000]),
        st.sampled_from([0, 5, 100]),
    ),
)
servers = st.fixed_dictionaries(
    {
        "workers": st.integers(1, 4),
        "batching": st.fixed_dictionaries(
            {
                "max_batch": st.integers(1, 8),
                "max_wait": st.sampled_from(["0 ms", "2 ms", "20 ms"]),
            }
        ),
        "queue_capacity": st.sampled_from([None, 1, 2, 50]),
    }
)


@st.composite
def short_form(draw) -> dict:
    """Gateways with their own radios or a shared cell, backhauls into one cloud."""
    gateways, groups = [], []
    for g in range(draw(st.integers(1, 3))):
        gateway = {"name": f"gw{g}", "backhaul": draw(links)}
        if draw(st.booleans()):
            gateway.update(access="shared", cell=draw(links))
        gateways.append(gateway)
        group = copy.deepcopy(BASE["devices"][0])
        group.update(
            name=f"d{g}", gateway=f"gw{g}", count=draw(st.integers(1, 12)), arrival=draw(arrivals)
        )
        groups.append(group)
    cloud = {**BASE["cloud"], **draw(servers)}
    policy = draw(
        st.sampled_from([{"name": "early_exit", "threshold": 1.0}, {"name": "cloud_only"}])
    )
    return {
        "network": {"gateways": gateways, "cloud_link": draw(links)},
        "devices": groups,
        "cloud": cloud,
        "policy": policy,
    }


@st.composite
def with_fog(draw) -> dict:
    """A fog server at the gateway, a three-part network, a cloud beyond a core link that
    may return answers over a contended downlink."""
    network = copy.deepcopy(FOG_NETWORK)
    network["links"][0].update(draw(links))
    if draw(st.booleans()):
        network["links"][1]["downlink"] = draw(links)
    group = {
        **copy.deepcopy(BASE["devices"][0]),
        "count": draw(st.integers(1, 12)),
        "arrival": draw(arrivals),
    }
    fog = {"name": "box", "at": "gw", "profile": "edge-server", **draw(servers)}
    cloud = {**BASE["cloud"], **draw(servers), "at": "dc"}
    policy = draw(
        st.sampled_from(
            [{"name": "early_exit", "threshold": 1.0}, {"name": "fog_only"}, {"name": "cloud_only"}]
        )
    )
    return {"network": network, "devices": [group], "fog": [fog], "cloud": cloud, "policy": policy}


TWO_PART, THREE_PART = synthetic_outcomes(), three_part_outcomes()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    changes=st.one_of(short_form(), with_fog()),
    duration=st.sampled_from(["3 s", "10 s"]),
    seed=st.integers(0, 2**16),
)
def test_random_scenarios_give_the_same_run_on_both_engines(
    tmp_path: Path, changes: dict, duration: str, seed: int
) -> None:
    (tmp_path / "net.pt").write_bytes(b"placeholder")
    data = {**copy.deepcopy(BASE), **changes, "duration": duration, "seed": seed}
    scenario = scenario_from_data(data, base_dir=tmp_path)
    outcomes = THREE_PART if "fog" in changes else TWO_PART
    reference = simulate(scenario, outcomes, engine="simpy")
    auto = simulate(scenario, outcomes, engine="auto")
    event(f"auto ran {auto.engine}")
    assert_same_run(reference, auto)


def test_simultaneous_arrivals_from_two_gateways_fall_back_to_simpy(tmp_path: Path) -> None:
    """Devices in lockstep behind two identical gateways reach the cloud link at the same
    instants: only SimPy's event ids order them, so auto runs SimPy and fast refuses."""
    (tmp_path / "net.pt").write_bytes(b"placeholder")
    (tmp_path / "times.csv").write_text("time_s\n" + "".join(f"{k / 10}\n" for k in range(50)))
    lockstep = {"process": "csv", "path": "times.csv"}
    groups = [
        {
            **copy.deepcopy(BASE["devices"][0]),
            "name": f"d{g}",
            "gateway": f"gw{g}",
            "count": 1,
            "arrival": lockstep,
        }
        for g in range(2)
    ]
    gateways = [
        {"name": f"gw{g}", "backhaul": {"bandwidth": "10 Mbps", "delay": "5 ms"}} for g in range(2)
    ]
    data = {
        **copy.deepcopy(BASE),
        "devices": groups,
        "policy": {"name": "cloud_only"},
        "network": {"gateways": gateways, "cloud_link": BASE["network"]["cloud_link"]},
    }
    scenario = scenario_from_data(data, base_dir=tmp_path)
    auto = simulate(scenario, TWO_PART, engine="auto")
    assert auto.engine == "simpy"
    with pytest.raises(FastEngineUnsupported, match="at one instant"):
        simulate(scenario, TWO_PART, engine="fast")
    assert np.isfinite(auto.columns["latency_s"]).any()


def test_a_sweep_runs_on_either_engine_with_the_same_results(client, tmp_path: Path) -> None:
    from fogsim.sweeping import sweep

    campus = ROOT / "scenarios/campus.yaml"
    grid = ["network.gateways[0].backhaul.bandwidth=1Mbps,100Mbps"]
    small = ["duration=10 s", "devices[0].count=10"]
    results = {
        engine: sweep(
            campus, grid, overrides=small, out_dir=tmp_path / engine, client=client, engine=engine
        )
        for engine in ("simpy", "fast")
    }
    assert list(results["fast"].points["status"]) == ["done"] * 2
    pd.testing.assert_frame_equal(results["simpy"].requests, results["fast"].requests)
    with pytest.raises(UserInputError, match="choose one of simpy, fast, auto"):
        sweep(campus, grid, overrides=small, out_dir=tmp_path / "x", client=client, engine="warp")


@pytest.mark.parametrize("duration_s", [0.7999999999999999, 5.6000000000000005, 1400.0])
def test_a_run_with_a_progress_bar_ends_at_the_duration_itself(duration_s: float) -> None:
    """SimPy with the bar stops 200 times; its last stop must be the duration the fast
    engine solves to, not ``duration * 200 / 200``, which can round away from it."""
    import simpy

    from fogsim.sim.engine import _run_until

    env = simpy.Environment()
    _run_until(env, duration_s, progress=True)
    assert env.now == duration_s

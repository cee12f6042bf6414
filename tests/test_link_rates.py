"""Time-varying link rates: exact PS and FIFO across rate changes, traces, generators."""

from __future__ import annotations

import csv
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import simpy
import yaml
from cli_fixtures import invoke
from hypothesis import given, settings
from hypothesis import strategies as st
from test_link import run_transfers
from test_validate import scenario_file

from fogsim.results import load_run
from fogsim.runner import run
from fogsim.scenario import ScenarioError, load_scenario
from fogsim.scenario.rates import VaryingRate
from fogsim.sim.link import Link
from fogsim.sim.ratefn import RateFunction

ROOT = Path(__file__).resolve().parents[1]
DOWNTOWN = ROOT / "scenarios/traces/5g-uplink-downtown.csv"


def stepped(times: list[float], rates: list[float]) -> RateFunction:
    return RateFunction(iter(zip([0.0, *times], rates, strict=True)))


def link(discipline: str, rate: RateFunction, delay_s: float = 0.0) -> Link:
    return Link(simpy.Environment(), "l", 1.0, delay_s, discipline, rate)


# 100 bit/s until t = 1 s, then 20 bit/s. Two transfers at t = 0: A of 80 bits, B of 200.


def test_ps_step_change_mid_transfer_matches_hand_computation() -> None:
    # Sharing, each gets 50 bit/s: at t = 1 A has 50 of 80, B 50 of 200. Then 10 bit/s each:
    # A's last 30 bits take 3 s (t = 4); B, with 120 left, is alone at 20 bit/s: 6 s (t = 10).
    finished = run_transfers(link("ps", stepped([1.0], [100.0, 20.0]), 0.5), [0, 0], [80, 200])
    np.testing.assert_allclose(finished, [4.5, 10.5], rtol=1e-12)


def test_fifo_step_change_mid_transfer_matches_hand_computation() -> None:
    # A alone at 100 bit/s: done at 0.8 s. B: 20 bits by t = 1, then 180 at 20 bit/s: 9 s.
    fifo = link("fifo", stepped([1.0], [100.0, 20.0]))
    finished = run_transfers(fifo, [0, 0], [80, 200])
    np.testing.assert_allclose(finished, [0.8, 10.0], rtol=1e-12)
    assert fifo.busy_time_s == pytest.approx(10.0)
    assert fifo.bits_carried == 280


def test_ps_arrival_after_a_drop_in_rate() -> None:
    # A (150 bits) alone: 100 by t = 1, 20 more by t = 2. B (10 bits) arrives at t = 2:
    # sharing at 10 bit/s each, B is done at t = 3; A, with 20 left, alone at 20 bit/s: t = 4.
    finished = run_transfers(link("ps", stepped([1.0], [100.0, 20.0])), [0, 2], [150, 10])
    np.testing.assert_allclose(finished, [4.0, 3.0], rtol=1e-12)


@pytest.mark.parametrize("discipline", ["ps", "fifo"])
def test_a_pause_holds_transfers_and_exact_ends_do_not_wait_for_it(discipline: str) -> None:
    # 100 bit/s, nothing from t = 1 to t = 2, then 100 bit/s again.
    rate = stepped([1.0, 2.0], [100.0, 0.0, 100.0])
    finished = run_transfers(link(discipline, rate), [0.0], [150.0])
    assert finished[0] == pytest.approx(2.5)
    rate = stepped([1.0, 2.0], [100.0, 0.0, 100.0])
    assert run_transfers(link(discipline, rate), [0.0], [100.0])[0] == pytest.approx(1.0)


@pytest.mark.parametrize("discipline", ["ps", "fifo"])
def test_a_replayed_trace_carries_its_bits_by_its_own_times(discipline: str) -> None:
    with DOWNTOWN.open() as handle:
        rows = [(float(t), float(r)) for t, r in list(csv.reader(handle))[1:]]
    times = np.array([t for t, _ in rows])
    rates = np.array([r for _, r in rows])
    # The bits of the first 300 rows (30 s), summed row by row, are through at row 300's time.
    bits = float(np.sum(rates[:300] * np.diff(times[:301])))
    rate = RateFunction(iter(rows))
    finished = run_transfers(link(discipline, rate), [0.0], [bits])
    assert finished[0] == pytest.approx(times[300], rel=1e-9)


def test_the_link_never_carries_more_than_the_rate_allows() -> None:
    rate = stepped([0.5, 1.5, 3.0], [100.0, 10.0, 0.0, 40.0])
    ps = link("ps", rate)
    arrivals = [0.0, 0.1, 0.2, 0.9, 1.0, 2.0, 3.1]
    sizes = [30.0, 70.0, 5.0, 12.0, 40.0, 8.0, 25.0]
    finished = run_transfers(ps, arrivals, sizes)
    capacity = stepped([0.5, 1.5, 3.0], [100.0, 10.0, 0.0, 40.0])
    # Work conservation: the last transfer ends when the capacity since the first arrival
    # covers all the bits (the link is never idle in between here).
    assert finished.max() == pytest.approx(capacity.finish_s(0.0, sum(sizes)))
    for i in range(len(sizes)):
        assert capacity.bits_between(arrivals[i], finished[i]) >= sizes[i] * (1 - 1e-12)


# Scenarios ---------------------------------------------------------------------------------


def with_cloud_link(bandwidth: object):
    def change(data: dict) -> None:
        data["network"]["cloud_link"]["bandwidth"] = bandwidth

    return change


def test_step_generator_in_a_scenario_and_its_resolved_form(tmp_path: Path) -> None:
    spec = {"generator": "step", "at": ["10 s"], "values": ["50 Mbps", "5 Mbps"]}
    scenario = load_scenario(scenario_file(tmp_path, with_cloud_link(spec)))
    bandwidth = scenario.network.cloud_link.bandwidth
    assert isinstance(bandwidth, VaryingRate) and bandwidth == 50e6
    assert bandwidth.profile.at == [10.0] and bandwidth.profile.values == [50e6, 5e6]
    # Written back, it reads to the same scenario.
    data = scenario.model_dump(mode="json", by_alias=True)
    written = data["network"]["cloud_link"]["bandwidth"]
    assert written["values"] == ["50000000.0 bit/s", "5000000.0 bit/s"]
    again = load_scenario(scenario_file(tmp_path, with_cloud_link(written), name="again.yaml"))
    assert again.network.cloud_link.bandwidth.profile == bandwidth.profile
    # Sweeps send scenarios to worker processes.
    assert pickle.loads(pickle.dumps(bandwidth)).profile == bandwidth.profile


def test_a_trace_scaled_to_a_mean(tmp_path: Path) -> None:
    shutil_copy(DOWNTOWN, tmp_path / "up.csv")
    scenario = load_scenario(
        scenario_file(tmp_path, with_cloud_link({"trace": "up.csv", "mean": "20 Mbps"}))
    )
    profile = scenario.network.cloud_link.bandwidth.profile
    times = np.array([t for t, _ in profile.rows])
    rates = np.array([r for _, r in profile.rows])
    mean = np.sum(rates[:-1] * np.diff(times)) / (times[-1] - times[0])
    assert mean == pytest.approx(20e6)


def shutil_copy(source: Path, target: Path) -> None:
    target.write_bytes(source.read_bytes())


BAD = {
    "missing file": ({"trace": "nowhere.csv"}, "trace not found"),
    "junk row": ({"trace": "junk.csv"}, "row 3: expected two numbers"),
    "negative rate": ({"trace": "negative.csv"}, "row 2: times and rates must be >= 0"),
    "unknown generator": ({"generator": "sawtooth"}, "unknown generator 'sawtooth'"),
    "values count": (
        {"generator": "step", "at": ["1 s", "2 s"], "values": ["1 Mbps"]},
        "give one more value than change times",
    ),
    "bad unit": (
        {"generator": "markov", "up": "5 Mbps", "mean_up": "2 Mbps", "mean_down": "1 s"},
        "mean_up:",
    ),
    "unknown key": (
        {"generator": "sinusoid", "mean": "5 Mbps", "amplitude": "1 Mbps", "period": "1 s", "x": 1},
        "x: unknown key",
    ),
    "neither": ({"rate": "5 Mbps"}, "needs 'trace: FILE.csv' or 'generator: NAME'"),
    "walk bounds": (
        {
            "generator": "random_walk",
            "start": "9 Mbps",
            "min": "1 Mbps",
            "max": "5 Mbps",
            "sigma": "1 Mbps",
        },
        "min <= start <= max",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_rate_profiles_name_the_yaml_path_and_line(case: str, tmp_path: Path) -> None:
    (tmp_path / "junk.csv").write_text("time_s,rate_bps\n0,100\n1,lots\n")
    (tmp_path / "negative.csv").write_text("time_s,rate_bps\n0,-5\n")
    spec, words = BAD[case]
    path = scenario_file(tmp_path, with_cloud_link(spec))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "network.cloud_link.bandwidth (line " in message, message
    assert words in message, message
    result = invoke("validate", str(path))
    assert result.code == 2 and words in result.stderr + result.stdout


def test_a_shared_cell_refuses_a_varying_rate(tmp_path: Path) -> None:
    def change(data: dict) -> None:
        gateway = data["network"]["gateways"][0]
        gateway["access"] = "shared"
        gateway["cell"] = {
            "bandwidth": {"generator": "step", "at": ["1 s"], "values": ["1 Mbps"] * 2}
        }

    with pytest.raises(ScenarioError, match="shared cell's bandwidth must be a plain rate"):
        load_scenario(scenario_file(tmp_path, change))


MARKOV = "{generator: markov, up: 2 Mbps, down: 0 bit/s, mean_up: 0.5 s, mean_down: 1 s}"


def test_a_generated_rate_is_deterministic_and_seeded(tmp_path: Path) -> None:
    path = ROOT / "scenarios/campus.yaml"
    small = ["duration=8 s", "devices[0].count=5", f"network.cloud_link.bandwidth={MARKOV}"]
    for name in ("a", "b"):
        run(path, overrides=small, out_dir=tmp_path / name)
    steady = [*small[:2], "network.cloud_link.bandwidth=2 Mbps"]
    run(path, overrides=steady, out_dir=tmp_path / "c")
    for name in ("requests.parquet", "stages.parquet", "summary.json", "scenario.resolved.yaml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    resolved = yaml.safe_load((tmp_path / "a/scenario.resolved.yaml").read_text())
    assert resolved["network"]["cloud_link"]["bandwidth"]["generator"] == "markov"
    # The down periods delay some of the requests that the steady link carries at once.
    varying = load_run(tmp_path / "a").requests
    plain = load_run(tmp_path / "c").requests
    assert (varying["latency_s"] >= plain["latency_s"] - 1e-12).all()
    assert (varying["latency_s"] > plain["latency_s"] + 0.01).any()


def readme_profiles() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Links whose rate changes", 1)[1].split("```yaml", 1)[1]
    lines = section.split("```", 1)[0].strip().splitlines()
    return [line.split("#")[0].removeprefix("bandwidth:").strip() for line in lines]


@pytest.mark.parametrize("spec", readme_profiles())
def test_the_readme_profiles_load_and_run(spec: str, tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    shutil_copy(DOWNTOWN, tmp_path / "traces/5g-uplink-downtown.csv")
    path = scenario_file(tmp_path, with_cloud_link(yaml.safe_load(spec)))
    bandwidth = load_scenario(path).network.cloud_link.bandwidth
    assert isinstance(bandwidth, VaryingRate)
    rate = RateFunction(bandwidth.profile.changes(np.random.default_rng(1)))
    # A minute's worth of changes is positive where it must be and carries bits.
    assert rate.bits_between(0.0, 60.0) > 0
    assert all(r >= 0 for r in rate.rates_bps)


def brute_force_ps_varying(
    arrivals: list[float], sizes: list[float], changes: list[float], rates: list[float]
) -> np.ndarray:
    """Processor sharing stepped from event to event (arrivals, ends, rate changes)."""
    remaining: dict[int, float] = {}
    finished = np.full(len(sizes), np.nan)
    order = sorted(range(len(arrivals)), key=lambda i: arrivals[i])
    t, nxt = 0.0, 0
    while nxt < len(order) or remaining:
        k = int(np.searchsorted(changes, t, side="right"))
        capacity = rates[k]
        next_change = changes[k] if k < len(changes) else math.inf
        next_arrival = arrivals[order[nxt]] if nxt < len(order) else math.inf
        share = capacity / len(remaining) if remaining else 0.0
        next_finish = t + min(remaining.values()) / share if remaining and share > 0 else math.inf
        step_to = min(next_arrival, next_finish, next_change)
        for i in remaining:
            remaining[i] -= (step_to - t) * share
        t = step_to
        for i in [i for i, left in remaining.items() if left <= 1e-9 * sizes[i]]:
            finished[i] = t
            del remaining[i]
        while nxt < len(order) and arrivals[order[nxt]] <= t:
            remaining[order[nxt]] = sizes[order[nxt]]
            nxt += 1
    return finished


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 5), st.floats(1, 200)), min_size=1, max_size=12),
    st.lists(st.floats(0.05, 8), min_size=1, max_size=5, unique=True),
    st.lists(st.sampled_from([0.0, 5.0, 20.0, 100.0]), min_size=6, max_size=6),
)
def test_ps_with_changing_rates_matches_brute_force(transfers, changes, rates) -> None:
    changes = sorted(changes)
    rates = [*rates[: len(changes)], 50.0]  # the last rate holds, so it is positive
    arrivals = [a for a, _ in transfers]
    sizes = [s for _, s in transfers]
    rate = RateFunction(iter(zip([0.0, *changes], rates, strict=True)))
    finished = run_transfers(link("ps", rate), arrivals, sizes)
    expected = brute_force_ps_varying(arrivals, sizes, changes, rates)
    np.testing.assert_allclose(finished, expected, rtol=1e-7, atol=1e-9)


def test_a_link_that_starts_with_no_rate_runs_and_holds_its_requests(tmp_path: Path) -> None:
    path = ROOT / "scenarios/campus.yaml"
    spec = "{generator: step, at: [3 s], values: [0 bit/s, 1 Gbps]}"
    result = run(
        path,
        overrides=["duration=6 s", "devices[0].count=5", f"network.cloud_link.bandwidth={spec}"],
        out_dir=tmp_path / "run",
    )
    # The nominal rate (a step's highest value) is what the link statistics report.
    assert result.summary["links"]["cloud_link"]["bandwidth_bps"] == 1e9
    cloud = result.requests[result.requests["path"] == "cloud"]
    assert len(cloud) > 0 and (cloud["t_answer_s"] > 3.0).all()

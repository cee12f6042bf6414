"""Heterogeneous device groups: seeded per-device draws around the group's profile."""

from __future__ import annotations

import numpy as np
import pytest
from sim_fixtures import BASE, small_scenario, synthetic_outcomes

from fogsim.errors import UserInputError
from fogsim.scenario import load_scenario
from fogsim.sim.device import device_tables
from fogsim.sim.engine import simulate
from fogsim.sim.population import draw_factors
from fogsim.sim.routes import Kinds

SPREAD = {
    "throughput": {"distribution": "uniform", "low": 0.5, "high": 1.5},
    "power": {"distribution": "lognormal", "sigma": 0.2},
    "uplink": {"distribution": "uniform", "low": 0.25, "high": 1.0},
}


def _spread_group(count: int = 50, **spread):
    return [{**BASE["devices"][0], "count": count, "spread": spread or SPREAD}]


def test_draws_are_seeded_and_within_their_ranges(tmp_path):
    scenario = small_scenario(tmp_path, devices=_spread_group(1000))
    group = scenario.devices[0]
    first, again = draw_factors(3, group), draw_factors(3, group)
    np.testing.assert_array_equal(first.throughput, again.throughput)
    assert not np.array_equal(first.throughput, draw_factors(4, group).throughput)
    assert first.throughput.min() >= 0.5 and first.throughput.max() <= 1.5
    assert np.unique(first.throughput).size == 1000
    # The lognormal's median is the profile's figure; its log has the given spread.
    assert np.median(first.power) == pytest.approx(1.0, abs=0.05)
    assert np.log(first.power).std() == pytest.approx(0.2, rel=0.1)
    np.testing.assert_array_equal(first.memory_bandwidth, 1.0)  # no spread: factor 1


def test_spreading_one_figure_leaves_the_others_draws(tmp_path):
    both = small_scenario(tmp_path, devices=_spread_group(**SPREAD)).devices[0]
    one = {"throughput": SPREAD["throughput"]}
    alone = small_scenario(tmp_path, devices=_spread_group(**one)).devices[0]
    np.testing.assert_array_equal(
        draw_factors(3, both).throughput, draw_factors(3, alone).throughput
    )


def test_each_device_computes_at_its_own_speed(tmp_path):
    scenario = small_scenario(tmp_path, devices=_spread_group(20))
    outcomes = synthetic_outcomes()
    run = simulate(scenario, outcomes).columns
    factors = draw_factors(scenario.seed, scenario.devices[0])
    busy = run["t_edge_end_s"] - run["t_edge_start_s"]
    # rpi4, the exit-0 part (100k fp32 + 1M binary MACs), at the device's own speed.
    plain = 100_000 / 11.9e9 + 1_000_000 / 190.4e9
    done = ~np.isnan(busy)
    expected = plain / factors.throughput[run["device"][done]]
    np.testing.assert_allclose(busy[done], expected, rtol=1e-9)


def test_tables_without_spread_are_the_groups(tmp_path):
    from fogsim.sim.device import compute_tables
    from fogsim.sim.workload import Workload  # noqa: F401 - the type device_tables reads

    scenario = small_scenario(tmp_path)
    kinds = Kinds(synthetic_outcomes())
    seconds, _ = compute_tables(scenario, kinds)

    class Few:
        group = np.zeros(4, dtype=np.int64)
        device = np.array([0, 1, 2, 0])

    service, _, uplink = device_tables(scenario, Few, kinds, np.zeros(4, dtype=np.int64))
    np.testing.assert_array_equal(service, seconds[0, 0])
    np.testing.assert_array_equal(uplink, scenario.devices[0].radio.uplink)


@pytest.mark.parametrize(
    ("spread", "where"),
    [
        ({"throughput": {"distribution": "uniform", "low": 2.0, "high": 1.0}}, "throughput"),
        ({"uplink": {"distribution": "uniform", "low": -1.0, "high": 1.0}}, "uplink"),
        ({"power": {"distribution": "lognormal", "sigma": 0}}, "power"),
        ({"memory_bandwidth": {"distribution": "lognormal", "sigma": 0.1}}, "spread"),
    ],
)
def test_bad_ranges_are_errors_with_path_and_line(tmp_path, spread, where):
    import yaml

    (tmp_path / "net.pt").write_bytes(b"placeholder")
    data = {**BASE, "devices": _spread_group(**spread)}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(UserInputError) as error:
        load_scenario(path)
    message = str(error.value)
    assert "devices[0]" in message and where in message
    assert "line" in message


def test_city_heterogeneous_has_ten_thousand_distinct_devices():
    scenario = load_scenario("scenarios/city-heterogeneous.yaml")
    assert scenario.device_count >= 10_000
    speeds = np.concatenate([draw_factors(scenario.seed, g).throughput for g in scenario.devices])
    powers = np.concatenate([draw_factors(scenario.seed, g).power for g in scenario.devices])
    assert len({(s, p) for s, p in zip(speeds, powers, strict=True)}) >= 10_000

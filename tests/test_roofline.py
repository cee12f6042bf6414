"""The device roofline: max(compute time, memory traffic / bandwidth) + per-layer overhead."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sim_fixtures import BASE, small_scenario, synthetic_outcomes

from fogsim.sim.device import compute_tables
from fogsim.sim.engine import simulate
from fogsim.sim.roofline import roofline_seconds
from fogsim.sim.routes import Kinds

# A hand-worked device part: 1 ms of compute, 3 layers of 10 us overhead, 1 GB/s memory.
GBPS = 8e9  # 1 GB/s in bit/s


def test_compute_bound_part_takes_its_compute_time_plus_overhead():
    # 100 kB at 1 GB/s is 0.1 ms, under the 1 ms of compute: 1 ms + 3 x 10 us.
    assert roofline_seconds(1e-3, 100_000, 3, GBPS, 10e-6) == pytest.approx(1.03e-3)


def test_memory_bound_part_takes_its_memory_time_plus_overhead():
    # 10 MB at 1 GB/s is 10 ms, over the 1 ms of compute: 10 ms + 3 x 10 us.
    assert roofline_seconds(1e-3, 10_000_000, 3, GBPS, 10e-6) == pytest.approx(10.03e-3)


def test_nothing_run_on_the_device_takes_no_time():
    assert roofline_seconds(0.0, 0, 0, GBPS, 10e-6) == 0.0


def _outcomes_with_traffic():
    # One exit: to it the device moves 2 MB over 5 layers; its whole part 40 kB over 6.
    return dataclasses.replace(
        synthetic_outcomes(),
        edge_bytes_to_exit=(2_000_000,),
        edge_layers_to_exit=(5,),
        edge_bytes=40_000,
        edge_layers=6,
    )


def _group(profile):
    return [{**BASE["devices"][0], "profile": profile}]


def test_device_tables_follow_the_roofline(tmp_path):
    profile = {"base": "rpi4", "memory_bandwidth": "4 GB/s", "layer_overhead": "10 us"}
    scenario = small_scenario(tmp_path, devices=_group(profile))
    kinds = Kinds(_outcomes_with_traffic())
    seconds, joules = compute_tables(scenario, kinds)
    # rpi4: 11.9 GMAC/s fp32, 190.4 GMAC/s binary; the part is 100k fp32 + 1M binary MACs.
    compute = 100_000 / 11.9e9 + 1_000_000 / 190.4e9  # 13.66 us
    # To the exit: memory-bound, 2 MB at 4 GB/s = 500 us, + 5 x 10 us.
    assert seconds[0, 0] == pytest.approx(500e-6 + 50e-6)
    # The whole part: 40 kB at 4 GB/s = 10 us < compute, so compute-bound, + 6 x 10 us.
    assert seconds[0, kinds.features] == pytest.approx(compute + 60e-6)
    # Energy: the board's 6.4 W over the whole roofline time.
    assert joules[0, 0] == pytest.approx(6.4 * 550e-6)


def test_profile_without_roofline_fields_is_compute_bound(tmp_path):
    scenario = small_scenario(tmp_path)
    seconds, _ = compute_tables(scenario, Kinds(_outcomes_with_traffic()))
    compute = 100_000 / 11.9e9 + 1_000_000 / 190.4e9
    assert seconds[0, 0] == pytest.approx(compute, rel=1e-12)


def test_plain_scenario_runs_identically_whatever_the_traffic(tmp_path):
    # Without memory_bandwidth and layer_overhead, bytes moved change nothing at all.
    scenario = small_scenario(tmp_path)
    before = simulate(scenario, synthetic_outcomes()).columns
    after = simulate(scenario, _outcomes_with_traffic()).columns
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)


def test_memory_bound_device_is_slower(tmp_path):
    slow = {"base": "rpi4", "memory_bandwidth": "100 MB/s"}
    plain = simulate(small_scenario(tmp_path), _outcomes_with_traffic()).columns
    bound = simulate(small_scenario(tmp_path, devices=_group(slow)), _outcomes_with_traffic())
    busy = bound.columns["t_edge_end_s"] - bound.columns["t_edge_start_s"]
    assert np.nanmax(busy) == pytest.approx(2_000_000 * 8 / 800e6)  # 20 ms, memory-bound
    assert np.nanmax(busy) > np.nanmax(plain["t_edge_end_s"] - plain["t_edge_start_s"])


def test_bad_memory_bandwidth_is_a_validation_error(tmp_path):
    from fogsim.errors import UserInputError

    with pytest.raises((UserInputError, ValueError), match="memory_bandwidth"):
        small_scenario(tmp_path, devices=_group({"base": "rpi4", "memory_bandwidth": "0 GB/s"}))

"""Failures named in a scenario: links and servers down at scripted times or at random
(MTBF/MTTR), seeded by the run, with work resumed after each outage."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sim_fixtures import BASE, FOG_NETWORK, FOG_SERVER, fog_scenario, three_part_outcomes

from fogsim.scenario.failures import Failures
from fogsim.scenario.network import Network
from fogsim.sim.engine import simulate

THREE = three_part_outcomes()


def test_no_fog_batch_starts_while_the_fog_server_is_down(tmp_path: Path) -> None:
    fog = [{**FOG_SERVER, "failures": {"at": [["5 s", "9 s"]]}}]
    columns = simulate(fog_scenario(tmp_path, fog=fog), THREE).columns
    start = columns["t_fog_start_s"][columns["answered_at"] == "fog"]
    assert start.size > 0
    assert not ((start >= 5.0) & (start < 9.0)).any()


def test_a_link_outage_holds_transfers_until_it_is_back_up(tmp_path: Path) -> None:
    network = copy.deepcopy(FOG_NETWORK)
    network["links"][0]["failures"] = {"at": [["5 s", "9 s"]]}
    columns = simulate(fog_scenario(tmp_path, network=network), THREE).columns
    cloud = columns["answered_at"] == "cloud"
    start, sent = columns["t_cloud_start_s"][cloud], columns["t_uplink_end_s"][cloud]
    # Nothing reaches the cloud over gw->metro (5 ms) and core (20 ms) while gw->metro is
    # down, and what was sent meanwhile arrives after it is back up.
    assert not ((start > 5.0 + 0.03) & (start < 9.0 + 0.025)).any()
    held = (sent > 5.0) & (sent < 9.0)
    assert held.any() and (start[held] >= 9.0 + 0.025).all()


def _random_failures(tmp_path: Path, seed: int):
    network = copy.deepcopy(FOG_NETWORK)
    network["links"][0]["failures"] = {"mtbf": "3 s", "mttr": "1 s"}
    fog = [{**FOG_SERVER, "failures": {"mtbf": "4 s", "mttr": "500 ms"}}]
    return simulate(fog_scenario(tmp_path, network=network, fog=fog, seed=seed), THREE)


def test_random_failures_are_the_same_for_the_same_seed(tmp_path: Path) -> None:
    first, again = _random_failures(tmp_path, 7), _random_failures(tmp_path, 7)
    for name, column in first.columns.items():
        np.testing.assert_array_equal(column, again.columns[name], err_msg=name)
    other = _random_failures(tmp_path, 8).columns["latency_s"]
    assert not np.array_equal(first.columns["latency_s"], other, equal_nan=True)


@pytest.mark.parametrize(
    "spec",
    [{"mtbf": "1 s"}, {"mtbf": "1 s", "mttr": "1 s", "at": [[1, 2]]}, {"at": [[3, 4], [2, 5]]}],
)
def test_a_bad_failures_spec_is_refused(spec: dict) -> None:
    with pytest.raises(ValidationError):
        Failures.model_validate(spec)


def test_the_short_form_keeps_its_links_failures() -> None:
    down = {"at": [["1 s", "2 s"]]}
    network = Network.model_validate(
        {
            "gateways": [{"name": "g", "backhaul": {"bandwidth": "1 Mbps", "failures": down}}],
            "cloud_link": {"bandwidth": "1 Gbps", "failures": {"mtbf": "1 h", "mttr": "1 s"}},
        }
    )
    backhaul, cloud_link = network.explicit()[1]
    assert backhaul.failures is not None and backhaul.failures.at == [(1.0, 2.0)]
    assert cloud_link.failures is not None and cloud_link.failures.mtbf == 3600.0


def _script(gaps: list[tuple[float, float]]) -> dict:
    periods, t = [], 0.0
    for gap, length in gaps:
        periods.append([f"{t + gap} s", f"{t + gap + length} s"])
        t += gap + length
    return {"at": periods}


failure_specs = st.one_of(
    st.none(),
    st.lists(st.tuples(st.floats(0.0, 3.0), st.floats(0.01, 2.0)), max_size=3).map(_script),
    st.sampled_from([{"mtbf": "2 s", "mttr": "300 ms"}, {"mtbf": "500 ms", "mttr": "1 s"}]),
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    access=failure_specs, core=failure_specs, fog=failure_specs, cloud=failure_specs,
    seed=st.integers(0, 1000),
)
def test_every_request_ends_in_one_state_under_random_failures_and_repeats(
    tmp_path: Path, access, core, fog, cloud, seed: int
) -> None:
    network = copy.deepcopy(FOG_NETWORK)
    network["links"][0]["failures"] = access
    network["links"][1]["failures"] = core
    changes = {
        "network": network,
        "fog": [{**FOG_SERVER, "failures": fog}],
        "cloud": {**copy.deepcopy(BASE["cloud"]), "at": "dc", "failures": cloud},
        "duration": "6 s",
        "seed": seed,
    }
    result = simulate(fog_scenario(tmp_path, **changes), THREE)  # it checks accounting
    again = simulate(fog_scenario(tmp_path, **changes), THREE)
    columns = result.columns
    answered = columns["answered_at"] != ""
    status = np.asarray(columns["status"], dtype=str)  # a categorical: compared as text
    assert (answered == np.char.startswith(status, "answered")).all()
    assert (columns["t_answer_s"][answered] <= 6.0 + 1e-9).all()
    for name, column in columns.items():
        np.testing.assert_array_equal(column, again.columns[name], err_msg=name)
    for stats in result.servers.values():
        assert stats["completed"] + stats["dropped"] <= stats["submitted"]

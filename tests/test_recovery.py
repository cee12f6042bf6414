"""Requests whose work is lost on a failed element: dropped with a reason, or retried after
a timeout with exponential back-off, then answered by the device's own exit or dropped."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sim_fixtures import BASE, FOG_NETWORK, FOG_SERVER, fog_scenario, three_part_outcomes

from fogsim.scenario.failures import Recovery
from fogsim.sim.engine import simulate

THREE = three_part_outcomes()
FOG_DOWN = {"at": [["5 s", "9 s"]], "work": "lost"}
RECOVERY = {"timeout": "1 s", "retries": 3, "backoff": "100 ms", "factor": 2}


# A fog box slowed to 50 ms a batch, so that batches are running when it fails.
SLOW_FOG = {**FOG_SERVER, "profile": {"base": "edge-server", "batch_overhead": "50 ms"}}


def _run(tmp_path: Path, failures: dict | None = FOG_DOWN, **changes):
    fog = [{**SLOW_FOG, "failures": failures}]
    return simulate(fog_scenario(tmp_path, fog=fog, **changes), THREE).columns


def test_without_recovery_lost_work_drops_its_requests_when_the_server_fails(
    tmp_path: Path,
) -> None:
    columns = _run(tmp_path)
    lost = columns["reason"] == "work_lost"
    assert lost.any()
    assert (columns["status"][lost] == "dropped").all()
    assert (columns["failure"][lost] == "lost").all()
    # Their batch was running when the server failed at 5 s, and ended there.
    assert (columns["t_fog_start_s"][lost] < 5.0).all()
    assert (columns["t_fog_end_s"][lost] == 5.0).all()
    assert (columns["retries"] == 0).all()


@pytest.mark.parametrize("work", ["resume", "restart"])
def test_resumed_or_restarted_work_is_answered_and_says_so(tmp_path: Path, work: str) -> None:
    columns = _run(tmp_path, {**FOG_DOWN, "work": work})
    hit = columns["failure"] == ("paused" if work == "resume" else "restarted")
    assert hit.any()
    assert (columns["status"][hit] != "dropped").all()
    assert (columns["t_fog_start_s"][hit] < 5.0).all() and (columns["t_fog_end_s"][hit] > 9.0).all()
    if work == "restart":
        # Started again from scratch at 9 s: it ends a whole batch's time after.
        busy = columns["t_fog_end_s"][hit] - 9.0
        assert (busy > 0).all()


def test_with_recovery_requests_retry_with_back_off_then_give_up(tmp_path: Path) -> None:
    columns = _run(tmp_path, recovery=RECOVERY)
    retries, reason, status = columns["retries"], columns["reason"], columns["status"]
    assert "work_lost" not in set(reason)
    gave_up = reason == "retries_exhausted"
    # Lost at 5 s, noticed at the timeout; the fog is down until 9 s, then busy with its
    # backlog and the retries, where more attempts time out. Before 5 s none does.
    assert gave_up.any() and (retries[gave_up] == 3).all()
    assert (status[gave_up] == "dropped").all()
    assert (columns["t_arrival_s"][gave_up] > 3.0).all()
    assert retries.max() <= 3


def test_a_retry_after_a_short_outage_is_answered(tmp_path: Path) -> None:
    columns = _run(tmp_path, {**FOG_DOWN, "at": [["5 s", "5.5 s"]]}, recovery=RECOVERY)
    retried = (columns["failure"] == "lost") & (columns["status"] != "dropped")
    assert retried.any() and (columns["retries"][retried] >= 1).all()
    # Its recorded stages are its last attempt's, sent after the timeout and back-off.
    assert (columns["t_fog_start_s"][retried] >= 5.0 + 0.1).all()


def test_each_retry_waits_out_its_timeout_and_a_doubling_back_off(tmp_path: Path) -> None:
    # Every attempt times out after 1 ms; the device resends after 100 ms, then 200 ms,
    # each time over its own radio again, then answers with its exit when it gives up.
    recovery = {"timeout": "1 ms", "retries": 2, "backoff": "100 ms", "then": "fallback"}
    columns = _run(tmp_path, None, recovery=recovery)
    rescued = columns["reason"] == "failure_fallback"
    assert rescued.any()
    start, end = columns["t_uplink_start_s"][rescued], columns["t_uplink_end_s"][rescued]
    expected = end + 3 * 0.001 + 0.1 + 0.2 + 2 * (end - start)
    np.testing.assert_allclose(columns["t_answer_s"][rescued], expected, rtol=0, atol=1e-9)


def test_a_fallback_answers_with_the_devices_exit_when_every_attempt_fails(
    tmp_path: Path,
) -> None:
    columns = _run(tmp_path, recovery={**RECOVERY, "then": "fallback"})
    rescued = columns["reason"] == "failure_fallback"
    assert rescued.any() and "retries_exhausted" not in set(columns["reason"])
    assert (columns["status"][rescued] == "answered_edge").all()
    assert (columns["answered_at"][rescued] == "device").all()
    assert (columns["exit"][rescued] == 0).all()
    image = columns["image"][rescued]
    assert (columns["prediction"][rescued] == THREE.exit_pred[image, 0]).all()
    # It answers when it gives up: after four timeouts and three back-offs at least.
    assert (columns["latency_s"][rescued] >= 4 * 1.0 + 0.1 + 0.2 + 0.4).all()


def test_a_retry_costs_the_radio_one_more_send(tmp_path: Path) -> None:
    without = _run(tmp_path)
    with_retries = _run(tmp_path, recovery={**RECOVERY, "then": "fallback"})
    same = (with_retries["retries"] == 0) & (without["reason"] != "work_lost")
    np.testing.assert_array_equal(
        without["energy_radio_j"][same & (without["status"] == "answered_edge")],
        with_retries["energy_radio_j"][same & (without["status"] == "answered_edge")],
    )
    retried = with_retries["retries"] > 0
    assert (with_retries["energy_radio_j"][retried] > 0).all()


def test_a_timeout_no_request_reaches_changes_nothing(tmp_path: Path) -> None:
    plain = _run(tmp_path, None)
    patient = _run(tmp_path, None, recovery={**RECOVERY, "timeout": "1 h"})
    for name, column in plain.items():
        np.testing.assert_array_equal(column, patient[name], err_msg=name)


def test_a_short_timeout_retries_even_without_failures(tmp_path: Path) -> None:
    # 1 ms is shorter than any trip to the cloud and back: every attempt times out.
    columns = _run(tmp_path, None, recovery={**RECOVERY, "timeout": "1 ms", "retries": 1})
    sent = (columns["bytes_sent"] > 0) & (columns["t_arrival_s"] < 19.0)  # not still trying
    assert (columns["reason"][sent] == "retries_exhausted").all()
    assert (columns["retries"][sent] == 1).all()
    assert (columns["failure"][sent] == "timed_out").all()


@pytest.mark.parametrize(
    "spec",
    [{}, {"timeout": "0 s"}, {"timeout": "1 s", "retries": -1}, {"timeout": "1 s", "factor": 0.5},
     {"timeout": "1 s", "then": "cloud"}, {"timeout": "1 s", "retry": 2}],
)
def test_a_bad_recovery_is_refused(spec: dict) -> None:
    with pytest.raises(ValidationError):
        Recovery.model_validate(spec)


def test_a_bad_work_mode_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="resume"):
        _run(tmp_path, {**FOG_DOWN, "work": "forget"})


works = st.sampled_from(["resume", "restart", "lost"])


def _failures(spec, work):
    return None if spec is None else {**spec, "work": work}


failure_specs = st.one_of(
    st.none(),
    st.lists(st.tuples(st.integers(0, 3000), st.integers(10, 2000)), max_size=3).map(
        lambda gaps_ms: {"at": _script(gaps_ms)}
    ),
    st.sampled_from([{"mtbf": "2 s", "mttr": "300 ms"}, {"mtbf": "500 ms", "mttr": "1 s"}]),
)


def _script(gaps_ms):
    periods, t = [], 0
    for gap, length in gaps_ms:
        periods.append([f"{t + gap} ms", f"{t + gap + length} ms"])
        t += gap + length
    return periods


recoveries = st.one_of(
    st.none(),
    st.builds(
        lambda timeout, retries, then: {
            "timeout": f"{timeout} s", "retries": retries, "backoff": "50 ms", "then": then,
        },
        st.floats(0.05, 2.0), st.integers(0, 3), st.sampled_from(["fallback", "drop"]),
    ),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    access=failure_specs, core=failure_specs, fog=failure_specs, cloud=failure_specs,
    work=st.tuples(works, works, works, works), recovery=recoveries,
    downlink=st.booleans(), sharing=st.sampled_from(["ps", "fifo"]), seed=st.integers(0, 1000),
    policy=st.sampled_from([
        {"name": "early_exit", "threshold": 1.0},
        {"name": "adaptive_exit", "threshold": 1.0, "degraded_threshold": 2.0,
         "target": "50 ms"},
    ]),
)
def test_every_request_ends_in_one_state_whatever_fails_and_repeats(
    tmp_path: Path, access, core, fog, cloud, work, recovery, downlink, sharing, seed: int,
    policy: dict,
) -> None:
    network = copy.deepcopy(FOG_NETWORK)
    network["links"][0].update(failures=_failures(access, work[0]), sharing=sharing)
    network["links"][1]["failures"] = _failures(core, work[1])
    if downlink:
        network["links"][0]["downlink"] = {
            "bandwidth": "5 Mbps", "failures": _failures(access, work[0]), "sharing": sharing,
        }
    changes = {
        "network": network,
        "fog": [{**FOG_SERVER, "failures": _failures(fog, work[2])}],
        "cloud": {**copy.deepcopy(BASE["cloud"]), "at": "dc",
                  "failures": _failures(cloud, work[3])},
        "duration": "6 s",
        "seed": seed,
        "recovery": recovery,
        "policy": policy,
    }
    result = simulate(fog_scenario(tmp_path, **changes), THREE)  # it checks accounting
    again = simulate(fog_scenario(tmp_path, **changes), THREE)
    columns = result.columns
    for name, column in columns.items():
        np.testing.assert_array_equal(column, again.columns[name], err_msg=name)
    answered = columns["answered_at"] != ""
    assert (columns["t_answer_s"][answered] <= 6.0 + 1e-9).all()
    limit = 0 if recovery is None else recovery["retries"]
    assert (columns["retries"] <= limit).all()
    if recovery is None:
        assert "retries_exhausted" not in set(columns["reason"])
    else:
        assert "work_lost" not in set(columns["reason"])
    if recovery is None or recovery["then"] == "drop":
        assert "failure_fallback" not in set(columns["reason"])
    for stats in result.servers.values():
        assert stats["completed"] + stats["dropped"] <= stats["submitted"]

"""The resilience summary: availability, drops by reason, retries and time degraded."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from rich.console import Console
from sim_fixtures import FOG_NETWORK, FOG_SERVER, fog_scenario, three_part_outcomes

from fogsim.resilience import _union_s, degraded_s
from fogsim.results import requests_frame, summarize
from fogsim.sim.engine import simulate
from fogsim.sim.rng import Streams
from fogsim.summary_table import headline_table

THREE = three_part_outcomes()


def test_overlapping_outages_count_once() -> None:
    assert _union_s([(1.0, 3.0), (2.0, 4.0), (6.0, 7.0), (6.5, 6.6)]) == 4.0
    assert _union_s([]) == 0.0


def _scenario(tmp_path: Path, **changes):
    network = copy.deepcopy(FOG_NETWORK)
    network["links"][0]["failures"] = {"at": [["2 s", "6 s"], ["18 s", "30 s"]]}
    fog = [{**FOG_SERVER, "workers": 2, "failures": {"at": [["4 s", "8 s"]]}}]
    return fog_scenario(tmp_path, network=network, fog=fog, **changes)


def test_time_degraded_is_the_union_of_outages_within_the_run(tmp_path: Path) -> None:
    # gw->metro down 2-6 s and 18-20 s (the run ends at 20 s); both fog workers 4-8 s.
    degraded = degraded_s(_scenario(tmp_path))
    assert degraded["by_element"] == {"gw->metro": 6.0, "box": 4.0}
    assert degraded["any"] == 8.0


def test_a_link_below_half_its_nominal_rate_is_degraded(tmp_path: Path) -> None:
    network = copy.deepcopy(FOG_NETWORK)
    step = {"generator": "step", "at": ["3 s", "5 s", "9 s", "12 s"],
            "values": ["10 Mbps", "4 Mbps", "6 Mbps", "1 Mbps", "10 Mbps"]}
    network["links"][0]["bandwidth"] = step
    network["links"][0]["failures"] = {"at": [["4 s", "6 s"]]}
    # Below 5 Mbps from 3 s to 5 s and from 9 s to 12 s; down from 4 s to 6 s.
    degraded = degraded_s(fog_scenario(tmp_path, network=network))
    assert degraded == {"any": 6.0, "by_element": {"gw->metro": 6.0}}


def test_random_outages_are_the_ones_the_run_drew(tmp_path: Path) -> None:
    # A box slowed to 50 ms a batch, so that batches are running when it fails.
    slow = {**FOG_SERVER, "profile": {"base": "edge-server", "batch_overhead": "50 ms"}}
    fog = [{**slow, "failures": {"mtbf": "3 s", "mttr": "1 s", "work": "lost"}}]
    scenario = fog_scenario(tmp_path, fog=fog, seed=5)
    columns = simulate(scenario, THREE).columns
    lost_at = columns["t_fog_end_s"][columns["reason"] == "work_lost"]
    assert lost_at.size
    # Every loss happened when the box failed: at the start of one of its outages.
    down = degraded_s(scenario)["by_element"]["box"]
    assert 0 < down < 20.0
    starts = []
    for d, _u in scenario.fog[0].failures.outages(Streams(5).stream("failures/server/box/0")):
        if d > 20:
            break
        starts.append(d)
    assert set(lost_at.tolist()) <= set(starts)


def test_the_summary_reports_availability_drops_retries_and_degraded_time(
    tmp_path: Path,
) -> None:
    recovery = {"timeout": "300 ms", "retries": 2, "then": "fallback"}
    scenario = _scenario(tmp_path, recovery=recovery, deadline={"latency": "2 s"})
    frame = requests_frame(simulate(scenario, THREE).columns)
    res = summarize(scenario, frame, {})["resilience"]
    in_time = frame["status"].astype(str).str.startswith("answered") & ~(frame["latency_s"] > 2.0)
    assert res["availability"] == pytest.approx(in_time.mean())
    assert res["answered_in_time"] == in_time.sum()
    assert res["retries"]["total"] == frame["retries"].sum() > 0
    assert res["retries"]["max"] <= 2
    assert res["fallbacks"]["failure"] == (frame["reason"] == "failure_fallback").sum() > 0
    assert res["availability_without_fallbacks"] < res["availability"]
    assert res["degraded_s"]["any"] == 8.0
    dropped = frame[frame["status"] == "dropped"]["reason"].astype(str).value_counts()
    assert res["dropped_by_reason"] == dropped.to_dict()
    console = Console(record=True, width=140)
    console.print(headline_table(summarize(scenario, frame, {}) | {"seed": 3}))
    text = console.export_text()
    for label in ("availability", "without fallbacks", "retries", "failure fallbacks",
                  "time degraded"):
        assert label in text
    assert "longest: gw->metro, 6.000 s" in text


def test_a_run_without_failures_is_fully_available_and_never_degraded(tmp_path: Path) -> None:
    scenario = fog_scenario(tmp_path)
    frame = requests_frame(simulate(scenario, THREE).columns)
    res = summarize(scenario, frame, {})["resilience"]
    answered = frame["status"].astype(str).str.startswith("answered")
    assert res["availability"] == pytest.approx(answered.mean())
    assert res["retries"] == {"total": 0, "requests": 0, "max": 0}
    assert res["degraded_s"] == {"any": 0.0, "by_element": {}}
    assert res["hit_by_failures"] == {}

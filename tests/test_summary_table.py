"""The run's headline tables: plain notation in every cell, notes where a figure needs one."""

from __future__ import annotations

import re

import pytest
from rich.console import Console
from sim_fixtures import BASE, small_scenario, synthetic_outcomes

import fogsim.commands.run as run_command
from fogsim.commands.run import print_summary
from fogsim.results import requests_frame, summarize
from fogsim.sim.engine import simulate
from fogsim.summary_table import si

SUMMARY = {
    "scenario": "city",
    "seed": 1,
    "policy": "early_exit",
    "requests": 132_349,
    "answered": 132_329,
    "dropped": 0,
    "unfinished": 20,
    "edge_exit_rate": 0.81,
    "accuracy": 0.86,
    "deadline_s": 0.5,
    "deadline_fallbacks": 3314,
    "latency_s": {"mean": 0.03, "p50": 1.9e-5, "p95": 0.1226, "p99": 0.5, "max": 0.5},
    "energy_j": {
        "mean": 22.87,
        "p95": 85.24,
        "total": 3.0e6,
        "compute": 5.854873599999999e-07,
        "radio": 0.535,
        "idle": 22.34,
        "active": 0.5350006,
        "active_p95": 4.84,
    },
    "energy_by_group_j": {
        "sensors": {"compute": 5.3e-5, "radio": 7.4e-3, "idle": 8.8e-5, "active": 7.45e-3},
        "cams": {"compute": 1.2e-4, "radio": 4e-4, "idle": 27.5, "active": 5.2e-4},
    },
    "cloud": {"energy_j": 8098.0},
}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5.854873599999999e-07, "585.5 nJ"),
        (22.87, "22.87 J"),
        (2.287e4, "22.87 kJ"),
        (1.9e-5, "19.00 us"),
        (0.5, "500.0 ms"),
        (0.0, "0 J"),
        (None, "n/a"),
    ],
)
def test_si_writes_plain_numbers_with_a_prefix(value, text) -> None:
    assert si(value, "s" if text.endswith("s") else "J") == text


@pytest.fixture
def printed(monkeypatch: pytest.MonkeyPatch):
    """print_summary's output as text."""

    def run(summary: dict) -> str:
        console = Console(record=True, width=140)
        monkeypatch.setattr(run_command, "Console", lambda: console)
        print_summary(summary)
        return console.export_text()

    return run


def test_no_cell_is_in_scientific_notation(printed) -> None:
    text = printed(SUMMARY)
    assert not re.search(r"\d[eE][+-]?\d", text), text
    assert "585.5 nJ" in text and "22.34 J" in text  # compute and idle, apart


def test_the_table_says_why_p99_equals_the_deadline(printed) -> None:
    lines = printed(SUMMARY).splitlines()
    p99 = next(line for line in lines if "latency p99" in line)
    assert "500.0 ms" in p99 and "deadline" in p99 and "3,314" in p99
    p95 = next(line for line in lines if "latency p95" in line)
    assert "deadline" not in p95


def test_active_energy_is_reported_apart_from_idle_energy_by_group(printed) -> None:
    text = printed(SUMMARY)
    assert re.search(r"active energy / inference\s.*535\.0 mJ", text)
    assert re.search(r"sensors\s.*53\.00 uJ\s.*7\.400 mJ\s.*7\.450 mJ\s.*88\.00 uJ", text)


def test_summary_reports_active_energy_apart_from_idle(tmp_path) -> None:
    """Hand-computed: two edge answers on a Raspberry Pi 4, at 1 s and 3 s."""
    arrivals = tmp_path / "arrivals.csv"
    arrivals.write_text("time_s\n1.0\n3.0\n")
    group = {**BASE["devices"][0], "count": 1, "arrival": {"process": "csv", "path": str(arrivals)}}
    scenario = small_scenario(tmp_path, devices=[group], policy={"name": "edge_only"})
    sim = simulate(scenario, synthetic_outcomes())
    summary = summarize(scenario, requests_frame(sim.columns), {})
    compute_s = 1e5 / 11.9e9 + 1e6 / 190.4e9
    active = 6.4 * compute_s
    idle = 2.9 * (1.0 + (3.0 - 1.0 - compute_s)) / 2
    energy = summary["energy_j"]
    assert energy["active"] == pytest.approx(active) and energy["compute"] == pytest.approx(active)
    assert energy["idle"] == pytest.approx(idle)
    assert energy["mean"] == pytest.approx(active + idle)
    assert summary["energy_by_group_j"]["pis"] == pytest.approx(
        {"compute": active, "radio": 0.0, "idle": idle, "active": active}
    )
    assert summary["deadline_s"] is None

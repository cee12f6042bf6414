"""The drift scenarios end to end: real drifted outcomes, adaptation in the device queues,
the same bytes for the same seed, and better answers with adaptation than without."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fogsim.runner import run

ROOT = Path(__file__).resolve().parents[1]
SHORTER = ["duration=110 s"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("drift")
    for name in ("drift-adapt", "drift-static"):
        run(ROOT / f"scenarios/{name}.yaml", overrides=SHORTER, out_dir=out / name)
    run(ROOT / "scenarios/drift-adapt.yaml", overrides=SHORTER, out_dir=out / "again")
    return {"adapt": out / "drift-adapt", "static": out / "drift-static", "again": out / "again"}


def test_the_same_seed_gives_the_same_bytes(runs: dict[str, Path]) -> None:
    for name in ("requests.parquet", "summary.json"):
        assert (runs["adapt"] / name).read_bytes() == (runs["again"] / name).read_bytes(), name


def test_adaptation_is_recorded_with_its_cost(runs: dict[str, Path]) -> None:
    import json

    summary = json.loads((runs["adapt"] / "summary.json").read_text())
    drift = summary["drift"]
    assert drift["groups"]["street"]["adapts"] and drift["adaptations"]
    first = drift["adaptations"][0]
    assert first["at_s"] > 40.0  # after the drift began
    assert first["devices"] == 4 and first["samples"] == 256
    assert first["energy_j"] == pytest.approx(4 * first["device_energy_j"])
    # rpi4 counts compute energy as active power over the time.
    assert first["device_energy_j"] == pytest.approx(6.4 * first["device_seconds"])
    assert first["device_seconds"] == pytest.approx(first["training_macs"] / 23.8e9)
    assert drift["adaptation_energy_j"] == pytest.approx(
        sum(e["energy_j"] for e in drift["adaptations"])
    )
    # Each device's job is charged to the request that waited behind it, within its compute.
    frame = pd.read_parquet(runs["adapt"] / "requests.parquet")
    charged = frame["energy_adaptation_j"]
    assert charged.sum() == pytest.approx(drift["adaptation_energy_j"])
    assert (charged > 0).sum() == 4 * len(drift["adaptations"])
    assert (frame["energy_compute_j"] >= charged).all()
    assert (frame.loc[frame["group"] == "lobby", "energy_adaptation_j"] == 0).all()
    # On held-out drifted images (seen later, not trained on) the device exit does better.
    assert first["exit_accuracy_after"] > first["exit_accuracy_before"]
    static = json.loads((runs["static"] / "summary.json").read_text())["drift"]
    assert static["adaptations"] == [] and static["adaptation_energy_j"] == 0.0


def test_requests_after_an_adaptation_use_the_new_weights(runs: dict[str, Path]) -> None:
    import json

    frame = pd.read_parquet(runs["adapt"] / "requests.parquet")
    static = pd.read_parquet(runs["static"] / "requests.parquet")
    event = json.loads((runs["adapt"] / "summary.json").read_text())["drift"]["adaptations"][0]
    street = frame["group"] == "street"
    after = frame["t_arrival_s"] > event["at_s"]
    assert (frame.loc[street & after, "model_version"] >= 1).all()
    assert (frame.loc[~(street & after), "model_version"] == 0).all()
    assert (frame["drifted"] == (street & (frame["t_arrival_s"] >= 40.0))).all()
    # Same workload and images; the lobby's own part is untouched (it shares the cloud).
    pd.testing.assert_series_equal(frame["image"], static["image"])
    lobby = frame["group"] == "lobby"
    own = ["label", "path", "exit", "t_edge_start_s", "t_edge_end_s", "energy_compute_j"]
    pd.testing.assert_frame_equal(frame.loc[lobby, own], static.loc[lobby, own])
    # The training job held each street device: its next request started after the job.
    next_ones = frame.loc[street & after].groupby("device")["t_edge_start_s"].min()
    assert len(next_ones) == 4
    assert (next_ones >= event["at_s"] + event["device_seconds"] - 1e-9).all()
    later = street & (frame["t_arrival_s"] > event["job_end_s"])
    for column in ("correct", "path"):
        adapted = (frame.loc[later, column] == ("edge" if column == "path" else True)).mean()
        kept = (static.loc[later, column] == ("edge" if column == "path" else True)).mean()
        assert adapted > kept, column


def test_a_class_skew_draws_only_those_classes(tmp_path: Path) -> None:
    overrides = [
        "duration=30 s",
        "drift[0]={group: street, start: 10 s, classes: [Sneaker, 0]}",
    ]
    result = run(ROOT / "scenarios/drift-static.yaml", overrides=overrides, write=False)
    frame = result.requests
    skewed = frame["drifted"].to_numpy()
    assert skewed.any()
    assert set(np.unique(frame.loc[skewed, "label"])) <= {0, 7}
    assert len(np.unique(frame.loc[~skewed, "label"])) == 10


def test_fogsim_plot_draws_both_runs_over_time(runs: dict[str, Path], tmp_path: Path) -> None:
    import subprocess
    import sys

    assert (runs["adapt"] / "figures/drift_over_time.png").stat().st_size > 0
    out = tmp_path / "compared"
    args = ["plot", str(runs["adapt"]), "--compare", str(runs["static"]), "-o", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "fogsim", *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert (out / "over_time_compared.svg").stat().st_size > 0
    svg = (out / "over_time_compared.svg").read_text()
    assert "street (drift-adapt)" in svg and "street (drift-static)" in svg
    bad = subprocess.run(
        [sys.executable, "-m", "fogsim", "plot", str(runs["adapt"]), "--compare", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode == 2 and "run directories" in bad.stderr


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["drift[0].classes=[Shoe]"], "'Shoe' is no class"),
        (["drift[0].classes=[10]"], "10 is no class"),
        (
            [
                "devices[0].profile="
                "{throughput: {fp32: 1 GMAC/s}, idle_power: 1 W, active_power: 2 W}"
            ],
            "no int8 throughput",
        ),
    ],
)
def test_validate_finds_what_would_stop_the_drift(overrides: list[str], expected: str) -> None:
    from fogsim.scenario import ScenarioError, load_scenario

    with pytest.raises(ScenarioError, match=expected) as info:
        load_scenario(ROOT / "scenarios/drift-adapt.yaml", overrides, preflight=True)
    assert "drift[0]" in str(info.value)

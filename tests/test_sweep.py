"""Sweeps: grid expansion, up-front validation, Dask runs equal serial runs, resume, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cli_fixtures import invoke
from distributed import Client

import fogsim.sweeping.execute as execute
from fogsim.errors import UserInputError
from fogsim.runner import run
from fogsim.sweeping import SweepSpec, load_sweep, spec_from_options, sweep
from fogsim.sweeping.spec import normalize_value, parse_grid_option
from fogsim.sweeping.store import SweepStore

ROOT = Path(__file__).resolve().parents[1]
CAMPUS = ROOT / "scenarios/campus.yaml"
SMALL = ["duration=10 s", "devices[0].count=4"]
BANDWIDTH = "network.gateways[0].backhaul.bandwidth"


# ---------------------------------------------------------------- the spec


def test_glued_units_get_a_space_and_numbers_stay_numbers() -> None:
    path, values = parse_grid_option(f"{BANDWIDTH}=10Mbps,50 Mbps,1.5Gbps,250kbit/s")
    assert path == BANDWIDTH
    assert values == ["10 Mbps", "50 Mbps", "1.5 Gbps", "250 kbit/s"]
    assert parse_grid_option("devices[0].count=100,1000")[1] == [100, 1000]
    assert parse_grid_option("duration=2min,1e3 s")[1] == ["2 min", "1e3 s"]
    assert normalize_value("0.5") == 0.5 and normalize_value("early_exit") == "early_exit"


def test_commas_inside_braces_do_not_split() -> None:
    _, values = parse_grid_option("policy={name: cloud_only},{name: early_exit, threshold: 0.5}")
    assert values == ["{name: cloud_only}", "{name: early_exit, threshold: 0.5}"]


def test_mixed_ints_and_floats_become_floats() -> None:
    spec = spec_from_options(CAMPUS, ["policy.threshold=1,0.5"])
    assert spec.grid["policy.threshold"] == [1.0, 0.5]


def test_grid_times_seeds_in_a_fixed_order() -> None:
    spec = spec_from_options(
        CAMPUS, [f"{BANDWIDTH}=10Mbps,50Mbps,200Mbps", "devices[0].count=1,2"], 3
    )
    points = spec.points(base_seed=7)
    assert len(points) == 3 * 2 * 3 == len({p.id for p in points})
    assert [p.seed for p in points[:3]] == [7, 8, 9]
    assert points[0].params == {BANDWIDTH: "10 Mbps", "devices[0].count": 1}
    assert points[0].overrides == [f"{BANDWIDTH}=10 Mbps", "devices[0].count=1", "seed=7"]
    explicit = spec_from_options(CAMPUS, ["devices[0].count=1"], seeds=[3, 11])
    assert [p.seed for p in explicit.points(base_seed=7)] == [3, 11]


@pytest.mark.parametrize(
    ("grid", "kwargs", "message"),
    [
        (["devices[0].count"], {}, "path=value1"),
        (["devices[0].count=1,1"], {}, "repeats a value"),
        (["seed=1,2"], {}, "not a grid on seed"),
        (["a..b=1"], {}, "cannot read the path"),
        (["devices[0].count=1"], {"replications": 0}, "at least 1"),
        (["devices[0].count=1"], {"seeds": [1, 1]}, "without repeats"),
    ],
)
def test_malformed_specs_are_user_errors(grid: list[str], kwargs: dict, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        spec_from_options(CAMPUS, grid, **kwargs)


def test_every_invalid_point_is_reported_before_anything_runs(tmp_path: Path) -> None:
    grid = [f"{BANDWIDTH}=10ms,10Mbps", "devices[0].count=-1,2"]
    with pytest.raises(UserInputError) as raised:
        sweep(CAMPUS, grid, overrides=SMALL, out_dir=tmp_path / "sweep")
    text = str(raised.value)
    assert "3 of 4 sweep points are invalid" in text
    assert "'10 ms' is not a bandwidth" in text and "devices[0].count" in text
    assert not (tmp_path / "sweep").exists()


# ---------------------------------------------------------------- running


def test_cluster_sweep_equals_serial_runs(client: Client, tmp_path: Path) -> None:
    result = sweep(
        CAMPUS,
        [f"{BANDWIDTH}=1Mbps,100Mbps"],
        replications=2,
        overrides=SMALL,
        out_dir=tmp_path / "sweep",
        client=client,
    )
    assert list(result.points["status"]) == ["done"] * 4
    requests = result.requests
    spec = spec_from_options(CAMPUS, [f"{BANDWIDTH}=1Mbps,100Mbps"], 2)
    for point in spec.points(base_seed=7):
        serial = run(CAMPUS, overrides=SMALL + point.overrides, write=False)
        swept = requests[requests["point"] == point.id].reset_index(drop=True)
        assert (swept[BANDWIDTH] == point.params[BANDWIDTH]).all()
        assert (swept["seed"] == point.seed).all()
        swept = swept.drop(columns=[BANDWIDTH, "seed", "point"])
        pd.testing.assert_frame_equal(swept, serial.requests, check_categorical=False)
        row = result.points.set_index("point").loc[point.id]
        assert row["requests"] == serial.summary["requests"]
        assert row["latency_p95_s"] == serial.summary["latency_s"]["p95"]


def test_an_interrupted_sweep_resumes_without_loss_or_duplicates(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = ["devices[0].count=2,3,4"]
    out = tmp_path / "sweep"
    write_done = SweepStore.write_done
    calls = []

    def killed_after_two(self, point, *args) -> None:  # noqa: ANN001
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(point.id)
        write_done(self, point, *args)

    monkeypatch.setattr(SweepStore, "write_done", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        sweep(CAMPUS, grid, replications=2, overrides=SMALL, out_dir=out, client=client)
    partial = pd.read_parquet(out / "points.parquet")
    assert sorted(partial["point"]) == sorted(calls)
    monkeypatch.setattr(SweepStore, "write_done", write_done)

    kept = {p: (out / "points" / f"{p}.json").stat().st_mtime_ns for p in calls}
    written = []

    def counted(self, point, *args) -> None:  # noqa: ANN001
        written.append(point.id)
        write_done(self, point, *args)

    monkeypatch.setattr(SweepStore, "write_done", counted)
    result = sweep(CAMPUS, grid, replications=2, overrides=SMALL, out_dir=out, client=client)
    assert len(written) == 6 - 2 and not set(written) & set(kept)
    assert kept == {p: (out / "points" / f"{p}.json").stat().st_mtime_ns for p in calls}
    points = result.points
    assert len(points) == 6 and points["point"].is_unique and set(points["status"]) == {"done"}
    per_point = result.requests.groupby("point", observed=True).size()
    assert per_point.to_dict() == dict(zip(points["point"], points["requests"], strict=True))
    again = sweep(CAMPUS, grid, replications=2, overrides=SMALL, out_dir=out, client=client)
    assert len(written) == 4 and again.points.equals(points)


def test_a_failing_point_is_recorded_and_reported(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = execute.simulate_task

    def fails_for_seed_8(scenario, outcomes, point, *rest):  # noqa: ANN001, ANN002, ANN202
        if scenario.seed == 8:
            raise RuntimeError("the cloud caught fire")
        return task(scenario, outcomes, point, *rest)

    monkeypatch.setattr(execute, "simulate_task", fails_for_seed_8)
    with pytest.warns(UserWarning, match="1 of 2 points failed"):
        result = sweep(CAMPUS, replications=2, overrides=SMALL, out_dir=tmp_path, client=client)
    failed = result.failed
    assert list(failed["seed"]) == [8]
    assert failed["error"].iloc[0] == "RuntimeError: the cloud caught fire"
    table = pd.read_csv(tmp_path / "points.csv")
    assert sorted(table["status"]) == ["done", "failed"]
    assert set(result.requests["seed"]) == {7}
    monkeypatch.setattr(execute, "simulate_task", task)
    retried = sweep(CAMPUS, replications=2, overrides=SMALL, out_dir=tmp_path, client=client)
    assert list(retried.points["status"]) == ["done", "done"]
    assert retried.points["error"].eq("").all()


def test_a_cluster_is_given_one_way_only(client: Client, tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="give one of"):
        sweep(CAMPUS, overrides=SMALL, out_dir=tmp_path, client=client, workers=2)


def test_a_different_sweep_in_the_same_directory_is_refused(client: Client, tmp_path: Path) -> None:
    sweep(CAMPUS, overrides=SMALL, out_dir=tmp_path, client=client)
    with pytest.raises(UserInputError, match="holds a different sweep"):
        sweep(CAMPUS, replications=2, overrides=SMALL, out_dir=tmp_path, client=client)


def test_sweep_file_with_explicit_seeds(client: Client, tmp_path: Path) -> None:
    spec_file = tmp_path / "sweep.yaml"
    spec_file.write_text(
        yaml.safe_dump(
            {
                "scenario": str(CAMPUS),
                "grid": {BANDWIDTH: ["5Mbps", "50Mbps"]},
                "seeds": [1, 5],
                "set": SMALL,
            }
        )
    )
    result = sweep(spec_file, out_dir=tmp_path / "out", client=client)
    assert sorted(result.points["seed"]) == [1, 1, 5, 5]
    assert set(result.points[BANDWIDTH]) == {"5 Mbps", "50 Mbps"}
    written = yaml.safe_load((tmp_path / "out/sweep.yaml").read_text())
    assert written["grid"] == {BANDWIDTH: ["5 Mbps", "50 Mbps"]} and written["set"] == SMALL
    assert load_sweep(tmp_path / "out").points.equals(result.points)


def test_sweep_spec_object_is_accepted(client: Client, tmp_path: Path) -> None:
    spec = SweepSpec(CAMPUS, {"devices[0].count": [2]}, overrides=SMALL)
    result = sweep(spec, out_dir=tmp_path, client=client)
    assert list(result.points["devices"]) == [2]


def test_command_exits_non_zero_and_names_the_failed_points(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Everything a point needs is checked before the sweep starts, so a point fails only for
    # what no check can foresee; here the simulation itself breaks for one point. The
    # cluster's workers are threads of this process, so they see the patch.
    import fogsim.sim.engine as engine

    real = engine.simulate

    def breaks_with_three_devices(scenario, outcomes, **kwargs):
        if scenario.device_count == 3:
            raise RuntimeError("the simulation broke")
        return real(scenario, outcomes, **kwargs)

    monkeypatch.setattr(engine, "simulate", breaks_with_three_devices)
    args = ["sweep", str(CAMPUS), "--grid", "devices[0].count=2,3", "-q"]
    args += ["-o", str(tmp_path / "out"), "--scheduler", client.scheduler.address]
    args += [arg for override in SMALL[:1] for arg in ("--set", override)]
    result = invoke(*args)
    assert result.code == 1, result.stderr
    assert "1 of 2 points failed" in result.stderr
    assert "devices[0].count" in result.stderr and "the simulation broke" in result.stderr
    markers = [json.loads(p.read_text()) for p in (tmp_path / "out/points").glob("*.json")]
    assert sorted(m["status"] for m in markers) == ["done", "failed"]


def test_a_missing_dataset_is_refused_before_anything_runs(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-images"
    grid = f"dataset={{name: fashion-mnist, split: test}},{{path: {missing}, split: test}}"
    result = invoke("sweep", str(CAMPUS), "--grid", grid, "-o", str(tmp_path / "out"))
    assert result.code == 2
    assert "1 of 2 sweep points are invalid" in result.stderr and str(missing) in result.stderr
    assert not (tmp_path / "out").exists()


def test_points_too_large_for_memory_are_refused_before_anything_runs(tmp_path: Path) -> None:
    args = ["sweep", str(CAMPUS), "--grid", "devices[0].count=4,400000000"]
    result = invoke(*args, "-o", str(tmp_path / "out"))
    assert result.code == 2
    # 4e8 devices x 2 requests/s x 120 s, for the large point only.
    assert "1 of 2 sweep points are invalid" in result.stderr
    assert "about 96,000,000,000 requests" in result.stderr and "--max-memory" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--grid", "policy=[1,{a: 1"], "--grid 'policy=[1,{a: 1': the value"),
        (["--grid", "policy=@x"], "not readable YAML"),
        (["--set", "policy={a: 1"], "--set: policy: the value"),
        (["--max-memory", "lots"], "--max-memory 'lots'"),
    ],
)
def test_unreadable_options_are_clear_errors(tmp_path: Path, args: list[str], words: str) -> None:
    result = invoke("sweep", str(CAMPUS), *args, "-o", str(tmp_path / "out"))
    assert result.code == 2 and words in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"\x89PNG\r\n\x1a\n\xff\xfe\x00", "not a text file"), (None, "is a directory")],
)
def test_binary_files_and_folders_are_clear_errors(
    tmp_path: Path, content: bytes | None, words: str
) -> None:
    path = tmp_path / "sweep.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    result = invoke("sweep", str(path), "-o", str(tmp_path / "out"))
    assert result.code == 2 and words in result.stderr, result.stderr

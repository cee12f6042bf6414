"""The run directory: one writer at a time, refused before simulating, complete or not at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fogsim.errors import UserInputError
from fogsim.results import RunResult
from fogsim.rundir import MARKER, claim_run_dir, load_run, write_run
from fogsim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
CAMPUS = ROOT / "scenarios/campus.yaml"
TINY = ["duration=5 s", "devices[0].count=2"]


@pytest.fixture(scope="module")
def result() -> RunResult:
    """A small finished run (not simulated: the directory only stores what it is given)."""
    scenario = load_scenario(CAMPUS, ["outputs.figures=false"])
    frame = pd.DataFrame({"request": [0, 1], "latency_s": [0.1, 0.2]})
    return RunResult(scenario, frame, {"scenario": "campus", "requests": 2})


def test_a_written_run_is_marked_complete_and_reads_back(tmp_path: Path, result) -> None:
    write_run(result, tmp_path / "run", overwrite=False, figures=False)
    marker = json.loads((tmp_path / "run" / MARKER).read_text())
    assert marker["bytes"]["summary.json"] == (tmp_path / "run/summary.json").stat().st_size
    again = load_run(tmp_path / "run")
    assert again.summary == result.summary
    # Nothing is left beside it: no lock, no staging.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_directory_without_the_marker_is_not_loaded(tmp_path: Path, result) -> None:
    write_run(result, tmp_path / "run", overwrite=False, figures=False)
    (tmp_path / "run" / MARKER).unlink()
    with pytest.raises(UserInputError, match="not a complete run"):
        load_run(tmp_path / "run")


def test_a_held_claim_refuses_a_second_writer_at_once(tmp_path: Path, result) -> None:
    with claim_run_dir(tmp_path / "run", overwrite=True):
        started = time.perf_counter()
        with pytest.raises(UserInputError, match=f"process {os.getpid()}"):
            write_run(result, tmp_path / "run", overwrite=True, figures=False)
        assert time.perf_counter() - started < 1.0
    write_run(result, tmp_path / "run", overwrite=True, figures=False)  # released: free again


def test_existing_results_are_refused_when_claimed(tmp_path: Path, result) -> None:
    write_run(result, tmp_path / "run", overwrite=False, figures=False)
    with pytest.raises(UserInputError, match="--overwrite"):
        claim_run_dir(tmp_path / "run", overwrite=False).acquire()
    with claim_run_dir(tmp_path / "run", overwrite=True):
        pass


def test_overwrite_replaces_only_a_run_directory(tmp_path: Path, result) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(UserInputError, match="thesis.tex"):
        write_run(result, folder, overwrite=True, figures=False)
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_overwrite_of_an_unwritable_run_directory_is_refused_first(
    tmp_path: Path, result, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_run(result, tmp_path / "run", overwrite=False, figures=False)
    # As if the folder were read-only (root may write anywhere, so pretend).
    monkeypatch.setattr("fogsim.rundir.os.access", lambda path, mode: Path(path).name != "run")
    with pytest.raises(UserInputError, match="not writable"):
        claim_run_dir(tmp_path / "run", overwrite=True).acquire()
    assert load_run(tmp_path / "run").summary == result.summary


@pytest.mark.parametrize("case", ["file", "file as parent", "unwritable"])
def test_unusable_output_paths_are_refused(tmp_path: Path, case: str) -> None:
    (tmp_path / "a-file").write_text("x")
    out = {
        "file": tmp_path / "a-file",
        "file as parent": tmp_path / "a-file" / "run",
        # Nobody, not even root, can create folders in /proc.
        "unwritable": Path("/proc/fogsim-no-such-folder/run"),
    }[case]
    with pytest.raises(UserInputError, match="-o "):
        claim_run_dir(out, overwrite=False).acquire()


def test_leftovers_of_a_killed_run_are_removed_by_the_next(tmp_path: Path, result) -> None:
    staging = tmp_path / ".run.staging"
    staging.mkdir()
    (staging / "requests.parquet").write_bytes(b"half")
    older = tmp_path / ".run-k2x_9q0a"  # the staging name of fogsim before the lock
    write_run(result, older, overwrite=False, figures=False)
    (older / MARKER).unlink()  # killed before the end: every file but the marker
    unrelated = tmp_path / ".run-notes"  # not a staging name: kept
    unrelated.mkdir()
    with pytest.raises(UserInputError, match="not a complete run"):
        load_run(older)
    write_run(result, tmp_path / "run", overwrite=False, figures=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run-notes", "run"]


def test_a_run_killed_while_swapping_is_completed(tmp_path: Path, result) -> None:
    # Killed after moving the old run aside and before moving the new one in.
    write_run(result, tmp_path / "new", overwrite=False, figures=False)
    (tmp_path / "new").rename(tmp_path / ".run.staging")
    (tmp_path / ".run.retired").mkdir()
    with pytest.raises(UserInputError, match="already holds results"):
        claim_run_dir(tmp_path / "run", overwrite=False).acquire()
    assert load_run(tmp_path / "run").summary == result.summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def _fogsim(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "fogsim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_run_into_a_directory_being_written_refuses_at_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", str(CAMPUS), "-o", str(out), "-q", "--overwrite"]
    args += [arg for o in TINY for arg in ("--set", o)]
    # This process holds the claim exactly as a fogsim run does while it simulates.
    with claim_run_dir(out, overwrite=True):
        second = _fogsim(*args)
        assert second.wait(timeout=600) == 2
        errors = second.stderr.read()  # type: ignore[union-attr]
    assert f"process {os.getpid()}" in errors and "is writing" in errors
    assert "Traceback" not in errors and not out.exists()
    first = _fogsim(*args)
    assert first.wait(timeout=600) == 0, first.stderr.read()  # type: ignore[union-attr]
    assert load_run(out).summary["requests"] > 0


def test_a_killed_run_leaves_nothing_the_next_run_trips_over(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", str(CAMPUS), "-o", str(out), "-q"]
    args += [arg for o in TINY for arg in ("--set", o)]
    victim = _fogsim(*args)
    deadline = time.monotonic() + 120
    while not (tmp_path / ".run.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.kill()
    victim.wait()
    again = _fogsim(*args, "--overwrite")  # in case the victim finished before the kill
    assert again.wait(timeout=600) == 0, again.stderr.read()  # type: ignore[union-attr]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_run_streams_its_stages_in_row_groups_the_bytes_to_parquet_writes(
    tmp_path: Path, monkeypatch
) -> None:
    # Row groups of a few rows, so that the table is written in many: the file is the one
    # to_parquet writes of the table held whole, and the result reads it back when asked.
    import pyarrow as pa
    import pyarrow.parquet as pq

    import fogsim.rundir
    from fogsim.runner import run

    held = run(CAMPUS, overrides=TINY, write=False).stages
    assert held is not None and len(held) > 3 * 7
    monkeypatch.setattr(fogsim.rundir, "ROW_GROUP", 7)
    streamed = run(CAMPUS, overrides=TINY, out_dir=tmp_path / "run")
    path = tmp_path / "run/stages.parquet"
    assert pq.ParquetFile(path).metadata.num_row_groups == -(-len(held) // 7)
    expected = tmp_path / "whole.parquet"
    whole = pa.Table.from_pandas(held, preserve_index=False)
    pq.write_table(whole, expected, row_group_size=7, compression="snappy")
    assert path.read_bytes() == expected.read_bytes()
    assert streamed.stage_rows is None  # not held by the run: read back from its file
    pd.testing.assert_frame_equal(streamed.stages, held, check_exact=True)

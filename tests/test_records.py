"""The run's records: text columns as categorical codes, and the stage table built once."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from sim_fixtures import fog_scenario, small_scenario, synthetic_outcomes, three_part_outcomes

from fogsim.results import CATEGORIES, requests_frame, stages_frame
from fogsim.sim.engine import simulate
from fogsim.sim.records import StageTable, labels_of
from fogsim.sim.shared import StageTimes


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False)
    return sink.getvalue()


def test_codes_give_the_table_text_gives(tmp_path):
    # The same requests with their text columns as codes or as text: the same frame and the
    # same Parquet bytes (the categories are the values used, sorted, either way).
    for scenario, outcomes in (
        (small_scenario(tmp_path), synthetic_outcomes(exits=2)),
        (fog_scenario(tmp_path), three_part_outcomes()),
    ):
        columns = simulate(scenario, outcomes).columns
        as_text = {
            k: np.asarray(v, dtype=object) if k in CATEGORIES else v for k, v in columns.items()
        }
        assert all(isinstance(columns[k], pd.Categorical) for k in CATEGORIES)
        coded, texted = requests_frame(columns), requests_frame(as_text)
        pd.testing.assert_frame_equal(coded, texted, check_exact=True)
        assert parquet_bytes(coded) == parquet_bytes(texted)


def test_a_coded_column_takes_any_of_its_names_later():
    # Mobility sets a request's gateway to "" after the run: every name is a category.
    gateway = labels_of(np.array([0, 1, 0], np.int16), ["a", "b", ""])
    gateway[np.array([False, True, False])] = ""
    assert list(gateway) == ["a", "", "a"]
    frame = requests_frame({"gateway": gateway})
    assert list(frame["gateway"].cat.categories) == ["", "a"]  # the used ones, sorted


def test_the_stage_table_is_built_once_and_each_caller_gets_its_own_dict(tmp_path):
    table = simulate(small_scenario(tmp_path), synthetic_outcomes(exits=2)).stages
    first, names = table.columns()
    first["request"] = first["request"][:0]  # a caller's change stays its own
    names.append("scribbled")
    again, names_again = table.columns()
    assert again["request"].size > 0 and "scribbled" not in names_again
    assert table._shared is None and table._devices is None  # the run's arrays let go
    pd.testing.assert_frame_equal(
        stages_frame(again, names_again), stages_frame(*table.columns()), check_exact=True
    )


def test_the_stage_table_in_chunks_is_the_whole_table_cut_in_order(tmp_path):
    # Built a chunk at a time (the run streams it to Parquet): the same rows, the same
    # names, every chunk of the size asked for but the last, whatever the cut.
    for scenario, outcomes in (
        (small_scenario(tmp_path), synthetic_outcomes(exits=2)),
        (fog_scenario(tmp_path), three_part_outcomes()),
    ):
        whole = stages_frame(*simulate(scenario, outcomes).stages.columns())
        for size in (1, 7, len(whole) - 1, len(whole), 10 * len(whole)):
            table = simulate(scenario, outcomes).stages
            chunks = [stages_frame(*chunk) for chunk in table.chunks(size)]
            assert [len(c) for c in chunks[:-1]] == [size] * (len(chunks) - 1)
            assert 0 < len(chunks[-1]) <= size
            joined = pd.concat(chunks, ignore_index=True)
            pd.testing.assert_frame_equal(joined, whole, check_exact=True)
            assert table._shared is None and table._devices is None  # let go after the last


def test_the_summary_reads_the_answered_rows_as_a_copy_of_them_would(tmp_path):
    # summarize reads the answered rows column by column; the figures are those of a copy
    # of the answered rows, grouped as pandas groups them (some requests not answered).
    from fogsim.results import summarize

    scenario = fog_scenario(tmp_path)
    sim = simulate(scenario, three_part_outcomes())
    frame = requests_frame(sim.columns)
    summary = summarize(scenario, frame, {})
    answered = frame[frame["status"].astype(str).str.startswith("answered")].copy()
    assert 0 < len(answered) < len(frame) and summary["answered"] == len(answered)
    by_group = {
        str(g): float(part["energy_compute_j"].mean()) if len(part) else None
        for g, part in answered.groupby("group", observed=False)
    }
    assert {g: v["compute"] for g, v in summary["energy_by_group_j"].items()} == by_group
    for tier in ("device", "fog", "cloud"):
        mine = answered.loc[answered["answered_at"] == tier, "latency_s"]
        expected = float(mine.mean()) if len(mine) else None
        assert summary["latency_by_tier_s"][tier]["mean"] == expected
    assert summary["latency_s"]["p95"] == float(np.percentile(answered["latency_s"], 95))
    active = answered["energy_compute_j"] + answered["energy_radio_j"]
    assert summary["energy_j"]["active_p95"] == float(np.percentile(active, 95))


def test_released_stage_times_are_empty_and_the_others_kept():
    from fogsim.sim.shared import StageTimes

    times = StageTimes.empty(5, 3)
    times.release("share", "gave_up_s")
    assert times.share.shape == (0, 0) and times.share.dtype == np.float64
    assert times.gave_up_s.shape == (0,)
    assert times.enqueue_s.shape == (5, 3) and times.batch_size.shape == (5, 3)
    try:
        times.share[4, 2]  # a late reader fails rather than reading stale values
    except IndexError:
        pass
    else:
        raise AssertionError("a released grid still answered")


def _times(enqueue: list[list[float]], end: list[list[float]]) -> StageTimes:
    times = StageTimes.empty(len(enqueue), len(enqueue[0]))
    times.enqueue_s[:] = enqueue
    times.end_s[:] = end
    return times


def test_enqueues_kept_whole_unless_each_follows_the_stage_before_bit_for_bit():
    nan = np.nan
    # Row 0 went through three stages, row 1 through one, row 2 never entered; row 3's
    # second stage ended past the end of the run, so it entered no third.
    enqueue = [[1.0, 2.0, 3.5], [0.5, nan, nan], [nan, nan, nan], [0.25, 0.75, nan]]
    end = [[2.0, 3.5, 4.0], [0.7, nan, nan], [nan, nan, nan], [0.75, nan, nan]]
    times = _times(enqueue, end)
    times.compact_enqueues()
    assert times.enqueue_s.shape == (4, 1)
    rows, stage = np.repeat(np.arange(4), 3), np.tile(np.arange(3), 4)
    np.testing.assert_array_equal(times.enqueue_at(rows, stage), np.ravel(enqueue))
    for j in range(3):
        np.testing.assert_array_equal(times.enqueue_at(np.arange(4), j), np.array(enqueue)[:, j])
    # A later stage queued after the one before ended (a fixed delay between them), or a
    # stage entered without the one before it: the times are kept as they are.
    for changed in ([[1.0, 2.5, 3.5], *enqueue[1:]], [[nan, 2.0, 3.5], *enqueue[1:]]):
        kept = _times(changed, end)
        kept.compact_enqueues()
        assert kept.enqueue_s.shape == (4, 3)
        np.testing.assert_array_equal(kept.enqueue_at(rows, stage), np.ravel(changed))
    # -0.0 == 0.0 as floats, but not as bits: kept whole.
    signed = _times([[0.0, -0.0]], [[0.0, 1.0]])
    signed.compact_enqueues()
    assert signed.enqueue_s.shape == (1, 2)


def test_stages_placed_by_number_are_the_table_sorted_by_request_and_stage(tmp_path, monkeypatch):
    # Each request's stages are numbered 0..k-1, so each is written at its request's offset
    # plus its number; where a shared stage was entered without the one before it, the
    # parts are joined and sorted instead. Both give the same table, to the byte.
    def run() -> bytes:
        stages = simulate(fog_scenario(tmp_path), three_part_outcomes()).stages
        columns, names = stages.columns()
        assert columns["stage"].size > 1000 and len(set(columns["kind"].tolist())) == 2
        return parquet_bytes(stages_frame(columns, names))

    placed = run()
    monkeypatch.setattr(StageTable, "_shared_depth", lambda self, names: None)
    assert run() == placed

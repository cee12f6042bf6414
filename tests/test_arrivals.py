"""Arrival processes and the run's random streams: rates, determinism, CSV replay, errors."""

from __future__ import annotations

import numpy as np
import pytest

from fogsim.sim.arrivals import (
    ArrivalProcess,
    arrival_names,
    make_arrival,
    register_arrival,
)
from fogsim.sim.rng import Streams

EXAMPLES = {
    "poisson": {"rate_per_s": 3.0},
    "periodic": {"period_s": 0.5, "jitter_s": 0.1},
    "bursty": {"on_rate_per_s": 20.0, "mean_on_s": 0.5, "mean_off_s": 2.0},
}


@pytest.fixture
def trace(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("time_s,device\n0.5,0\n2.0,1\n0.1,0\n7.5,0\n1.0,1\n")
    return path


def example(name: str, trace_path) -> ArrivalProcess:
    if name == "csv":
        return make_arrival("csv", path=trace_path, device_column="device")
    return make_arrival(name, **EXAMPLES[name])


def test_every_process_is_registered():
    assert arrival_names() == sorted([*EXAMPLES, "csv"])


@pytest.mark.parametrize("name", arrival_names())
def test_every_process_gives_sorted_times_in_the_window_and_repeats_per_seed(name, trace):
    process = example(name, trace)
    times = process.sample(np.random.default_rng(7), 60.0, device_index=0)
    assert times.dtype == np.float64 and times.size > 0
    assert np.all(np.diff(times) >= 0) and times[0] >= 0 and times[-1] < 60.0
    again = process.sample(np.random.default_rng(7), 60.0, device_index=0)
    np.testing.assert_array_equal(times, again)
    assert process.sample(np.random.default_rng(7), 0.0, device_index=0).size == 0


@pytest.mark.parametrize("name", arrival_names())
@pytest.mark.parametrize("duration_s", [0.0, 0.3, 40.0])
def test_sample_devices_draws_what_sample_draws_device_after_device(name, duration_s, trace):
    process = example(name, trace)
    rng_one, rng_all = np.random.default_rng(7), np.random.default_rng(7)
    each = [process.sample(rng_one, duration_s, device_index=i) for i in range(5)]
    times, counts = process.sample_devices(rng_all, duration_s, 5)
    assert counts.tolist() == [t.size for t in each]
    np.testing.assert_array_equal(times, np.concatenate(each))
    assert rng_one.random() == rng_all.random()  # the stream moved on by as many draws


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_random_processes_differ_between_seeds(name):
    process = make_arrival(name, **EXAMPLES[name])
    a = process.sample(np.random.default_rng(1), 100.0)
    b = process.sample(np.random.default_rng(2), 100.0)
    assert a.size != b.size or not np.array_equal(a, b)


def test_poisson_rate_and_exponential_gaps():
    times = make_arrival("poisson", rate_per_s=5.0).sample(np.random.default_rng(0), 1e5)
    assert times.size / 1e5 == pytest.approx(5.0, rel=0.01)
    gaps = np.diff(times)
    # Exponential gaps: coefficient of variation 1.
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.02)


def test_periodic_count_is_exact_up_to_one_or_two_with_jitter():
    steady = make_arrival("periodic", period_s=0.3)
    jittered = make_arrival("periodic", period_s=0.3, jitter_s=0.2)
    counts = []
    for seed in range(200):
        assert abs(steady.sample(np.random.default_rng(seed), 100.0).size - 100 / 0.3) < 1
        times = jittered.sample(np.random.default_rng(seed), 100.0)
        assert abs(times.size - 100 / 0.3) < 2
        assert np.diff(times).min() >= 0.3 - 0.2 - 1e-12
        counts.append(times.size)
    # The window loses as many arrivals at its end as it gains at its start.
    assert np.mean(counts) == pytest.approx(100 / 0.3, abs=0.1)


def test_periodic_with_fixed_phase_and_no_jitter_is_a_grid():
    times = make_arrival("periodic", period_s=2.0, phase=0.5).sample(np.random.default_rng(0), 7.0)
    np.testing.assert_array_equal(times, [0.5, 2.5, 4.5, 6.5])


def test_periodic_random_phase_desynchronises_devices():
    process = make_arrival("periodic", period_s=10.0)
    firsts = [process.sample(np.random.default_rng(s), 100.0)[0] for s in range(50)]
    assert len(set(firsts)) == 50 and min(firsts) >= 0 and max(firsts) < 10.0


def test_bursty_long_run_rate_and_burstiness():
    process = make_arrival("bursty", on_rate_per_s=10.0, mean_on_s=1.0, mean_off_s=3.0)
    times = process.sample(np.random.default_rng(0), 2e5)
    assert times.size / 2e5 == pytest.approx(10.0 * 1.0 / 4.0, rel=0.02)
    # More variable than Poisson: counts per second are over-dispersed.
    counts = np.bincount(times.astype(int))
    assert counts.var() / counts.mean() > 3.0


def test_bursty_short_windows_start_in_the_stationary_state():
    process = make_arrival("bursty", on_rate_per_s=100.0, mean_on_s=1.0, mean_off_s=3.0)
    busy_at_start = [process.sample(np.random.default_rng(s), 0.01).size > 0 for s in range(2000)]
    assert np.mean(busy_at_start) == pytest.approx(0.25 * (1 - np.exp(-1.0)), abs=0.04)


def test_csv_replays_each_devices_rows(trace):
    process = make_arrival("csv", path=str(trace), device_column="device")
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(process.sample(rng, 10.0, device_index=0), [0.1, 0.5, 7.5])
    np.testing.assert_array_equal(process.sample(rng, 5.0, device_index=0), [0.1, 0.5])
    np.testing.assert_array_equal(process.sample(rng, 10.0, device_index=1), [1.0, 2.0])
    assert process.sample(rng, 10.0, device_index=9).size == 0


def test_csv_without_device_column_gives_every_device_the_whole_trace(trace):
    process = make_arrival("csv", path=trace)
    times = process.sample(np.random.default_rng(0), 10.0, device_index=4)
    np.testing.assert_array_equal(times, [0.1, 0.5, 1.0, 2.0, 7.5])


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        (None, {}, "not a file"),
        ("t\n1.0\n", {}, "line 1: no such column 'time_s'"),
        ("time_s\n1.0\nsoon\n", {}, "line 3: 'soon' in column 'time_s' is not a number"),
        ("time_s\n1.0\n\n\nsoon\n", {}, "line 5: 'soon'"),  # blank lines still count
        ("time_s\n-1.0\n", {}, "line 2: '-1.0' in column 'time_s' is not a finite number >= 0"),
        ("time_s\n1.0\ninf\n", {}, "line 3: 'inf'"),
        ("time_s\n1.0\n2.0,7\n", {}, "line 3: 2 fields where the header has 1"),
        ("time_s,device\n1.0\n", {"device_column": "device"}, "line 2: 1 fields"),
        ("time_s,device\n1.0,0.5\n", {"device_column": "device"}, "line 2: '0.5'.*integers"),
        ("time_s,device\n1.0,-1\n", {"device_column": "device"}, "line 2: '-1'"),
        ("time_s\n1.0\n", {"device_column": "device"}, "no such column 'device'"),
        ("time_s\n", {}, "no rows"),
        ("time_s\n\n\n", {}, "no rows"),
        ("", {}, "is empty"),
        ('time_s\n"1.0\x00"\n', {}, "line 2"),
    ],
)
def test_csv_errors_name_the_problem(tmp_path, content, kwargs, message):
    path = tmp_path / "trace.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message):
        make_arrival("csv", path=path, **kwargs)


def test_csv_binary_file_is_not_text(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_bytes(b"time_s\n\xff\xfe\x00\x81\n")
    with pytest.raises(ValueError, match="not a text file"):
        make_arrival("csv", path=path)


def test_csv_reads_a_byte_order_mark_and_spaces(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("\ufefftime_s , device\n 0.5 , 1 \n")
    process = make_arrival("csv", path=path, device_column="device")
    times = process.sample(np.random.default_rng(0), 10.0, device_index=1)
    np.testing.assert_array_equal(times, [0.5])


def test_csv_with_device_column_needs_a_device_index(trace):
    process = make_arrival("csv", path=trace, device_column="device")
    with pytest.raises(ValueError, match="device_index"):
        process.sample(np.random.default_rng(0), 10.0)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("gaussian", {}, "unknown arrival process 'gaussian'; known: bursty, csv"),
        ("poisson", {"rate": 1.0}, "unknown parameter 'rate'; accepted: rate_per_s"),
        ("poisson", {}, "missing a required argument: 'rate_per_s'"),
        ("poisson", {"rate_per_s": -1.0}, "rate_per_s must be a positive"),
        ("poisson", {"rate_per_s": "fast"}, "rate_per_s must be a positive"),
        ("periodic", {"period_s": 1.0, "jitter_s": -0.1}, "jitter_s"),
        ("periodic", {"period_s": 1.0, "phase": "late"}, "phase"),
        ("bursty", {"on_rate_per_s": 1.0, "mean_on_s": 0.0, "mean_off_s": 1.0}, "mean_on_s"),
    ],
)
def test_bad_names_and_parameters_raise_value_error(name, params, message):
    with pytest.raises(ValueError, match=message):
        make_arrival(name, **params)


def test_negative_duration_is_rejected():
    with pytest.raises(ValueError, match="duration"):
        make_arrival("poisson", rate_per_s=1.0).sample(np.random.default_rng(0), -1.0)


def test_a_name_registers_once():
    with pytest.raises(ValueError, match="already registered"):
        register_arrival("poisson")(type(make_arrival("poisson", rate_per_s=1.0)))


def test_streams_are_named_independent_and_reproducible():
    first = Streams(42)
    a = first.stream("arrivals").random(5)
    noise = first.stream("channel").random(5)
    # Order of creation does not matter, and a name keeps its state between calls.
    second = Streams(42)
    assert np.array_equal(second.stream("channel").random(5), noise)
    assert np.array_equal(second.stream("arrivals").random(5), a)
    assert second.stream("arrivals") is second.stream("arrivals")
    assert not np.array_equal(Streams(43).stream("arrivals").random(5), a)
    assert not np.array_equal(a, noise)


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_streams_reject_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        Streams(seed)


@pytest.mark.parametrize(
    "params", [(1.0, 2.0, 60.0), (5.0, 0.5, 3.0), (0.2, 30.0, 5.0), (40.0, 0.01, 0.02)]
)
@pytest.mark.parametrize("duration_s", [0.0, 7.0, 1800.0])
def test_compiled_bursty_devices_are_sample_to_the_bit(params, duration_s):
    # Many devices and blocks of on/off periods: the compiled loop draws what sample draws.
    process = make_arrival(
        "bursty", on_rate_per_s=params[0], mean_on_s=params[1], mean_off_s=params[2]
    )
    rng_one, rng_all = np.random.default_rng(11), np.random.default_rng(11)
    each = [process.sample(rng_one, duration_s, device_index=i) for i in range(200)]
    times, counts = process.sample_devices(rng_all, duration_s, 200)
    assert counts.tolist() == [t.size for t in each]
    assert times.tobytes() == np.concatenate(each).tobytes()
    assert rng_one.random() == rng_all.random()


def test_a_trace_without_devices_is_replayed_whole_by_every_device(trace):
    process = make_arrival("csv", path=trace)
    times, counts = process.sample_devices(np.random.default_rng(0), 5.0, 3)
    assert counts.tolist() == [4, 4, 4]
    np.testing.assert_array_equal(times, np.tile([0.1, 0.5, 1.0, 2.0], 3))

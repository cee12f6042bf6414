"""fogsim.sim.ordering gives numpy's own orderings, index for index."""

import numpy as np
import pytest

from fogsim.sim.ordering import COUNTED_CODES, by_key_then, stable_argsort, unique_inverse


@pytest.mark.parametrize("seed", range(40))
def test_stable_argsort_is_numpys_stable_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 3000))
    # Few distinct values: many ties, the case an unstable sort gets wrong.
    values = rng.integers(0, int(rng.integers(1, 40)), n) * rng.choice([0.5, -1.0])
    values[rng.random(n) < 0.05] = -0.0  # equal to 0.0
    if seed % 4 == 0 and n:
        values[rng.integers(0, n, 3)] = np.nan
    assert np.array_equal(stable_argsort(values), np.argsort(values, kind="stable"))


def test_stable_argsort_of_sorted_runs_keeps_each_run_in_order() -> None:
    # Per-device streams of times, each sorted, with instants shared across devices.
    runs = [np.arange(0.0, 50.0, step) for step in (0.5, 1.0, 2.5, 1.0)]
    values = np.concatenate(runs)
    assert np.array_equal(stable_argsort(values), np.argsort(values, kind="stable"))


@pytest.mark.parametrize("high", [1, 7, 1000, COUNTED_CODES + 5])
def test_unique_inverse_is_numpys_unique(high: int) -> None:
    codes = np.random.default_rng(high).integers(0, high, 5000)
    unique, inverse = unique_inverse(codes)
    expected_unique, expected_inverse = np.unique(codes, return_inverse=True)
    assert np.array_equal(unique, expected_unique) and unique.dtype == expected_unique.dtype
    assert np.array_equal(inverse, expected_inverse)
    assert np.array_equal(unique[inverse], codes)


@pytest.mark.parametrize(("seed", "devices"), [(0, 1), (1, 30), (2, 5000), (3, 70_000)])
def test_by_key_then_is_numpys_lexsort(seed: int, devices: int) -> None:
    rng = np.random.default_rng(seed)
    key = rng.integers(0, devices, 20_000).astype(np.int32)
    values = rng.integers(0, 500, key.size) / 4.0  # ties within and across keys
    assert np.array_equal(by_key_then(key, values), np.lexsort((values, key)))


def test_stable_argsort_of_sorted_values_is_the_identity() -> None:
    values = np.repeat([0.0, 0.5, 0.5, 2.0], 7)  # in order, with ties
    assert np.array_equal(stable_argsort(values), np.argsort(values, kind="stable"))
    assert stable_argsort(values).dtype == np.argsort(values).dtype

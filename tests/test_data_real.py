"""The real datasets the scenarios use, as provisioned by `make test` / `make data`."""

from __future__ import annotations

import numpy as np
import pytest

from fogsim.data import load_dataset, resolve_dataset
from fogsim.errors import DatasetNotFoundError

# sha256 of the Fashion-MNIST test split as fogsim loads it; pins decoding and order.
FASHION_MNIST_TEST = "da6a8022acedb2cfd9117f2b56c8b2ae3d04c61b3fb248775775a5c27e6bb15e"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # A missing dataset must fail here at once, not start a download.
    monkeypatch.setenv("FOGSIM_OFFLINE", "1")


def test_fashion_mnist_test_split() -> None:
    # No skip: `make test` provisions it (dataset-fashion-mnist), so missing is a failure.
    ds = load_dataset("fashion-mnist", split="test")
    assert ds.images.shape == (10_000, 28, 28, 1) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64
    assert ds.classes[0] == "T-shirt/top" and ds.classes[-1] == "Ankle boot"
    np.testing.assert_array_equal(ds.class_counts(), [1_000] * 10)
    assert ds.fingerprint == FASHION_MNIST_TEST


def test_cifar10_test_zip() -> None:
    try:
        resolve_dataset("cifar10", split="test")
    except DatasetNotFoundError as exc:
        pytest.skip(f"CIFAR-10 test split not provisioned (run `make data`): {exc}")
    ds = load_dataset("cifar10", split="test", cache_decoded=False)
    assert ds.images.shape == (10_000, 32, 32, 3) and ds.images.dtype == np.uint8
    assert ds.classes == ("airplane", "automobile", "bird", "cat", "deer",
                          "dog", "frog", "horse", "ship", "truck")
    np.testing.assert_array_equal(ds.class_counts(), [1_000] * 10)
    # Class folders are read in order, so the labels run 0...0, 1...1, ... 9...9.
    np.testing.assert_array_equal(ds.labels, np.repeat(np.arange(10), 1_000))
    assert 60 < ds.images.mean() < 200

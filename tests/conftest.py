"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from distributed import Client, LocalCluster
from hypothesis import settings

# Property tests draw the same examples on every run, so CI is as deterministic as the
# simulator. `pytest --hypothesis-profile=explore` draws fresh ones to hunt for new failures.
settings.register_profile("default", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile("default")


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two single-threaded in-process Dask workers: a real scheduler without process start-up."""
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as active,
    ):
        yield active

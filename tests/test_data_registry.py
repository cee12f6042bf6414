"""The dataset registry: its entries are complete, and bad entries are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fogsim.data import known_datasets
from fogsim.data.registry import DatasetSpec, registry


def test_known_names() -> None:
    assert known_datasets() == ["cifar10", "cifar100", "fashion-mnist", "mnist"]


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "fashion-mnist", "mnist"])
def test_entry_is_downloadable_and_verifiable(name: str) -> None:
    spec = registry()[name]
    assert spec.url.startswith(("http://", "https://")) and spec.url.endswith("/")
    assert set(spec.splits) == {"train", "test"}
    for file in {f for files in spec.splits.values() for f in files}:
        checksum = spec.checksums[file]
        digest = checksum.sha256 or checksum.md5
        assert digest is not None and len(digest) in (32, 64) and int(digest, 16) >= 0
    expected_classes = {"cifar10": 10, "fashion-mnist": 10, "mnist": 10, "cifar100": None}
    assert (len(spec.classes) if spec.classes else None) == expected_classes[name]


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="colour"):
        DatasetSpec(name="x", title="x", url="u/", splits={}, checksums={}, colour="red")

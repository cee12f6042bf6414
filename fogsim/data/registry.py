"""The known datasets, read once from ``registry.yaml`` into typed, frozen records."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from fogsim.errors import UserInputError

SPLITS: tuple[str, ...] = ("train", "test")
Split = Literal["train", "test"]


class Checksum(BaseModel):
    """Digests of one official file; sha256 is preferred when both are known."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sha256: str | None = None
    md5: str | None = None

    @model_validator(mode="after")
    def _one_at_least(self) -> Checksum:
        if self.sha256 is None and self.md5 is None:
            raise ValueError("a checksum needs sha256 or md5")
        return self


class DatasetSpec(BaseModel):
    """One registry entry: official files per split, their checksums, class names."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    title: str
    url: str
    splits: dict[Split, tuple[str, ...]]
    checksums: dict[str, Checksum]
    classes: tuple[str, ...] | None = None
    install: str | None = None

    @model_validator(mode="after")
    def _downloads_are_verifiable(self) -> DatasetSpec:
        # A download we cannot verify is one we refuse to make, so say so at load.
        for files in self.splits.values():
            for file in files:
                if file not in self.checksums:
                    raise ValueError(f"file {file!r} has no checksum")
        return self


@cache
def registry() -> dict[str, DatasetSpec]:
    """All registry entries by name, validated once."""
    text = resources.files("fogsim.data").joinpath("registry.yaml").read_text()
    raw = yaml.safe_load(text)
    try:
        return {name: DatasetSpec(name=name, **entry) for name, entry in raw.items()}
    except ValidationError as exc:
        raise UserInputError(f"fogsim/data/registry.yaml is invalid:\n{exc}") from exc


def known_datasets() -> list[str]:
    """Names of the datasets fogsim knows how to find and download, sorted."""
    return sorted(registry())


def spec_for(name: str) -> DatasetSpec | None:
    """The registry entry for NAME, or None for a dataset the registry does not know."""
    return registry().get(name)


def check_split(split: str) -> Split:
    """SPLIT itself when it is a known split; a UserInputError otherwise."""
    if split not in SPLITS:
        raise UserInputError(f"unknown split {split!r}; use one of: {', '.join(SPLITS)}")
    return split  # type: ignore[return-value]

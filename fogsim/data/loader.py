"""Loading a split into a ``Dataset``: resolve where it is, read its layout, fingerprint it."""

from __future__ import annotations

import os
from pathlib import Path

from fogsim.data import cache
from fogsim.data.checksums import file_digest
from fogsim.data.cifar import load_cifar_dir, load_cifar_tar
from fogsim.data.dataset import Dataset, Loaded, fingerprint
from fogsim.data.idx import load_idx
from fogsim.data.imagefolder import load_imagefolder, load_zip
from fogsim.data.layout import Source
from fogsim.data.registry import DatasetSpec, check_split, spec_for
from fogsim.data.resolve import find_source
from fogsim.errors import UserInputError


def load_dataset(
    name: str | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    split: str = "test",
    progress: bool = False,
    cache_decoded: bool = True,
) -> Dataset:
    """SPLIT of dataset NAME, or of the data at PATH (then NAME, if given, only labels it).

    ``cache_decoded`` keeps decoded arrays of image zips in the user cache.
    """
    split = check_split(split)
    source = find_source(name, path, split, download=True, progress=progress)
    spec = spec_for(name) if name else None
    loaded, digest = _read(source, split, spec, progress=progress, cache_decoded=cache_decoded)
    if spec is not None and spec.classes is not None and loaded.classes != spec.classes:
        raise UserInputError(
            f"{source.path}: its classes {list(loaded.classes)} are not {name}'s "
            f"{list(spec.classes)} (in label order); is this the right dataset?"
        )
    return Dataset(
        name=name or _stem(Path(path)),  # type: ignore[arg-type]
        split=split,
        images=loaded.images,
        labels=loaded.labels,
        classes=loaded.classes,
        fingerprint=digest,
        source=f"{source.path} ({source.kind})",
    )


def resolve_dataset(
    name: str | None, path: str | os.PathLike[str] | None = None, *, split: str = "test"
) -> Path:
    """The file or folder SPLIT would load from, without downloading or reading it."""
    return find_source(name, path, check_split(split), download=False).path


def _read(
    source: Source, split: str, spec: DatasetSpec | None, *, progress: bool, cache_decoded: bool
) -> tuple[Loaded, str]:
    if source.kind == "zip":
        return _read_zip(source.path, split, spec, progress, cache_decoded)
    if source.kind == "idx":
        loaded = load_idx(source.path, split, spec.classes if spec else None)
    elif source.kind == "cifar-dir":
        loaded = load_cifar_dir(source.path, split)
    elif source.kind == "cifar-tar":
        loaded = load_cifar_tar(source.path, split)
    else:
        loaded = load_imagefolder(source.path, progress=progress)
    return loaded, fingerprint(loaded.images, loaded.labels)


def _read_zip(
    archive: Path, split: str, spec: DatasetSpec | None, progress: bool, cache_decoded: bool
) -> tuple[Loaded, str]:
    # The content hash is both the cache key and, for known archives, an integrity check.
    sha256 = file_digest(archive)
    expected = spec.checksums.get(archive.name) if spec else None
    if expected is not None and expected.sha256 and expected.sha256 != sha256:
        raise UserInputError(
            f"{archive}: sha256 is {sha256}, expected {expected.sha256} for {spec.name}'s "  # type: ignore[union-attr]
            f"{archive.name} (corrupt, truncated or a different file). Provision it again "
            f"(`make data`)."
        )

    def decode() -> Loaded:
        return load_zip(archive, split, progress=progress)

    if cache_decoded:
        return cache.load_cached(sha256, split, decode)
    loaded = decode()
    return loaded, fingerprint(loaded.images, loaded.labels)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".tar.gz", ".tgz", ".tar", ".zip"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name

"""Finding a dataset by name: explicit path, $FOGSIM_DATA_DIR, user cache, system, download."""

from __future__ import annotations

import os
from pathlib import Path

from fogsim.data import locations
from fogsim.data.download import DownloadFailed, download_split
from fogsim.data.layout import Source, find_in_directory, layouts_help, source_for_path
from fogsim.data.registry import DatasetSpec, known_datasets, spec_for
from fogsim.errors import DatasetNotFoundError, UserInputError


def search_places(name: str) -> list[tuple[str, Path | None]]:
    """Where NAME is looked for, in order: (label, folder or None when not configured)."""
    data_dir = os.environ.get(locations.DATA_DIR_ENV)
    return [
        (f"${locations.DATA_DIR_ENV}/{name}", Path(data_dir) / name if data_dir else None),
        ("user cache", locations.dataset_cache_dir() / name),
        ("system datasets", locations.SYSTEM_DIR / name),
    ]


def find_source(
    name: str | None,
    path: str | os.PathLike[str] | None,
    split: str,
    *,
    download: bool,
    progress: bool = False,
) -> Source:
    """The SPLIT of a dataset given by PATH, or else found by NAME (downloading if allowed)."""
    if path is not None:
        return source_for_path(Path(path), split)
    if not name:
        raise UserInputError("give a dataset name or a path to load")
    _check_name(name)
    report: list[str] = []
    for label, folder in search_places(name):
        found, why = _look(folder, split)
        if found is not None:
            return found
        report.append(f"{label}: {why}" if folder is None else f"{label} ({folder}): {why}")
    spec = spec_for(name)
    found, why = _try_download(spec, name, split, download=download, progress=progress)
    if found is not None:
        return found
    report.append(f"download: {why}")
    raise DatasetNotFoundError(_not_found_message(name, split, spec, report))


def _look(folder: Path | None, split: str) -> tuple[Source | None, str]:
    if folder is None:
        return None, f"{locations.DATA_DIR_ENV} is not set"
    if not folder.is_dir():
        return None, "does not exist"
    found = find_in_directory(folder, split)
    if found is not None:
        return found, ""
    broken = sorted(p for p in folder.iterdir() if p.is_symlink() and not p.exists())
    if broken:
        # A link into a folder that moved (a re-mounted share, another checkout).
        links = ", ".join(f"{p.name} -> {os.readlink(p)}" for p in broken)
        return None, (
            f"exists, but its link(s) point at nothing: {links}; remove them and provision "
            "the dataset again (`make data` copies the files in)"
        )
    return None, f"exists, but holds no {split} split in a layout fogsim reads"


def _try_download(
    spec: DatasetSpec | None, name: str, split: str, *, download: bool, progress: bool
) -> tuple[Source | None, str]:
    if spec is None:
        return None, f"{name!r} is not in the registry, so there is nothing to download"
    url = spec.url + ", ".join(spec.splits[split])  # type: ignore[index]
    if locations.offline():
        return None, f"disabled ({locations.OFFLINE_ENV} is set); would fetch {url}"
    if not download:
        return None, f"not attempted; loading would fetch {url}"
    dest = locations.dataset_cache_dir() / name
    try:
        download_split(spec, split, dest, progress=progress)
    except DownloadFailed as exc:
        return None, str(exc)
    found = find_in_directory(dest, split)
    return found, f"downloaded into {dest}, but no {split} split is readable there"


def _not_found_message(
    name: str, split: str, spec: DatasetSpec | None, report: list[str]
) -> str:
    lines = [f"dataset {name!r} ({split} split) not found. Looked in, in order:"]
    lines += [f"  {i}. {line}" for i, line in enumerate(report, start=1)]
    ways = [spec.install] if spec is not None and spec.install else []
    if spec is not None:
        files = ", ".join(spec.splits[split])  # type: ignore[index]
        ways.append(f"put {files} in ${locations.DATA_DIR_ENV}/{name}/")
        ways.append(f"allow the download (network access, {locations.OFFLINE_ENV} unset)")
    else:
        ways.append(f"put it in ${locations.DATA_DIR_ENV}/{name}/ as {layouts_help(split)}")
    lines.append("To get it: " + "; or ".join(ways) + ".")
    if spec is None:
        lines.append(f"Known datasets: {', '.join(known_datasets())}.")
    return "\n".join(lines)


def _check_name(name: str) -> None:
    # A name is a folder name in each place; a path in it would escape those places.
    if "/" in name or "\\" in name or name in {".", ".."}:
        raise UserInputError(
            f"dataset name {name!r} looks like a path; pass it as path= (or --path) instead"
        )

"""Official downloads into the user cache, verified against the registry's checksums."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from tqdm import tqdm

from fogsim.data.checksums import verify_file
from fogsim.data.registry import DatasetSpec
from fogsim.errors import UserInputError

TIMEOUT_S = 30.0


class DownloadFailed(Exception):
    """A download that could not be made or verified; the message says which and why."""


def download_split(spec: DatasetSpec, split: str, dest: Path, progress: bool = False) -> None:
    """Fetch the official files of SPLIT into DEST, each verified before it is kept."""
    for file in spec.splits[split]:  # type: ignore[index]
        target = dest / file
        if not target.is_file():
            fetch(spec.url + file, target, spec, progress)


def fetch(url: str, target: Path, spec: DatasetSpec, progress: bool) -> None:
    """Download URL to TARGET through a ``.part`` file that is renamed only once verified."""
    part = target.with_name(target.name + ".part")
    try:
        with urlopen(url, timeout=TIMEOUT_S) as response:
            target.parent.mkdir(parents=True, exist_ok=True)
            size = response.headers.get("Content-Length")
            with part.open("wb") as out, tqdm(
                total=int(size) if size else None, unit="B", unit_scale=True, desc=target.name,
                disable=not progress, delay=1,
            ) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        reason = exc.reason if isinstance(exc, URLError) else exc
        raise DownloadFailed(f"downloading {url} failed: {reason}") from exc
    try:
        verify_file(part, spec.checksums[target.name], fix="The download was discarded.")
    except UserInputError as exc:
        part.unlink(missing_ok=True)
        raise DownloadFailed(str(exc)) from exc
    os.replace(part, target)

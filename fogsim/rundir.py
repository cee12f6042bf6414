"""The run directory: claimed before a run simulates, written whole at its end, read back.

A run directory ``DIR`` keeps its bookkeeping beside it, in the same folder:

- ``.DIR.lock``: locked (``flock``) by the run that writes DIR, from before it
  simulates until DIR is in place; the lock dies with its process.
- ``.DIR.staging``: where that run writes; renamed to DIR once complete.
- ``.DIR.retired``: the previous DIR, for the moment ``--overwrite`` swaps.

``DIR/complete.json`` is written last, so a directory without it is not a
finished run. A run that was killed leaves only these neighbours behind, and the
next run of the same DIR, once it holds the lock, finishes or removes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import yaml

from fogsim.errors import UserInputError
from fogsim.heap import trim
from fogsim.results import STAGES, RunResult

MARKER = "complete.json"
RUN_FILES = ("scenario.resolved.yaml", "requests.parquet", "summary.json")
_RUN_ENTRIES = {*RUN_FILES, STAGES, "figures", MARKER}


class RunClaim:
    """The exclusive right to write one run directory, checked before the run starts."""

    def __init__(self, directory: str | Path, *, overwrite: bool) -> None:
        self.directory = Path(directory)
        self.overwrite = overwrite
        # Absolute and normalised, so "-o ." and "-o runs/../x" have a name and a folder.
        self._path = Path(os.path.abspath(self.directory))
        if self._path.parent == self._path:
            raise UserInputError(f"-o {directory}: a run directory cannot be the root folder")
        name = self._path.name
        self.lock_path = self._path.with_name(f".{name}.lock")
        self.staging = self._path.with_name(f".{name}.staging")
        self.retired = self._path.with_name(f".{name}.retired")
        self._fd: int | None = None

    def __enter__(self) -> RunClaim:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Lock the directory, tidy what a killed run left, and refuse what would fail later."""
        if self._path.exists() and not self._path.is_dir():
            raise UserInputError(
                f"-o {self.directory} is a file, not a folder; give a folder for the run"
            )
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserInputError(
                f"cannot create the folder {self._path.parent} for -o {self.directory}: "
                f"{exc.strerror or exc}; choose another -o DIR"
            ) from None
        self._fd = self._lock()
        try:
            self._recover()
            self._check_existing()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self._fd is None:
            return
        # Unlinked while still locked: a run that opened this file meanwhile sees that
        # it is no longer the lock file (see _lock) and opens the new one.
        with contextlib.suppress(FileNotFoundError):
            self.lock_path.unlink()
        os.close(self._fd)
        self._fd = None

    def write(
        self,
        result: RunResult,
        *,
        figures: bool,
        stages: Callable[[int], Iterable[pd.DataFrame]] | None = None,
    ) -> Path:
        """Write the run into staging, mark it complete, then move it into place.
        ``stages`` builds a stage table that ``result`` lacks, once the rest is written:
        given a number of rows, it gives the table that many rows at a time."""
        if self._fd is None:
            raise RuntimeError("write() needs the claim to be held (use it in a with block)")
        _remove(self.staging)
        self.staging.mkdir()
        try:
            _write_files(result, self.staging, figures, stages)
            _write_marker(self.staging)
            self._check_existing()  # someone may have made it by hand meanwhile
            if self._path.exists():
                self._path.rename(self.retired)
                self.staging.rename(self._path)
                # The new run is in place; what cannot be removed now, the next run removes.
                with contextlib.suppress(OSError):
                    _remove(self.retired)
            else:
                self.staging.rename(self._path)
        except BaseException:
            _remove(self.staging)
            raise
        return self.directory

    def _lock(self) -> int:
        for _ in range(10):
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise UserInputError(
                    f"cannot write in {self._path.parent} (for -o {self.directory}): "
                    f"{exc.strerror or exc}; choose another -o DIR"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise UserInputError(
                    f"another fogsim run (process {holder}) is writing {self.directory} now; "
                    "wait for it to finish, or choose another -o DIR"
                ) from None
            if _same_file(fd, self.lock_path):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
            os.close(fd)  # its holder released it while we opened it; take the new one
        raise UserInputError(f"could not lock {self.lock_path}; is another run starting there?")

    def _recover(self) -> None:
        """Finish or remove what a killed run of this directory left (the lock is ours)."""
        if not self._path.exists() and (self.staging / MARKER).is_file():
            # Killed between moving the old run aside and moving the new one in:
            # the new one is complete, so it takes its place.
            self.staging.rename(self._path)
        _remove(self.staging)
        _remove(self.retired)
        for leftover in _older_leftovers(self._path):
            _remove(leftover)

    def _check_existing(self) -> None:
        if not self._path.is_dir() or not any(self._path.iterdir()):
            return
        if not self.overwrite:
            raise UserInputError(
                f"run directory {self.directory} already holds results; choose another with "
                "-o DIR, or pass --overwrite to replace it"
            )
        others = sorted(p.name for p in self._path.iterdir() if p.name not in _RUN_ENTRIES)
        if others:
            raise UserInputError(
                f"--overwrite replaces only a fogsim run directory, and {self.directory} "
                f"holds other things ({', '.join(others[:3])}); choose another -o DIR"
            )
        if not os.access(self._path, os.W_OK | os.X_OK):
            raise UserInputError(
                f"--overwrite cannot remove the results in {self.directory}: the folder is "
                "not writable; choose another -o DIR"
            )


def claim_run_dir(directory: str | Path, *, overwrite: bool) -> RunClaim:
    """A claim on ``directory``, to use in a ``with`` block around the run that writes it."""
    return RunClaim(directory, overwrite=overwrite)


def write_run(result: RunResult, directory: Path, *, overwrite: bool, figures: bool) -> Path:
    """Write the run directory atomically: all of it appears, or nothing changes.

    An existing non-empty directory is kept unless ``overwrite``; even then it is
    replaced only once the new run has been written in full.
    """
    with claim_run_dir(directory, overwrite=overwrite) as claim:
        return claim.write(result, figures=figures)


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _older_leftovers(path: Path) -> list[Path]:
    """Staging folders of fogsim versions before the lock: ``.DIR-xxxxxxxx``, ``.DIR-old-PID``.

    Only folders holding nothing but run files are taken for leftovers.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}-(?:[a-z0-9_]{{8}}|old-\d+)")
    return [
        entry
        for entry in path.parent.iterdir()
        if pattern.fullmatch(entry.name)
        and entry.is_dir()
        and not entry.is_symlink()
        and {child.name for child in entry.iterdir()} <= _RUN_ENTRIES
    ]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _write_files(
    result: RunResult,
    directory: Path,
    figures: bool,
    stages: Callable[[int], Iterable[pd.DataFrame]] | None = None,
) -> None:
    resolved = result.scenario.model_dump(mode="json")
    (directory / "scenario.resolved.yaml").write_text(
        yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True)
    )
    write_parquet(result.requests, directory / "requests.parquet")
    if result.stage_rows is not None:
        write_parquet(result.stage_rows, directory / STAGES)
    trim()  # Arrow's copies of the table, before the figures
    (directory / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
    if figures:
        from fogsim.plots import run_figures

        run_figures(result.requests, directory / "figures")
        trim()  # the figures' many small allocations, before the stage table's arrays
    if stages is not None:
        write_row_groups(stages(ROW_GROUP), directory / STAGES)


ROW_GROUP = 1024 * 1024
"""Rows a Parquet row group holds: pyarrow's default, so the files are the bytes
``DataFrame.to_parquet`` writes."""


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """``frame.to_parquet(path, index=False)``, the same bytes, a row group at a time: Arrow
    holds a copy of one row group, not of the whole table."""
    starts = range(0, max(len(frame), 1), ROW_GROUP)  # an empty frame: one empty group
    write_row_groups((frame.iloc[i : i + ROW_GROUP] for i in starts), path)


def write_row_groups(frames: Iterable[pd.DataFrame], path: Path) -> None:
    """Frames of ``ROW_GROUP`` rows each (the last may be shorter), written as one table of
    their schema, each its own row group: the bytes ``to_parquet`` writes of the frames
    joined, with only one of them held at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for frame in frames:
            if writer is None:
                if frame.empty:  # pyarrow writes an empty table as one empty row group
                    frame.to_parquet(path, index=False)
                    return
                schema = pa.Schema.from_pandas(frame, preserve_index=False)
                writer = pq.ParquetWriter(path, schema, compression="snappy")
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            del frame
            writer.write_table(table)
            del table
            trim()  # the row group's copies, before the next one is built
    finally:
        if writer is not None:
            writer.close()


def _write_marker(directory: Path) -> None:
    from fogsim import __version__

    written = [*RUN_FILES, *([STAGES] if (directory / STAGES).is_file() else [])]
    sizes = {name: (directory / name).stat().st_size for name in written}
    marker = {"fogsim_version": __version__, "bytes": sizes}
    (directory / MARKER).write_text(json.dumps(marker, indent=1) + "\n")


def load_run(directory: str | Path) -> RunResult:
    """Read a run directory back: scenario, requests and summary."""
    from fogsim.scenario import scenario_from_data

    directory = Path(directory)
    if not directory.is_dir():
        raise UserInputError(f"{directory} is not a fogsim run directory (no such folder)")
    for name in RUN_FILES:
        if not (directory / name).is_file():
            raise UserInputError(f"{directory} is not a fogsim run directory (no {name})")
    if not (directory / MARKER).is_file():
        raise UserInputError(
            f"{directory} is not a complete run: it has no {MARKER}, which a run writes last "
            "(the run that wrote it did not finish, or a fogsim from before that marker "
            "wrote it); run the scenario again"
        )
    data = yaml.safe_load((directory / "scenario.resolved.yaml").read_text())
    scenario = scenario_from_data(data, base_dir=directory, origin=directory)
    frame = pd.read_parquet(directory / "requests.parquet")
    summary = json.loads((directory / "summary.json").read_text())
    return RunResult(scenario, frame, summary, directory)  # its stages read when asked for

"""``fogsim profile``: time every row of a network here, and size what each cut would send.

A profile is a table, one row per operation (``graph.Row``), with the median seconds of
``repeats`` runs after a warm-up and their spread, and beside it how fast this machine
multiplies matrices and moves memory (its calibration), which the derivation model of
``timemodel`` needs to carry the times to other hardware.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from fogsim.errors import UserInputError
from fogsim.nn import codec
from fogsim.nn.quant import BITS, PRECISIONS
from fogsim.partition import graph
from fogsim.partition.networks import Network

METADATA_KEY = b"fogsim.profile"
REQUIRED = ("layer", "index", "cut_point", "macs", "params", "output_bytes", "time_s")


@dataclass(frozen=True)
class Profile:
    """One network's rows, timed on one machine, and what that machine is."""

    table: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def last(self) -> int:
        return int(self.table["index"].iloc[-1])

    def save(self, path: Path) -> None:
        arrow = pa.Table.from_pandas(self.table, preserve_index=False)
        metadata = {**(arrow.schema.metadata or {}), METADATA_KEY: json.dumps(self.meta).encode()}
        pq.write_table(arrow.replace_schema_metadata(metadata), path)


def profile(
    network: Network, *, repeats: int = 10, warmup: int = 2, progress: bool = True
) -> Profile:
    """Time each row of ``network`` here: ``warmup`` passes, then the median of ``repeats``."""
    traced = graph.trace(network.module)
    example = torch.rand(network.input_shape)
    with torch.inference_mode():
        rows = graph.rows_of(traced, example)
        bar = tqdm(
            total=len(rows) * (warmup + repeats + 1),
            desc=f"profile {network.name}",
            unit="layer",
            disable=not progress,
        )
        with bar:
            times = _times(traced, example, len(rows), warmup + repeats, bar)[:, warmup:]
            sizes = _sizes(traced, example, rows, bar)
    table = _table(rows, times, sizes)
    meta = {
        "model": network.name,
        "input_shape": list(network.input_shape),
        "repeats": repeats,
        "warmup": warmup,
        "machine": machine(),
        "calibration": calibrate(),
    }
    return Profile(table, meta)


def _times(traced, example: torch.Tensor, n_rows: int, passes: int, bar: tqdm) -> np.ndarray:
    seconds = np.zeros((n_rows, passes))
    for p in range(passes):
        for i, (_, _, elapsed) in enumerate(graph.execute(traced, example)):
            seconds[i, p] = elapsed
            bar.update()
    return seconds


def _sizes(traced, example: torch.Tensor, rows: list[graph.Row], bar: tqdm) -> dict[str, list]:
    """Bytes of each cut point's output at each precision, packed and zlib-compressed, sized
    as each row computes it (a later in-place operation may overwrite it). zlib and numpy
    release the GIL, so the sizes are counted on threads while the network runs on."""
    sizes: dict[str, list] = {f"bytes_{p}{kind}": [] for p in PRECISIONS for kind in ("", "_zlib")}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        pending = []
        for row, (_, value, _) in zip(rows, graph.execute(traced, example), strict=True):
            snapshot = value.detach().clone() if row.cut_point else None
            pending.append(
                {
                    p: pool.submit(_bytes_at, snapshot, p) if row.cut_point else None
                    for p in PRECISIONS
                }
            )
        for futures in pending:
            for precision, future in futures.items():
                raw, packed = future.result() if future is not None else (None, None)
                sizes[f"bytes_{precision}"].append(raw)
                sizes[f"bytes_{precision}_zlib"].append(packed)
            bar.update()
    return sizes


def _bytes_at(value: torch.Tensor, precision: str) -> tuple[int, int]:
    """Raw bytes of ``value`` at ``precision`` and what the codec sends of it. Below fp32 the
    tensor is first scaled onto the precision's grid by its largest magnitude."""
    raw = math.ceil(value.numel() * BITS[precision] / 8)
    features = value.detach().float().reshape(1, -1)
    if precision != "fp32":
        features = features / features.abs().max().clamp_min(1e-12)
    return raw, int(codec.compressed_sizes(features, precision)[0])


def _table(rows: list[graph.Row], times: np.ndarray, sizes: dict[str, list]) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "index": [r.index for r in rows],
            "layer": [r.layer for r in rows],
            "op": [r.op for r in rows],
            "cut_point": [r.cut_point for r in rows],
            "output_shape": [json.dumps(list(r.output_shape)) for r in rows],
            "macs": [r.macs for r in rows],
            "params": [r.params for r in rows],
            "output_bytes": [r.output_bytes for r in rows],
            "input_bytes": [r.input_bytes for r in rows],
            # What a row reads and writes once: its inputs, its output and its fp32 weights.
            "memory_bytes": [r.input_bytes + r.output_bytes + 4 * r.params for r in rows],
            "time_s": np.median(times, axis=1),
            "time_p25_s": np.percentile(times, 25, axis=1),
            "time_p75_s": np.percentile(times, 75, axis=1),
        }
    )
    table.loc[0, ["time_s", "time_p25_s", "time_p75_s"]] = 0.0  # the input computes nothing
    for name, values in sizes.items():
        table[name] = pd.array(values, dtype="Int64")
    return table


def machine() -> dict[str, Any]:
    """What the times were measured on."""
    return {
        "host": platform.node(),
        "cpu": _cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def calibrate(seconds: float = 0.3) -> dict[str, float]:
    """This machine's fp32 matrix-multiply rate (MAC/s) and memory copy rate (bytes/s, read
    plus write), each the best of runs filling about ``seconds``: the figures the derivation
    model scales from."""
    a = torch.rand(512, 512)
    b = torch.rand(512, 512)
    gemm = _best_rate(lambda: torch.mm(a, b), 512**3, seconds)
    src = torch.rand(16 * 2**20)  # 64 MiB, beyond any cache
    dst = torch.empty_like(src)
    copy = _best_rate(lambda: dst.copy_(src), 2 * src.numel() * 4, seconds)
    return {"gemm_macs_per_s": gemm, "memory_bytes_per_s": copy}


def _best_rate(work, amount: float, seconds: float) -> float:
    work()
    best = math.inf
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or best == math.inf:
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return amount / best


def load(path: Path) -> Profile:
    """Read a profile that ``fogsim profile`` wrote, or one with at least the contract's
    columns; a UserInputError names what is wrong with it."""
    if not Path(path).is_file():
        raise UserInputError(f"profile {path} does not exist; write one with `fogsim profile`")
    try:
        arrow = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UserInputError(f"{path} is not a readable parquet profile ({exc})") from None
    table = arrow.to_pandas()
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise UserInputError(
            f"profile {path} lacks column(s) {', '.join(missing)}; `fogsim profile` writes them"
        )
    if len(table) < 2 or list(table["index"]) != list(range(len(table))):
        raise UserInputError(f"profile {path}: rows must be indexed 0, 1, 2, ... in order")
    if not table["cut_point"].iloc[0] or not table["cut_point"].iloc[-1]:
        raise UserInputError(f"profile {path}: its first and last rows must be cut points")
    raw = (arrow.schema.metadata or {}).get(METADATA_KEY)
    return Profile(table, json.loads(raw) if raw else {})

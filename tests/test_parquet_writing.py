"""Run files are written a row group at a time, with the bytes ``to_parquet`` writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fogsim.rundir import ROW_GROUP, write_parquet


@pytest.mark.parametrize("rows", [0, 7, ROW_GROUP + 3])
def test_written_by_row_groups_the_file_is_the_one_to_parquet_writes(
    tmp_path: Path, rows: int
) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "request": np.arange(rows, dtype=np.int32),
            "t_s": rng.random(rows),
            "tier": pd.Categorical.from_codes(rng.integers(0, 3, rows), ["device", "fog", "cloud"]),
            "gateway": pd.Categorical.from_codes(rng.integers(0, 2, rows), ["a", "b"]),
        }
    )
    frame.to_parquet(tmp_path / "whole.parquet", index=False)
    write_parquet(frame, tmp_path / "chunked.parquet")
    assert (tmp_path / "chunked.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    if rows:  # (an empty categorical reads back without its categories, either way)
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "chunked.parquet"), frame)

"""scripts/cifar_jpeg_quality.py reads how a zip of JPEGs was encoded."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "cifar_jpeg_quality.py"


def _zip(path: Path, quality: int, subsampling: int, n: int = 3) -> None:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as z:
        for i in range(n):
            buf = io.BytesIO()
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(buf, "JPEG", quality=quality, subsampling=subsampling)
            z.writestr(f"test/cat/{i:04d}.jpg", buf.getvalue())


def test_it_names_the_quality_and_the_subsampling(tmp_path):
    _zip(tmp_path / "a.zip", 75, 2)
    _zip(tmp_path / "b.zip", 40, 0, n=2)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "a.zip"), str(tmp_path / "b.zip")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert "3 images; IJG quality {75: 3}; chroma {'4:2:0': 3}" in out[0]
    assert "against 3072 raw" in out[0]
    assert "2 images; IJG quality {40: 2}; chroma {'4:4:4': 2}" in out[1]


def test_a_missing_zip_is_named(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "none.zip")], capture_output=True, text=True
    )
    assert done.returncode == 1 and "none.zip: no such file" in done.stderr

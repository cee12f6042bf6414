"""How a JPEG copy of an image dataset was encoded: the IJG quality whose luminance table
every image carries, the chroma subsampling, and the mean size against the raw pixels.

    python scripts/cifar_jpeg_quality.py [ZIP ...]   (default: the CIFAR-10 zips in the
                                                      user cache, as `make data` links them)
"""

from __future__ import annotations

import collections
import functools
import io
import sys
import zipfile
from pathlib import Path

from PIL import Image, JpegImagePlugin

from fogsim.data.locations import dataset_cache_dir

# The JPEG standard's (ITU T.81, Annex K) luminance table, row by row as Pillow gives it.
_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]  # fmt: skip
_SAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


@functools.cache
def ijg_quality(table: tuple[int, ...]) -> int | None:
    """The IJG quality (1-100) whose scaled standard table is ``table``, or None."""
    for q in range(1, 101):
        scale = 5000 // q if q < 50 else 200 - 2 * q
        if tuple(min(max((v * scale + 50) // 100, 1), 255) for v in _LUMA) == table:
            return q
    return None


def describe(path: Path) -> str:
    qualities, sampling, sizes, pixels = collections.Counter(), collections.Counter(), [], 0
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if not name.lower().endswith((".jpg", ".jpeg")):
                continue
            data = z.read(name)
            image = Image.open(io.BytesIO(data))
            qualities[ijg_quality(tuple(image.quantization[0]))] += 1
            sampling[_SAMPLING.get(JpegImagePlugin.get_sampling(image), "other")] += 1
            sizes.append(len(data))
            pixels = image.width * image.height * len(image.getbands())
    if not sizes:
        return f"{path}: no JPEG images"
    mean = sum(sizes) / len(sizes)
    return (
        f"{path}: {len(sizes)} images; IJG quality {dict(qualities)}; chroma {dict(sampling)}; "
        f"mean {mean:.0f} bytes against {pixels} raw ({pixels / mean:.1f}x smaller)"
    )


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(
        (dataset_cache_dir() / "cifar10").glob("*.zip")
    )
    if not paths:
        sys.exit("no zips given and none in the cache's cifar10 folder; run `make data` first")
    for path in paths:
        if not path.is_file():
            sys.exit(f"{path}: no such file")
        print(describe(path))


if __name__ == "__main__":
    main()

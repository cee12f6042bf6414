"""Writers of tiny datasets in every layout fogsim reads, for the data-layer tests."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point every place fogsim looks at empty folders under TMP_PATH; disable downloads."""
    import fogsim.data.locations as locations

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("FOGSIM_OFFLINE", "1")
    monkeypatch.delenv("FOGSIM_DATA_DIR", raising=False)
    monkeypatch.setattr(locations, "SYSTEM_DIR", tmp_path / "system")
    return tmp_path


def images_for(labels: np.ndarray, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Random uint8 images, one per label, of SHAPE each."""
    return np.random.default_rng(seed).integers(0, 256, (len(labels), *shape), dtype=np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    """ARRAY (uint8) encoded as an IDX file."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(directory: Path, split: str, images: np.ndarray, labels: np.ndarray,
              gz: bool = True) -> None:
    """Write the images (N, H, W) and labels of SPLIT as MNIST-named IDX files."""
    prefix = "t10k" if split == "test" else "train"
    directory.mkdir(parents=True, exist_ok=True)
    for kind, ndim, array in (("images", 3, images), ("labels", 1, labels)):
        data = idx_bytes(array)
        name = f"{prefix}-{kind}-idx{ndim}-ubyte"
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)


def cifar_row_major(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) images as CIFAR's channel-major (N, 3072) rows."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def cifar10_files(batches: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, bytes]:
    """Pickled CIFAR-10 files (batches.meta plus each named batch), as the official ones."""
    files = {"batches.meta": pickle.dumps({"label_names": list(CIFAR10_CLASSES)}, protocol=2)}
    for name, (images, labels) in batches.items():
        batch = {"data": cifar_row_major(images), "labels": [int(x) for x in labels]}
        files[name] = pickle.dumps(batch, protocol=2)
    return files


def cifar100_files(splits: dict[str, tuple[np.ndarray, np.ndarray]],
                   classes: list[str]) -> dict[str, bytes]:
    """Pickled CIFAR-100 files (meta plus train/test with fine and coarse labels)."""
    files = {"meta": pickle.dumps({"fine_label_names": classes,
                                   "coarse_label_names": ["c0"]}, protocol=2)}
    for name, (images, labels) in splits.items():
        batch = {"data": cifar_row_major(images), "fine_labels": [int(x) for x in labels],
                 "coarse_labels": [0] * len(labels)}
        files[name] = pickle.dumps(batch, protocol=2)
    return files


def write_dir(directory: Path, files: dict[str, bytes]) -> Path:
    """Write FILES (name to bytes) into DIRECTORY."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


def write_tar(archive: Path, top: str, files: dict[str, bytes]) -> Path:
    """A tar.gz holding FILES under the folder TOP, as the official CIFAR archives do."""
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def png_bytes(pixels: np.ndarray) -> bytes:
    """PIXELS ((H, W) grayscale or (H, W, 3) colour) as a PNG, which is lossless."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def imagefolder_files(classes: dict[str, list[np.ndarray]]) -> dict[str, bytes]:
    """``<class>/<NNNN>.png`` names to PNG bytes."""
    return {f"{cls}/{i:04d}.png": png_bytes(px)
            for cls, images in classes.items() for i, px in enumerate(images)}


def write_imagefolder(directory: Path, files: dict[str, bytes]) -> Path:
    """Write an ImageFolder (names from ``imagefolder_files``) under DIRECTORY."""
    for name, data in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    return directory


def write_zip(archive: Path, files: dict[str, bytes], prefix: str = "") -> Path:
    """A zip of FILES, each under PREFIX (e.g. ``test/``), with folder entries as zip tools add."""
    with zipfile.ZipFile(archive, "w") as zf:
        if prefix:
            zf.writestr(prefix, b"")
        for name, data in files.items():
            zf.writestr(prefix + name, data)
    return archive

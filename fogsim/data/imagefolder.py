"""ImageFolder datasets (one folder per class), as a directory or inside a zip archive."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from fogsim.data.dataset import Loaded
from fogsim.errors import UserInputError

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}
)
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


def is_image_name(name: str) -> bool:
    """Whether NAME is an image file by its suffix (hidden files are not)."""
    return not name.startswith(".") and PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def is_imagefolder(directory: Path) -> bool:
    """Whether DIRECTORY has at least one class folder holding an image."""
    return any(
        sub.is_dir() and any(is_image_name(f.name) for f in sub.iterdir())
        for sub in directory.iterdir()
    )


def load_imagefolder(directory: Path, progress: bool = False) -> Loaded:
    """Images of DIRECTORY/<class>/<file>: classes sorted by name, files sorted in a class."""
    folders = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    entries = [
        (folder.name, path)
        for folder in folders
        for path in sorted(folder.iterdir(), key=lambda p: p.name)
        if path.is_file() and is_image_name(path.name)
    ]
    members = [(cls, str(path)) for cls, path in entries]
    classes = tuple(f.name for f in folders)
    return _decode_all(members, classes, lambda name: Path(name).read_bytes(), directory, progress)


def load_zip(archive: Path, split: str, progress: bool = False) -> Loaded:
    """Images of a zip holding ``<split>/<class>/<file>``, or ``<class>/<file>`` at its top."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
            members, classes = _zip_members(names, split, archive)
            return _decode_all(members, classes, zf.read, archive, progress)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise UserInputError(
            f"{archive}: corrupt zip archive ({exc}). Provision it again (`make data`)."
        ) from exc


def _zip_members(
    names: list[str], split: str, archive: Path
) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """(class, member) pairs in load order, and the sorted class names."""
    parts = [PurePosixPath(n).parts for n in names if is_image_name(PurePosixPath(n).name)]
    chosen = [p for p in parts if len(p) == 3 and p[0] == split]
    if not chosen:
        # A zip of one split may put its class folders at the top.
        chosen = [("", *p) for p in parts if len(p) == 2]
    if not chosen:
        raise UserInputError(
            f"{archive}: no class folders with images inside (expected "
            f"{split}/<class>/<image> or <class>/<image>). Rebuild the zip in the "
            f"ImageFolder layout, or provision it again (`make data`)."
        )
    chosen.sort(key=lambda p: (p[1], p[2]))
    members = [
        (cls, f"{top}/{cls}/{file}" if top else f"{cls}/{file}") for top, cls, file in chosen
    ]
    return members, tuple(sorted({cls for cls, _ in members}))


def _decode_all(
    members: Sequence[tuple[str, str]],
    classes: tuple[str, ...],
    read: Callable[[str], bytes],
    where: Path,
    progress: bool,
) -> Loaded:
    if not members:
        raise UserInputError(
            f"{where}: no class folders with images (expected <class>/<image> files)."
        )
    empty = sorted(set(classes) - {cls for cls, _ in members})
    if empty:
        # An empty class would silently shift every later label index, so refuse it.
        raise UserInputError(f"{where}: class folder(s) with no images: {', '.join(empty)}.")
    first = _decode(read(members[0][1]), members[0][1], where, None)
    mode = "L" if first.ndim == 2 else "RGB"
    images = np.empty((len(members), *first.shape[:2], 1 if mode == "L" else 3), np.uint8)
    index = {cls: i for i, cls in enumerate(classes)}
    labels = np.fromiter((index[cls] for cls, _ in members), np.int64, len(members))
    # Decoding runs in one thread: measured on CIFAR-10's 32x32 JPEGs, a thread pool
    # was slower (0.86 s serial, 1.24 s with 2 threads), the per-image work being tiny.
    bar = tqdm(members, desc=f"decoding {where.name}", unit="img", disable=not progress, delay=1)
    for i, (_, name) in enumerate(bar):
        pixels = _decode(read(name), name, where, mode)
        if pixels.shape[:2] != images.shape[1:3]:
            raise UserInputError(
                f"{where}: {name} is {pixels.shape[1]}x{pixels.shape[0]}, but the first image is "
                f"{images.shape[2]}x{images.shape[1]}; every image must have the same size."
            )
        images[i] = pixels.reshape(images.shape[1:])
    return Loaded(images, labels, classes)


def _decode(data: bytes, name: str, where: Path, mode: str | None) -> np.ndarray:
    """Pixels of one encoded image: 2-D for grayscale, (H, W, 3) for colour."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            target = mode or ("L" if img.mode in _GRAY_MODES else "RGB")
            if target == "L" and img.mode not in _GRAY_MODES:
                raise UserInputError(
                    f"{where}: {name} is a colour image, but the first image is grayscale; "
                    f"a dataset must be all grayscale or all colour."
                )
            if img.mode != target:
                img = img.convert(target)
            return np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UserInputError(f"{where}: cannot decode image {name} ({exc}).") from exc

"""The process's heap: large arrays freed during a run go back to the system at once.

glibc serves an allocation above its mmap threshold with a mapping of its own, returned
on free; but each such free raises the threshold (up to 32 MiB), after which arrays of
that size come from the heap and stay in the process once freed. A run allocates and
frees many arrays of a few MiB to a few hundred, so its peak would count arrays long
gone. Fixing the threshold at glibc's default keeps it from rising.

Only the commands that simulate (run, sweep, optimize, partition --simulate) fix it. Torch
commands (train, eval, profile) do the opposite (``reuse_freed_memory``): a training step
allocates and frees tensors of a few MiB by the dozen, and each one mapped afresh is faulted
in page by page. A 30-step CIFAR-10 int4 `fogsim train` on 1 thread spent 91 s in the kernel
(222 s wall) with the threshold fixed, 38 s (138 s) under glibc's defaults, and 3 s (81 s)
with the heap kept.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

# mallopt's parameter numbers in glibc's malloc.h
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
THRESHOLD_BYTES = 128 * 1024  # glibc's initial threshold
# For torch work: glibc's largest mmap threshold (on 64-bit), so tensors up to 32 MiB come
# from the heap; freed memory stays in it up to 4 GiB, and it grows 256 MiB at a time.
TENSOR_MMAP_THRESHOLD = 32 * 1024 * 1024
TENSOR_TRIM_THRESHOLD = 4 * 1024**3
TENSOR_TOP_PAD = 256 * 1024 * 1024


def _glibc(name: str) -> Callable[..., int] | None:
    """glibc's function ``name``, or None where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return getattr(libc, name)
    except (OSError, AttributeError):
        return None


def return_freed_memory() -> bool:
    """Keep glibc's mmap threshold fixed; False where the C library is not glibc."""
    mallopt = _glibc("mallopt")
    return mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))


def reuse_freed_memory() -> bool:
    """For torch commands: keep freed tensors' memory in the heap for the next step's, so
    that it is not faulted in afresh, page by page, each time; False where the C library is
    not glibc. A 30-step CIFAR-10 int4 `fogsim train` on 1 thread: 38 s of system time and
    138 s wall under glibc's defaults, 3 s and 81 s so."""
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    settings = (
        (M_MMAP_THRESHOLD, TENSOR_MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TENSOR_TRIM_THRESHOLD),
        (M_TOP_PAD, TENSOR_TOP_PAD),
    )
    return all(bool(mallopt(param, value)) for param, value in settings)


def trim() -> bool:
    """Give free memory back to the system now: Arrow's pool's (Parquet writing) and the
    heap's free pages (glibc's malloc_trim), after a phase of many small allocations
    (figures, group-bys) whose holes would otherwise stay in the process under the arrays
    allocated next. False where the C library is not glibc."""
    import pyarrow

    pyarrow.default_memory_pool().release_unused()
    malloc_trim = _glibc("malloc_trim")
    return malloc_trim is not None and bool(malloc_trim(0))

"""The process's heap: large arrays freed during a run go back to the system at once.

glibc serves an allocation above its mmap threshold with a mapping of its own, returned
on free; but each such free raises the threshold (up to 32 MiB), after which arrays of
that size come from the heap and stay in the process once freed. A run allocates and
frees many arrays of a few MiB to a few hundred, so its peak would count arrays long
gone. Fixing the threshold at glibc's default keeps it from rising.

Only the commands that simulate (run, sweep, optimize, partition --simulate) fix it. Torch
commands must not: a training step allocates and frees tensors of a few MiB by the dozen,
and with the threshold fixed each is mapped, faulted in page by page and unmapped again;
`fogsim train` spent 38% of its CPU time in the kernel so (a 30-step CIFAR-10 int4 run:
91 s system time against 40 s without).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h
THRESHOLD_BYTES = 128 * 1024  # glibc's initial threshold


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


def trim() -> bool:
    """Give free memory back to the system now: Arrow's pool's (Parquet writing) and the
    heap's free pages (glibc's malloc_trim), after a phase of many small allocations
    (figures, group-bys) whose holes would otherwise stay in the process under the arrays
    allocated next. False where the C library is not glibc."""
    import pyarrow

    pyarrow.default_memory_pool().release_unused()
    malloc_trim = _glibc("malloc_trim")
    return malloc_trim is not None and bool(malloc_trim(0))

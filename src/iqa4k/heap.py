"""Freed memory kept for reuse, process-wide, where iqa4k owns the process (glibc only).

glibc hands every block above its mmap threshold (which it adapts up to 32 MB) back to the
system when it is freed, and the next block of that size is faulted in again page by page. A
metric at 4K allocates and frees arrays of 30-130 MB per image, so scoring pays for fresh
pages again and again. With the thresholds below, such blocks are reused instead:
``benchmarks/heap.py`` times NRQM's features and SSIM at 4K both ways, side by side
(BENCHMARKS.md). The cost: the process keeps up to :data:`TRIM_THRESHOLD` of freed memory
at the top of its heap instead of returning it. Scores stay the same bits (torch aligns every
tensor to 64 bytes wherever its memory comes from; ``tests/test_heap.py`` checks SSIM and
NIQE, whose NumPy arrays are not so aligned).

The ``iqa4k`` command and the Ray workers call :func:`keep_freed_memory` first thing; in your
own program, call it yourself if the trade suits you.
"""

from __future__ import annotations

import ctypes
import platform

MMAP_THRESHOLD = 256 << 20  # blocks up to this size come from the heap and are reused
TRIM_THRESHOLD = 1 << 30  # free memory kept at the top of the heap
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_memory() -> bool:
    """Set glibc's thresholds so freed large blocks are reused; False (nothing done) where the
    C library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )

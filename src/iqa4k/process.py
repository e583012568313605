"""Process-wide settings iqa4k makes where it owns the process: the ``iqa4k`` command and the
Ray workers call :func:`tune_process` first thing. In your own program, call it (or either
setting alone) yourself if the trade suits you.

**Subnormal floats treated as zero** (:func:`flush_subnormals`). A product with a subnormal
number (below 2^-126 in float32) takes a slow microcode path on x86 unless the CPU is told to
flush them (FTZ/DAZ), which is not the default. Deep networks make them: GELU of an input below
about -13, softmax of masked logits, layers of small weights. ``benchmarks/subnormals.py``
times MaxIQA's network both ways (BENCHMARKS.md). Flushing cannot change a float32 result of
normal magnitude (a subnormal term is below half an ulp of any sum above 2^-102), and
``tests/test_subnormals.py`` checks that scores are the same bits either way. The setting is
per thread and copied into threads when they are created, so it must be made before torch
starts its thread pool.

**Freed memory kept for reuse** (:func:`keep_freed_memory`, glibc only). glibc hands every
block above its mmap threshold (which it adapts up to 32 MB) back to the system when it is
freed, and the next block of that size is faulted in again page by page. A metric at 4K
allocates and frees arrays of 30-130 MB per image, so scoring pays for fresh pages again and
again. With the thresholds below such blocks are reused instead: ``benchmarks/heap.py`` times
NRQM's features and SSIM at 4K both ways, side by side (BENCHMARKS.md). The cost: the process
keeps up to :data:`TRIM_THRESHOLD` of freed memory at the top of its heap instead of returning
it. Scores stay the same bits (torch aligns every tensor to 64 bytes wherever its memory comes
from; ``tests/test_heap.py`` checks SSIM and NIQE, whose NumPy arrays are not so aligned).
"""

from __future__ import annotations

import ctypes
import platform

import torch

MMAP_THRESHOLD = 256 << 20  # blocks up to this size come from the heap and are reused
TRIM_THRESHOLD = 1 << 30  # free memory kept at the top of the heap
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def tune_process() -> None:
    """Both settings below, as the ``iqa4k`` command and the Ray workers make them."""
    flush_subnormals()
    keep_freed_memory()


def flush_subnormals() -> bool:
    """Treat subnormal floats as zero in this thread and the threads it creates from now on;
    False where the CPU has no such mode."""
    return torch.set_flush_denormal(True)


def keep_freed_memory() -> bool:
    """Set glibc's thresholds so freed large blocks are reused; False (nothing done) where the
    C library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )

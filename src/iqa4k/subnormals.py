"""Subnormal floats treated as zero, process-wide, where iqa4k owns the process.

A product with a subnormal number (below 2^-126 in float32) takes a slow microcode path on x86
unless the CPU is told to flush them (FTZ/DAZ), which is not the default. Deep networks make
them: GELU of an input below about -13, softmax of masked logits, layers of small weights.
``benchmarks/subnormals.py`` times MaxIQA's network both ways (BENCHMARKS.md). Flushing
cannot change a float32 result of normal magnitude (a subnormal term is below half an ulp of
any sum above 2^-102), and ``tests/test_subnormals.py`` checks that scores are the same bits
either way.

The setting is per thread and copied into threads when they are created, so it must be made
before torch starts its thread pool: the ``iqa4k`` command and the Ray workers call
:func:`flush_subnormals` first thing. In your own program, call it (or
``torch.set_flush_denormal(True)``) before any other torch work.
"""

from __future__ import annotations

import torch


def flush_subnormals() -> bool:
    """Treat subnormal floats as zero in this thread and the threads it creates from now on;
    False where the CPU has no such mode."""
    return torch.set_flush_denormal(True)

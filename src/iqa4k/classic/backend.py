"""When the CPU fast paths may replace the torch ones, and how they use the cores.

The classical metrics have two implementations of their heavy steps: torch (differentiable,
any device) and a CPU-inference one (NumPy, OpenCV, or torch operations in a fixed order:
the plain separable filter, imresize's sparse products, area resampling) for CPU
inference; the tests compare both paths. The CPU paths split their
work into independent items (bands of rows, strips) run on :data:`THREADS` threads: OpenCV
and NumPy release the GIL, and each item's numbers do not depend on which thread runs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import torch

THREADS = max(1, min(2, os.cpu_count() or 1))


def cpu_inference(*tensors: torch.Tensor) -> bool:
    """True when the tensors are on the CPU and no gradient is wanted."""
    on_cpu = all(t.device.type == "cpu" for t in tensors)
    return on_cpu and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


def parallel_map(fn: Callable, items: Iterable) -> list:
    """``[fn(i) for i in items]``, in that order, on :data:`THREADS` threads."""
    items = list(items)
    if THREADS == 1 or len(items) < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(fn, items))

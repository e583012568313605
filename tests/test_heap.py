"""Keeping freed memory for reuse (iqa4k.process) changes no score: a process that sets glibc's
thresholds gives the same bits as one that does not, for a metric that allocates and frees
arrays above glibc's default mmap threshold."""

from __future__ import annotations

import platform

import pytest

from .conftest import python_words

_CHILD = r"""
import sys, torch, iqa4k
if sys.argv[1] == "kept":
    from iqa4k.process import keep_freed_memory
    assert keep_freed_memory()
g = torch.Generator().manual_seed(0)
ref = torch.rand(1, 3, 1200, 1600, generator=g)
dist = (ref + 0.05 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
for name in ("ssim", "niqe"):
    metric = iqa4k.create_metric(name)
    scores = [metric(dist, ref) if name == "ssim" else metric(dist) for _ in range(2)]
    print(*(s.item().hex() for s in scores))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_scores_are_the_same_bits_with_freed_memory_kept():
    default, kept = python_words(_CHILD, "default"), python_words(_CHILD, "kept")
    assert default == kept and len(default) == 4

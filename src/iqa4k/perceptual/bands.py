"""Exact row bands for convolutional feature extractors.

A 4K image through VGG16 needs about 10 GB at once. LPIPS and DISTS only reduce each tapped
feature map to sums over its positions, so the image can go through the network in horizontal
bands: each band is read with enough rows of context above and below (the taps' reach) that
every feature row it keeps is computed from the same pixels and the same zero padding as in
the whole image, and the bands start on multiples of the network's total stride so their
sampling grids line up. The kept rows of all bands are exactly the whole image's rows, once
each; only the order of the final sums changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Reach:
    """Feature row ``j`` of a tap reads input rows ``j*stride - before .. j*stride + after``."""

    stride: int
    before: int
    after: int


def reaches(slices: Sequence[nn.Module]) -> list[Reach]:
    """The reach of the output of each module of ``slices``, applied one after the other.

    Every layer with a ``kernel_size`` (convolutions, pooling) widens it; the others are
    pointwise.
    """
    stride, lo, hi = 1, 0, 0
    out = []
    for block in slices:
        for m in block.modules():
            if hasattr(m, "kernel_size"):
                k, s, p = (_rows(getattr(m, a)) for a in ("kernel_size", "stride", "padding"))
                if _rows(getattr(m, "dilation", 1)) != 1 or getattr(m, "ceil_mode", False):
                    raise ValueError(f"{m}: dilated or ceil-mode layers are not handled")
                lo -= p * stride
                hi += (k - 1 - p) * stride
                stride *= s
        out.append(Reach(stride, -lo, hi))
    return out


def _rows(value: int | tuple[int, ...]) -> int:
    return value[0] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Band:
    """Input rows ``start:stop`` and, per tap, the feature rows ``keep[k]`` to use from them."""

    start: int
    stop: int
    keep: tuple[slice, ...]


def plan(height: int, width: int, taps: Sequence[Reach], max_pixels: int) -> list[Band]:
    """Bands of at most about ``max_pixels`` input pixels each (context included) covering an
    image ``height`` x ``width``; one band (the whole image) when it fits or ``max_pixels``
    is 0."""
    whole = [Band(0, height, tuple(slice(None) for _ in taps))]
    align = max(t.stride for t in taps)
    if any(align % t.stride for t in taps):
        raise ValueError(f"tap strides {[t.stride for t in taps]} do not divide each other")
    before = -(-max(t.before for t in taps) // align) * align
    after = max(max(t.after - t.stride + 1 for t in taps), 0)
    rows = (max_pixels // max(width, 1) - before - after) // align * align
    if max_pixels <= 0 or height * width <= max_pixels or rows >= height:
        return whole
    rows = max(rows, align)
    bands = []
    for a in range(0, height, rows):
        b = min(a + rows, height)
        last = b == height
        start = max(a - before, 0)
        keep = tuple(
            slice((a - start) // t.stride, None if last else (b - start) // t.stride) for t in taps
        )
        bands.append(Band(start, height if last else min(b + after, height), keep))
    return bands


def banded(
    extract: Callable[..., Iterable[list[torch.Tensor]]],
    images: Sequence[torch.Tensor],
    taps: Sequence[Reach],
    max_pixels: int,
) -> Iterator[tuple[int, list[torch.Tensor]]]:
    """``(k, features)`` for each band and each tap ``k``: ``extract(*image bands)`` yields
    every tap's features of each image (``[B,C,H,W]``, one size), here cut to the rows the band
    keeps."""
    height, width = images[0].shape[-2:]
    for band in plan(height, width, taps, max_pixels):
        parts = [x[..., band.start : band.stop, :] for x in images]
        for k, features in enumerate(extract(*parts)):
            yield k, [f[..., band.keep[k], :] for f in features]

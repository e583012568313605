"""Reading tensors in the order they lie in memory.

Decoding a file gives a channels-last view (``torch.from_numpy(hwc).permute(2, 0, 1)``).
Torch's kernels read such a view's channels with a stride of 3, several times slower than a
channel-first tensor at 4K. These helpers let the CPU paths read either layout in one pass,
with the same values, so a score never depends on the layout it was given.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import cv2
import numpy as np
import torch


def memory_order(x: torch.Tensor) -> torch.Tensor:
    """``x`` with its dimensions in the order they lie in memory: the same elements, which a
    reduction reads in one pass (on a channels-last view, 5x faster than in logical order)."""
    return x.permute(sorted(range(x.dim()), key=lambda d: -x.stride(d)))


def planar_rows(x: torch.Tensor, rows: int) -> Iterator[tuple[slice, Sequence[np.ndarray]]]:
    """A ``[C,H,W]`` CPU tensor ``rows`` rows at a time: ``(row slice, one contiguous array per
    channel)``. Channel planes are views; a channels-last tensor is de-interleaved band by band
    with ``cv2.split``, which stays in cache, instead of a strided gather per channel."""
    x = x.detach()
    hwc = x.permute(1, 2, 0)
    interleaved = x.shape[0] > 1 and not x[0].is_contiguous() and hwc.is_contiguous()
    for top in range(0, x.shape[1], rows):
        band = slice(top, top + rows)
        if interleaved:
            yield band, cv2.split(hwc[band].numpy())
        else:
            yield band, [plane.contiguous().numpy() for plane in x[:, band]]

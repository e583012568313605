"""Separable filters with symmetric taps, in plain IEEE arithmetic: the same bits everywhere.

OpenCV's filters pick their kernels by CPU: the order in which the taps accumulate, and
whether multiplies and adds are fused, follow the SIMD path, so the results move in the last
bits from machine to machine (SSIM with OpenCV's float32 filter: 3 float32 ulps between its
optimised and baseline paths). Here each output is ``sum_k taps[k] x_k`` with the mirrored
samples added first (``t0 (x0 + x2r) + ... + tr xr``), columns first, one elementwise
operation at a time, NumPy's or torch's (the same code): each rounds every element once,
alike on every SIMD path and thread count, so both libraries give the same bits.
"""

from __future__ import annotations

import numpy as np
import torch

# Input rows per block, by their bytes, so that the temporaries stay in cache.
_BLOCK_BYTES = 1 << 20


def valid_filter(x, taps: np.ndarray, out=None):
    """The 'valid' part of the separable filter of a 2-D NumPy array or CPU tensor: ``[h, w]
    -> [h - 2r, w - 2r]`` for ``2r + 1`` symmetric ``taps``, rounded to ``x``'s dtype.
    Written to ``out`` when given; the result has ``x``'s type."""
    xp = torch if isinstance(x, torch.Tensor) else np
    dtype = torch.empty(0, dtype=x.dtype).numpy().dtype if xp is torch else x.dtype
    taps = [float(t) for t in np.asarray(taps).astype(dtype)]  # x's precision, exactly
    if len(taps) % 2 == 0:
        raise ValueError(f"a symmetric filter needs an odd number of taps, got {len(taps)}")
    r = len(taps) // 2
    h, w = x.shape[0] - 2 * r, x.shape[1] - 2 * r
    out = xp.empty((h, w), dtype=x.dtype) if out is None else out
    block = max(1, _BLOCK_BYTES // (x.itemsize * x.shape[1]))
    cols, pair = (xp.empty((block, x.shape[1]), dtype=x.dtype) for _ in range(2))
    for top in range(0, h, block):
        n = min(block, h - top)
        rows = [x[top + k : top + k + n] for k in range(2 * r + 1)]
        c = _symmetric_pass(xp, rows, taps, cols[:n], pair[:n])
        shifted = [c[:, k : k + w] for k in range(2 * r + 1)]
        _symmetric_pass(xp, shifted, taps, out[top : top + n], pair[:n, :w])
    return out


def _symmetric_pass(xp, samples: list, taps: list[float], out, pair):
    """``out = sum_k taps[k] samples[k]``, the mirrored samples added first."""
    r, last = len(taps) // 2, len(taps) - 1
    xp.multiply(samples[r], taps[r], out=out)
    for k in range(r):
        xp.add(samples[k], samples[last - k], out=pair)
        pair *= taps[k]
        out += pair
    return out

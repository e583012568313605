"""Natural-scene statistics shared by NIQE and BRISQUE, as the LIVE MATLAB releases compute them.

- MSCN coefficients ``(I - mu) / (sigma + 1)`` on the [0, 255] scale, with the 7x7 Gaussian
  window of ``fspecial('gaussian', 7, 7/6)``. NIQE's ``computequality.m`` filters with
  ``imfilter(..., 'replicate')``; BRISQUE's ``brisque_feature.m`` with
  ``filter2(..., 'same')``, i.e. zero padding.
- Shape parameters of the generalized Gaussian (GGD, ``estimateggdparam.m``) and the
  asymmetric GGD (AGGD, ``estimateaggdparam.m``), chosen on the grid ``gam = 0.2:0.001:10``
  by the same moment-ratio lookup tables.
- Products of the coefficients with ``circshift``-ed copies of themselves (wrap-around).

Every estimator needs only five sums of its samples (:func:`signed_sums`), so the maps are
reduced in cache-sized chunks, two threads at a time; no shifted copy of the image and no
stack of all its blocks is ever made. Everything is float64 NumPy on the CPU, as MATLAB
computes it, in an order that does not depend on the machine, its SIMD path or threads.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
from scipy.special import gamma

from ..color import RGB2GRAY, RGB2Y_BT601, Y_OFFSET
from ..errors import InputError
from .backend import parallel_map
from .mscn_filter import mscn_rows
from .prepare import shave

# (row, column) shifts of the four paired products. NIQE's fourth is (1, -1) and BRISQUE's
# (-1, 1); with wrap-around both pair exactly the same samples, so one list serves both.
PAIR_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
# Columns of the [..., 5] array of signed_sums.
N_NEG, N_POS, SQ_NEG, SQ_POS, ABS = range(5)
# Samples per work item: about 400 KB of float64, so the temporaries of one item stay in
# the core's cache (measured 3-4x faster than whole-image passes at 4K).
CHUNK = 48 * 1024


@functools.cache
def shape_grid() -> dict[str, np.ndarray]:
    """``gam = 0.2:0.001:10`` and the two moment-ratio tables of the LIVE code on it.

    ``ggd``: ``gamma(1/g) gamma(3/g) / gamma(2/g)^2`` (strictly decreasing);
    ``aggd``: ``gamma(2/g)^2 / (gamma(1/g) gamma(3/g))`` (strictly increasing).
    """
    gam = np.arange(200, 10001, dtype=np.float64) / 1000.0  # each grid value correctly rounded
    aggd = gamma(2.0 / gam) ** 2 / (gamma(1.0 / gam) * gamma(3.0 / gam))
    ggd = gamma(1.0 / gam) * gamma(3.0 / gam) / gamma(2.0 / gam) ** 2
    # nearest_on_grid relies on strict monotonicity.
    assert np.all(np.diff(aggd) > 0) and np.all(np.diff(ggd) < 0)
    for table in (gam, aggd, ggd):
        table.setflags(write=False)
    return {"gam": gam, "ggd": ggd, "aggd": aggd}


def nearest_on_grid(table: np.ndarray, target: np.ndarray, squared: bool) -> np.ndarray:
    """Index of MATLAB ``min(abs(table - target))`` (``squared``: ``min((table - target).^2)``).

    ``table`` is strictly monotonic, so only the two entries around ``target`` can be
    nearest and a binary search replaces the scan of all 9801. Ties go to the lower index,
    and a NaN target gives index 0, as MATLAB's ``min`` does (an all-NaN vector's minimum is
    its first element).
    """
    target = np.asarray(target, dtype=np.float64)
    key, tgt = (table, target) if table[1] > table[0] else (-table, -target)
    hi = np.clip(np.searchsorted(key, tgt), 1, len(table) - 1)
    lo = hi - 1
    with np.errstate(invalid="ignore"):
        d_hi, d_lo = table[hi] - target, table[lo] - target
        d_hi, d_lo = (d_hi * d_hi, d_lo * d_lo) if squared else (np.abs(d_hi), np.abs(d_lo))
        index = np.where(d_hi < d_lo, hi, lo)
    return np.where(np.isnan(target), 0, index)


def signed_sums(d: np.ndarray) -> np.ndarray:
    """Counts of the negative and positive samples, their sums of squares, the sum of ``|d|``.

    One row of ``[rows, n]`` float64 per sample set: returns ``[rows, 5]`` (N_NEG ... ABS).
    NumPy's reductions along a row add in an order fixed by the row's length alone (OpenCV's
    norms add in an order that depends on the CPU's SIMD width: the last bits would too).
    """
    neg = np.minimum(d, 0.0)
    pos = d - neg  # exactly max(d, 0)
    out = np.empty((d.shape[0], 5))
    for i in range(d.shape[0]):  # counting is exact: OpenCV's SIMD count is safe and 5x faster
        out[i, N_NEG] = cv2.countNonZero(neg[i : i + 1])
        out[i, N_POS] = cv2.countNonZero(pos[i : i + 1])
    out[:, ABS] = pos.sum(axis=1) - neg.sum(axis=1)
    out[:, SQ_NEG] = np.square(neg, out=neg).sum(axis=1)
    out[:, SQ_POS] = np.square(pos, out=pos).sum(axis=1)
    return out


def ggd_fit(sums: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``[alpha, sigma] = estimateggdparam(vec)`` from the :func:`signed_sums` of ``vec``."""
    grid = shape_grid()
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma_sq = (sums[..., SQ_NEG] + sums[..., SQ_POS]) / count
        mean_abs = sums[..., ABS] / count
        rho = sigma_sq / mean_abs**2
    alpha = grid["gam"][nearest_on_grid(grid["ggd"], rho, squared=False)]
    return alpha, np.sqrt(sigma_sq)


def aggd_fit(sums: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[alpha, leftstd, rightstd] = estimateaggdparam(vec)`` from its :func:`signed_sums`.

    A side without samples has a NaN standard deviation (MATLAB's ``mean([])``); the ratio
    is then NaN and alpha falls on the first grid value, 0.2, as in MATLAB.
    """
    grid = shape_grid()
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt(sums[..., SQ_NEG] / sums[..., N_NEG])
        right = np.sqrt(sums[..., SQ_POS] / sums[..., N_POS])
        g = left / right
        mean_sq = (sums[..., SQ_NEG] + sums[..., SQ_POS]) / count
        r_hat = (sums[..., ABS] / count) ** 2 / mean_sq
        r_norm = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    alpha = grid["gam"][nearest_on_grid(grid["aggd"], r_norm, squared=True)]
    return alpha, left, right


def mscn(image: np.ndarray, padding: str) -> np.ndarray:
    """MSCN coefficients of a 2-D float64 image on the [0, 255] scale (C = 1).

    ``padding`` is ``'replicate'`` (MATLAB ``imfilter(..., 'replicate')``) or ``'zeros'``
    (``filter2(..., 'same')``). Bands of rows are filtered with a halo of 3 rows by
    :func:`~iqa4k.classic.mscn_filter.mscn_rows`, which gives the same bits on every machine
    and MATLAB's rounding where the coefficient is 0 in exact arithmetic.
    """
    image = np.ascontiguousarray(image, dtype=np.float64)
    h, w = image.shape
    out = np.empty_like(image)
    peak = max(float(image.max()), -float(image.min())) if image.size else 0.0  # no copy
    rows = max(32, CHUNK // w)  # 32 rows at 4K: measured fastest on two threads

    def band(top: int) -> None:
        bottom = min(h, top + rows)
        out[top:bottom] = mscn_rows(image, top, bottom, padding, peak)

    parallel_map(band, range(0, h, rows))
    return out


def block_products(blocks: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """Each block of ``[g, R, C]`` times its own ``circshift(block, shift)`` -> ``[g, R*C]``.

    Away from the wrapped first row / column the partner of every sample sits a fixed
    offset earlier in the flattened block, so one contiguous multiply does most of the work
    and only the wrapped row and column are redone. Shifts are (0 or 1, -1..1), not (0, 0).
    """
    g, rows, cols = blocks.shape
    dr, dc = shift
    flat = blocks.reshape(g, -1)
    out = np.empty_like(flat)
    offset = dr * cols + dc
    np.multiply(flat[:, offset:], flat[:, : flat.shape[1] - offset], out=out[:, offset:])
    p = out.reshape(g, rows, cols)
    if dr:  # the first row pairs with the last one, itself shifted by dc
        for t, src in _wrap_segments(cols, dc):
            np.multiply(blocks[:, 0, t], blocks[:, -1, src], out=p[:, 0, t])
    if dc:  # the first (dc = 1) or last (dc = -1) column pairs with the opposite one
        j = 0 if dc > 0 else cols - 1
        for t, src in _wrap_segments(rows, dr):
            np.multiply(blocks[:, t, j], blocks[:, src, (j - dc) % cols], out=p[:, t, j])
    return out


def _wrap_segments(n: int, shift: int) -> tuple[tuple[slice, slice], ...]:
    """(target, source) slice pairs along an axis of length n for ``circshift`` by ``shift``."""
    k = shift % n
    if k == 0:
        return ((slice(0, n), slice(0, n)),)
    return ((slice(k, n), slice(0, n - k)), (slice(0, k), slice(n - k, n)))


def row_products(ext: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """Rows ``ext[dr:]`` times their ``circshift`` partners, ``ext`` starting ``dr`` rows early.

    The column shift wraps around each row; the row shift is already in ``ext``. Returns the
    flattened products (same trick as :func:`block_products`).
    """
    dr, dc = shift
    w = ext.shape[1]
    flat = ext.reshape(-1)
    target = flat[dr * w :]
    out = np.empty_like(target)
    first, last = max(dc, 0), len(target) - max(-dc, 0)
    partner = flat[first - dc : last - dc]  # ext index dr*w + t - (dr*w + dc)
    np.multiply(target[first:last], partner, out=out[first:last])
    if dc:
        j = 0 if dc > 0 else w - 1
        out.reshape(-1, w)[:, j] = ext[dr:, j] * ext[: len(ext) - dr, (j - dc) % w]
    return out


def block_sums(s: np.ndarray, size: int) -> np.ndarray:
    """Sums of every ``size x size`` block of ``s`` for NIQE: ``[rows, cols, 5, 5]``.

    Axis 2 is the distribution: the coefficients themselves, then their products with
    each block's own ``circshift`` by :data:`PAIR_SHIFTS` (the wrap-around stays inside the
    block, as in ``computefeature`` called by ``blkproc``). Axis 3 is :func:`signed_sums`.
    """
    nbh, nbw = s.shape[0] // size, s.shape[1] // size
    group = max(1, min(nbw, CHUNK // (size * size)))

    def item(job: tuple[int, int]) -> np.ndarray:
        r, c = job
        cols = min(group, nbw - c)
        band = s[r * size : (r + 1) * size, c * size : (c + cols) * size]
        blocks = np.ascontiguousarray(band.reshape(size, cols, size).transpose(1, 0, 2))
        dists = [blocks.reshape(cols, -1)] + [block_products(blocks, sh) for sh in PAIR_SHIFTS]
        return np.stack([signed_sums(d) for d in dists], axis=1)

    jobs = [(r, c) for r in range(nbh) for c in range(0, nbw, group)]
    return np.concatenate(parallel_map(item, jobs)).reshape(nbh, nbw, 5, 5)


def image_sums(s: np.ndarray) -> np.ndarray:
    """Sums over the whole map for BRISQUE: ``[5, 5]`` (distribution, :func:`signed_sums`).

    The distributions are as in :func:`block_sums`, but ``circshift`` wraps around the
    whole image, as ``brisque_feature.m`` applies it.
    """
    h, w = s.shape
    rows = max(1, CHUNK // w)

    def item(top: int) -> np.ndarray:
        bottom = min(h, top + rows)
        dists = [s[top:bottom].reshape(1, -1)]
        for dr, dc in PAIR_SHIFTS:
            # The rows from top - dr (wrapping to the last rows) hold every partner.
            ext = s[top - dr : bottom] if top >= dr else np.concatenate([s[top - dr :], s[:bottom]])
            dists.append(row_products(ext, (dr, dc)).reshape(1, -1))
        return np.concatenate([signed_sums(d) for d in dists])

    return np.sum(parallel_map(item, range(0, h, rows)), axis=0)


def not_flat(plane: np.ndarray, metric: str) -> np.ndarray:
    """``plane``, or an error when it holds one grey level: its MSCN coefficients are all zero,
    so the fitted distributions (and the score) are undefined, not a number to report."""
    if plane.max() == plane.min():
        raise InputError(
            f"{metric}: the image is flat (a single grey level); its natural-scene statistics "
            "and so its score are undefined"
        )
    return plane


def luma_255(
    x: torch.Tensor, color_space: str, quantize: bool, crop_border: int
) -> list[np.ndarray]:
    """Each image of ``[B,3,H,W]`` in [0,1] as a 2-D float64 gray (or Y) plane on [0, 255].

    The arithmetic of :mod:`iqa4k.color` (same coefficients, same order), done with NumPy in
    bands of rows: no float64 copy of the RGB batch, and no small-tensor torch overhead.
    With ``quantize`` the values are the integers of MATLAB's ``uint8`` result.
    """
    if color_space not in LUMA_WEIGHTS:
        raise ValueError(f"color_space must be one of {tuple(LUMA_WEIGHTS)}, got {color_space!r}")
    weights, offset = LUMA_WEIGHTS[color_space]
    x = x.detach().cpu()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()  # half precision has no NumPy twin
    x = shave(x, crop_border)
    h, w = x.shape[-2:]
    rows = max(1, CHUNK // max(w, 1))
    planes = []
    for img in x.numpy():
        out = np.empty((h, w))

        def band(top: int, img=img, out=out) -> None:
            luma_rows(img[:, top : top + rows], color_space, quantize, out[top : top + rows])

        parallel_map(band, range(0, h, rows))
        planes.append(out)
    return planes


def luma_rows(
    rgb: np.ndarray, color_space: str, quantize: bool, out: np.ndarray | None = None
) -> np.ndarray:
    """:func:`luma_255` of a ``[3, rows, W]`` slice of one image -> ``[rows, W]`` float64.

    One IEEE multiply and add per channel (NumPy never fuses them; torch's ``add`` with
    ``alpha`` does on FMA CPUs), so the bits do not depend on the CPU.
    """
    weights, offset = LUMA_WEIGHTS[color_space]
    rgb = rgb.astype(np.float64, copy=False)
    luma = np.multiply(rgb[0], weights[0], out=out)
    luma += rgb[1] * weights[1]
    luma += rgb[2] * weights[2]
    if offset:
        luma += offset
    if quantize:  # MATLAB's uint8: round half away from zero (values >= 0), saturate
        luma += 0.5
        np.floor(luma, out=luma)
        np.minimum(luma, 255.0, out=luma)
        np.maximum(luma, 0.0, out=luma)
    return luma


# Weights on [0,1] RGB giving [0,255] luma, and offset, as iqa4k.color applies them.
LUMA_WEIGHTS = {
    "gray": (tuple(255.0 * c for c in RGB2GRAY), 0.0),
    "y": (RGB2Y_BT601, Y_OFFSET),
}

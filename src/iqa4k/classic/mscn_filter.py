"""MSCN coefficients of NIQE, BRISQUE and PIQE, rounded as MATLAB rounds them, on any machine.

``(I - mu) / (sqrt(|G*I^2 - mu^2|) + 1)`` with the 7x7 Gaussian window (sigma 7/6). Where the
7x7 neighbourhood is flat (or otherwise balanced) the coefficient is 0 in exact arithmetic and
what gets computed is rounding noise; the AGGD fits of NIQE and BRISQUE count every sample
``< 0`` and ``> 0``, so the sign of that noise moves their scores (0.6 % on a posterised
image). A filter whose accumulation order depends on the CPU (OpenCV's SIMD paths, thread
splits) therefore makes the scores depend on the machine. Here:

- every pixel is first filtered in a fixed order with plain IEEE float64 multiplies and adds
  in NumPy (``separable.valid_filter``): the same bits on every machine;
- the pixels where that result could carry the wrong sign (``|I - mu|`` within a proven
  bound of the rounding difference) are recomputed as MATLAB's ``imfilter`` does: a
  separable 7-tap filter, columns first, each tap a fused multiply-add (one rounding), here
  emulated exactly with error-free transformations (Dekker's product, Knuth's sum and
  rounding to odd: Boldo and Melquiond, IEEE TC 57(4), 2008), not with the platform's FMA.

Flat neighbourhoods, the common case, are done once per run of equal values; other selected
pixels by gathering their 49 samples, or the whole band when they are many. All three give
the same bits.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .separable import valid_filter

# fspecial('gaussian', 7, 7/6) as a 1-D factor, written out bit for bit: the sign of the
# flat-region noise depends on the last bit of each tap, and computing them (exp, then the
# sum that normalises) can round differently between libraries. These are the bits that
# reproduce MATLAB's published NIQE and BRISQUE (docs/metrics.md).
TAPS = np.array(
    [
        float.fromhex(h)
        for h in (
            "0x1.9b92991f24881p-7",
            "0x1.42e11ca517a60p-4",
            "0x1.e5fb7c557fad1p-3",
            "0x1.5edacbc602378p-2",
            "0x1.e5fb7c557fad1p-3",
            "0x1.42e11ca517a60p-4",
            "0x1.9b92991f24881p-7",
        )
    ]
)
TAPS.setflags(write=False)
RADIUS = len(TAPS) // 2
PADDINGS = ("replicate", "zeros")
# Either order of rounding is within 28 u max|I| of the exact filter (u = 2^-53: 14 roundings
# each, weights summing to 1); pixels with |I - mu| below 2^-45 max|I|, 9x that, are redone.
_NEAR_ZERO = 2.0**-45
_SPLIT = 134217729.0  # 2^27 + 1, Veltkamp's constant for float64
# Above this share of a band's pixels, gathering 49 samples each costs more than the band.
_GATHER_SHARE = 1 / 8


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a = hi + lo`` exactly, each with at most 26 significant bits (Veltkamp)."""
    c = _SPLIT * a
    hi = c - (c - a)
    return hi, a - hi


_TAP_PARTS = [(g, *(float(p) for p in _split(np.float64(g)))) for g in TAPS.tolist()]


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a + b = s + t`` exactly, ``s`` the rounded sum (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def fma(x, x_hi, x_lo, tap: int, acc: np.ndarray) -> np.ndarray:
    """``round(x * TAPS[tap] + acc)`` with one rounding, as a hardware FMA gives it.

    ``x_hi``, ``x_lo`` are :func:`_split` of ``x``. The exact product is ``p + e``;
    ``acc + p = s + t``; ``s + odd(t + e)`` is then correctly rounded, ``odd`` being rounding
    to odd (truncate, then set the last bit if inexact). Exact barring underflow.
    """
    g, g_hi, g_lo = _TAP_PARTS[tap]
    p = x * g
    e = ((x_hi * g_hi - p) + x_hi * g_lo + x_lo * g_hi) + x_lo * g_lo
    s, t = _two_sum(acc, p)
    v, err = _two_sum(t, e)
    inexact = err != 0
    bits = v.view(np.int64)
    # Rounding to nearest went away from zero where the error points back towards it.
    bits = (bits - (inexact & (np.signbit(err) != np.signbit(v)))) | inexact
    return s + bits.view(np.float64)


def fma_dot(x: np.ndarray, x_hi: np.ndarray, x_lo: np.ndarray) -> np.ndarray:
    """``sum_k TAPS[k] x[..., k]`` accumulated tap by tap with one rounding each (MATLAB)."""
    acc = x[..., 0] * TAPS[0]  # fma(x, g, 0) is the rounded product
    for k in range(1, len(TAPS)):
        acc = fma(x[..., k], x_hi[..., k], x_lo[..., k], k, acc)
    return acc


def _fma_band(padded: np.ndarray) -> np.ndarray:
    """MATLAB's filter of a whole padded band: ``[n + 6, w + 6]`` -> ``[n, w]``."""
    hi, lo = _split(padded)
    cols = fma_dot(*(sliding_window_view(a, len(TAPS), axis=0) for a in (padded, hi, lo)))
    hi, lo = _split(cols)
    return fma_dot(*(sliding_window_view(a, len(TAPS), axis=1) for a in (cols, hi, lo)))


def padded_rows(image: np.ndarray, top: int, bottom: int, padding: str) -> np.ndarray:
    """Rows ``top:bottom`` of ``image`` with the filter's 3 rows and columns of padding."""
    h, w = image.shape
    r = RADIUS
    out = np.empty((bottom - top + 2 * r, w + 2 * r), image.dtype)
    lo, hi = max(0, top - r), min(h, bottom + r)
    first = lo - (top - r)
    last = first + hi - lo
    out[first:last, r : r + w] = image[lo:hi]
    if padding == "zeros":
        out[:first], out[last:], out[:, :r], out[:, r + w :] = 0, 0, 0, 0
    else:
        out[:first, r : r + w], out[last:, r : r + w] = image[0], image[h - 1]
        out[:, :r], out[:, r + w :] = out[:, r : r + 1], out[:, r + w - 1 : r + w]
    return out


def mscn_rows(
    image: np.ndarray, top: int, bottom: int, padding: str, peak: float, exact: bool = True
) -> np.ndarray:
    """MSCN coefficients of rows ``top:bottom`` of a 2-D image on the [0, 255] scale.

    ``padding``: ``'replicate'`` (``imfilter(..., 'replicate')``, NIQE, PIQE) or ``'zeros'``
    (``filter2(..., 'same')``, BRISQUE). ``peak`` is ``max(|image|)`` over the whole image,
    so that the pixels redone, and hence every value, do not depend on the banding.
    ``exact=False`` skips MATLAB's rounding of the near-zero coefficients (PIQE's float32
    option; still the same bits on every machine).
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    x = padded_rows(image, top, bottom, padding)
    sq = x * x
    mu, second = valid_filter(x, TAPS), valid_filter(sq, TAPS)
    centre = x[RADIUS:-RADIUS, RADIUS:-RADIUS]
    diff = centre - mu
    # An infinite peak (inf in the image) would select every pixel for nothing but NaNs.
    near = np.abs(diff) <= _NEAR_ZERO * peak if exact and np.isfinite(peak) else None
    out = _mscn(diff, mu, second)
    if near is None or not near.any():
        return out
    size = len(TAPS)
    kernel = np.ones((size, size), np.uint8)
    # Flat windows (min == max: exact, whoever computes it) give a function of their value.
    low = cv2.erode(x, kernel, borderType=cv2.BORDER_REPLICATE)[RADIUS:-RADIUS, RADIUS:-RADIUS]
    flat = cv2.dilate(x, kernel, borderType=cv2.BORDER_REPLICATE)[RADIUS:-RADIUS, RADIUS:-RADIUS]
    flat = np.equal(low, flat)
    near &= ~flat
    values = centre[flat]
    # One value per run of equal values (flat areas along the rows), once per run.
    start = np.empty(values.size, bool)
    start[:1] = True
    np.not_equal(values[1:], values[:-1], out=start[1:])
    heads = values[start]
    rows, cols = np.nonzero(near)
    mu, second = _matlab_filter(x, sq, heads, rows, cols)
    k = heads.size
    out[flat] = _mscn(heads - mu[:k], mu[:k], second[:k])[np.cumsum(start) - 1]
    out[rows, cols] = _mscn(centre[rows, cols] - mu[k:], mu[k:], second[k:])
    return out


def _mscn(diff: np.ndarray, mu: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``diff / (sqrt(|second - mu^2|) + 1)``, in ``diff``'s buffer (MATLAB's order)."""
    sigma = np.multiply(mu, mu)
    np.subtract(second, sigma, out=sigma)
    np.abs(sigma, out=sigma)
    np.sqrt(sigma, out=sigma)
    sigma += 1.0
    return np.divide(diff, sigma, out=diff)


def _matlab_filter(
    x: np.ndarray, sq: np.ndarray, flat: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's filter of ``I`` and ``I^2`` for flat windows of the values ``flat``, then
    at the output pixels ``(rows, cols)`` of the padded bands ``x`` and ``sq``.

    Every column of a flat window filters to the same value, so it needs one chain down a
    column and one along the row; other windows one per column, then one along the row, or
    the whole band when they are many (the same roundings, so the same bits). All go through
    the same two rounds of :func:`fma_dot`: NumPy's cost per call is paid once per band.
    """
    size = len(TAPS)
    many = rows.size > _GATHER_SHARE * (x.shape[0] - 2 * RADIUS) * (x.shape[1] - 2 * RADIUS)
    flat = np.concatenate([flat, flat * flat])
    columns = [np.broadcast_to(flat[:, None], (flat.size, size))]
    if not many:
        for a in (x, sq):
            windows = sliding_window_view(a, (size, size))[rows, cols]  # [pixel, row, column]
            columns.append(np.swapaxes(windows, -1, -2).reshape(-1, size))
    columns = np.concatenate(columns)
    filtered = fma_dot(columns, *_split(columns))
    k = flat.size
    row_in = np.concatenate(
        [np.broadcast_to(filtered[:k, None], (k, size)), filtered[k:].reshape(-1, size)]
    )
    filtered = fma_dot(row_in, *_split(row_in))
    if many:
        filtered = np.concatenate([filtered, _fma_band(x)[rows, cols], _fma_band(sq)[rows, cols]])
    half = k // 2
    mu = np.concatenate([filtered[:half], filtered[k : k + rows.size]])
    second = np.concatenate([filtered[half:k], filtered[k + rows.size :]])
    return mu, second

"""NIQE, faithful to the LIVE release's ``computequality.m``.

A. Mittal, R. Soundararajan, A. C. Bovik, "Making a completely blind image quality
analyzer", IEEE Signal Processing Letters 20(3):209-212, 2013.

The image (gray, on the [0, 255] scale) is cropped to whole blocks; at two scales (the
second by MATLAB ``imresize(., 0.5)``) its MSCN coefficients (``imfilter`` with 'replicate'
borders) are cut into blocks (96x96, then 48x48) and each block gives 18 AGGD features. The
36-dimensional features of all blocks are fitted with a Gaussian (``nanmean``, ``nancov``)
and the score is its distance to the LIVE pristine model:
``sqrt((mu_p - mu_d) pinv((cov_p + cov_d) / 2) (mu_p - mu_d)')``. The release computes a
per-block sharpness but uses it only when training the pristine model (threshold 0.75):
every block of the scored image counts. A constant image has no complete feature row and
scores NaN, as in MATLAB.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import torch
from scipy.special import gamma

from ..errors import InputError, OptionError
from .matlab import imresize
from .nss import aggd_fit, block_sums, luma_255, mscn, not_flat

PRISTINE_MODEL = "niqe_pris_params.npz"


@functools.cache
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    """The LIVE release's ``mu_prisparam`` ``[36]`` and ``cov_prisparam`` ``[36, 36]``."""
    with (resources.files("iqa4k") / "assets" / PRISTINE_MODEL).open("rb") as f:
        with np.load(f) as data:
            mu, cov = data["mu_prisparam"].reshape(-1), data["cov_prisparam"]
    mu.setflags(write=False)  # shared by every call
    cov.setflags(write=False)
    return mu, cov


def _beta(std: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """AGGD scale from a one-sided standard deviation: ``std * sqrt(G(1/a) / G(3/a))``."""
    return std * np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))


def block_features(s: np.ndarray, size: int) -> np.ndarray:
    """``computefeature`` of every ``size x size`` block of the MSCN map -> ``[blocks, 18]``.

    Rows are in MATLAB's order (``blkproc`` then ``reshape``: down the block columns).
    """
    sums = block_sums(s, size)
    count = size * size
    alpha, left, right = aggd_fit(sums[:, :, 0], count)
    feats = [alpha, (_beta(left, alpha) + _beta(right, alpha)) / 2]
    for k in range(1, 5):
        alpha, left, right = aggd_fit(sums[:, :, k], count)
        beta_l, beta_r = _beta(left, alpha), _beta(right, alpha)
        mean = (beta_r - beta_l) * (gamma(2 / alpha) / gamma(1 / alpha))
        feats += [alpha, mean, beta_l, beta_r]
    return np.stack(feats, axis=-1).transpose(1, 0, 2).reshape(-1, 18)


def niqe_features(image: np.ndarray, block_size: int = 96) -> np.ndarray:
    """The 36 features of every block of a 2-D float64 image on [0, 255] -> ``[blocks, 36]``."""
    rows, cols = image.shape[0] // block_size, image.shape[1] // block_size
    image = np.ascontiguousarray(image[: rows * block_size, : cols * block_size])
    feats = []
    for scale in (1, 2):
        feats.append(block_features(mscn(image, "replicate"), block_size // scale))
        if scale == 1:
            image = imresize(torch.from_numpy(image)[None, None], scale=0.5)[0, 0].numpy()
    return np.concatenate(feats, axis=1)


def _pinv(a: np.ndarray) -> np.ndarray:
    """MATLAB ``pinv``: singular values above ``max(size(A)) * eps(norm(A))`` are inverted."""
    u, s, vt = np.linalg.svd(a)
    keep = s > max(a.shape) * np.spacing(s[0])
    return (vt[keep].T / s[keep]) @ u[:, keep].T


def _cholesky_quad(a: np.ndarray, v: np.ndarray) -> float | None:
    """``v' inv(a) v`` by a Cholesky factorisation in NumPy element-wise arithmetic, or
    None when ``a`` is not numerically positive definite.

    BLAS and LAPACK pick their kernels by CPU, and with them the last bits of an SVD; these
    loops add in an order fixed by the size alone.
    """
    n = len(v)
    low = np.zeros_like(a)
    for j in range(n):
        pivot = a[j, j] - np.sum(low[j, :j] * low[j, :j])
        if not pivot > 0:
            return None
        low[j, j] = np.sqrt(pivot)
        dots = np.sum(low[j + 1 :, :j] * low[j, :j], axis=1)
        low[j + 1 :, j] = (a[j + 1 :, j] - dots) / low[j, j]
    y = np.zeros(n)
    for i in range(n):
        y[i] = (v[i] - np.sum(low[i, :i] * y[:i])) / low[i, i]
    return float(np.sum(y * y))


def _covariance(centred: np.ndarray) -> np.ndarray:
    """``centred' * centred``, the rows added in order, a slab at a time (no BLAS)."""
    out = np.zeros((centred.shape[1],) * 2)
    for top in range(0, len(centred), 256):
        c = centred[top : top + 256]
        out += (c[:, :, None] * c[:, None, :]).sum(axis=0)
    return out


def mvg_distance(feats: np.ndarray, mu_p: np.ndarray, cov_p: np.ndarray) -> float:
    """NIQE's distance between the Gaussian fitted to ``feats`` ``[n, 36]`` and the model.

    As MATLAB: ``nanmean`` skips NaN entries column by column; ``nancov`` uses only the rows
    without NaN (normalised by n - 1, or by 1 when a single row remains); a NaN anywhere
    after that gives a NaN score. ``cov_d`` is positive semi-definite, so the smallest
    singular value of ``a = (cov_p + cov_d) / 2`` is at least half that of ``cov_p``, and the
    largest at most its trace: when that floor is far above MATLAB's ``pinv`` tolerance,
    ``pinv(a)`` is ``inv(a)`` and the quadratic form is taken by Cholesky (the same bits on
    every machine); otherwise by ``pinv`` (LAPACK's SVD).
    """
    finite = ~np.isnan(feats)
    complete = feats[finite.all(axis=1)]
    if len(complete) == 0:  # e.g. a constant image: every block has a one-sided NaN std
        return float("nan")
    mu_d = np.where(finite, feats, 0).sum(axis=0) / finite.sum(axis=0)
    centred = complete - complete.mean(axis=0)
    cov_d = _covariance(centred) / max(len(complete) - 1, 1)
    diff = mu_p - mu_d
    a = (cov_p + cov_d) / 2
    quad = None
    if np.all(np.isfinite(a)):
        floor = np.linalg.svd(cov_p, compute_uv=False)[-1] / 2
        if max(a.shape) * np.spacing(np.trace(a)) < floor / 4:
            quad = _cholesky_quad(a, diff)
    if quad is None:
        quad = diff @ _pinv(a) @ diff
    return float(np.sqrt(max(quad, 0.0)))


def _check(h: int, w: int, block_size: int) -> None:
    if block_size % 2:
        raise OptionError(f"niqe: block_size must be even (halved at scale 2), got {block_size}")
    if (h // block_size) * (w // block_size) < 2:
        raise InputError(
            f"NIQE needs at least two {block_size}x{block_size} blocks (e.g. "
            f"{2 * block_size}x{block_size} pixels) to fit its Gaussian model, got {w}x{h}"
        )


def niqe(
    x: torch.Tensor,
    *,
    color_space: str = "gray",
    quantize: bool = True,
    crop_border: int = 0,
    block_size: int = 96,
) -> torch.Tensor:
    """NIQE of each image of ``[B,3,H,W]`` in [0,1] -> ``[B]`` (lower is better).

    Computed on the CPU in float64 whatever the input's device and dtype.
    """
    h, w = (n - 2 * crop_border for n in x.shape[-2:])
    _check(h, w, block_size)
    mu_p, cov_p = pristine_model()
    # Only the whole blocks are scored: convert nothing else.
    top = left = crop_border
    x = x[..., top : top + h // block_size * block_size, left : left + w // block_size * block_size]
    planes = luma_255(x, color_space, quantize, 0)
    scores = [
        mvg_distance(niqe_features(not_flat(p, "NIQE"), block_size), mu_p, cov_p) for p in planes
    ]
    return torch.tensor(scores, dtype=torch.float64).to(x.device, x.dtype)

"""MATLAB-exact building blocks shared by the classical metrics."""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F

from .backend import cpu_inference


def fspecial_gaussian_1d(size: int, sigma: float) -> torch.Tensor:
    """1-D factor of MATLAB ``fspecial('gaussian', size, sigma)`` (float64, sums to 1).

    The 2-D MATLAB kernel is exactly the outer product of this vector with itself, which is
    what lets every Gaussian window here be applied as two 1-D passes.
    """
    if size < 1 or sigma <= 0:
        raise ValueError(f"Gaussian window needs size >= 1 and sigma > 0, got {size}, {sigma}")
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def box_downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """MATLAB ``y = imfilter(x, ones(f)/f^2, 'symmetric', 'same'); y = y(1:f:end, 1:f:end)``.

    For ``imfilter`` the kernel's centre is element ``floor((f+1)/2)``, so output pixel ``k*f``
    averages the block of rows (and columns) starting ``floor((f+1)/2) - 1`` before it; blocks
    that cross the border use mirrored samples. Output size is ``ceil(H/f) x ceil(W/f)``.
    """
    if factor <= 1:
        return x
    before = (factor + 1) // 2 - 1
    h, w = x.shape[-2:]
    out_h, out_w = math.ceil(h / factor), math.ceil(w / factor)
    after_h = out_h * factor - h - before
    after_w = out_w * factor - w - before
    x = _symmetric_pad(x, before, max(after_h, 0), before, max(after_w, 0))
    x = x[..., : out_h * factor, : out_w * factor]
    if not cpu_inference(x):
        return F.avg_pool2d(x, factor, stride=factor)
    # OpenCV's area resampling by an integer factor is this block mean, 10x faster at 4K.
    planes = x.detach().contiguous().numpy()
    out = [
        [cv2.resize(p, (out_w, out_h), interpolation=cv2.INTER_AREA) for p in img] for img in planes
    ]
    return torch.from_numpy(np.asarray(out))


def _symmetric_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """MATLAB 'symmetric' padding (mirror including the edge sample), for pads <= size."""
    if top:
        x = torch.cat([x[..., :top, :].flip(-2), x], dim=-2)
    if bottom:
        x = torch.cat([x, x[..., -bottom:, :].flip(-2)], dim=-2)
    if left:
        x = torch.cat([x[..., :left].flip(-1), x], dim=-1)
    if right:
        x = torch.cat([x, x[..., -right:].flip(-1)], dim=-1)
    return x


# ---------------------------------------------------------------------------------------------
# imresize


def _cubic(t: np.ndarray) -> np.ndarray:
    """MATLAB's bicubic kernel (Keys, a = -0.5), support [-2, 2]."""
    a = np.abs(t)
    a2, a3 = a * a, a * a * a
    near = (1.5 * a3 - 2.5 * a2 + 1) * (a <= 1)
    far = (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * ((a > 1) & (a <= 2))
    return near + far


def _triangle(t: np.ndarray) -> np.ndarray:
    """MATLAB's bilinear kernel, support [-1, 1]."""
    return (1 + t) * ((t >= -1) & (t < 0)) + (1 - t) * ((t >= 0) & (t <= 1))


_KERNELS = {"bicubic": (_cubic, 4.0), "bilinear": (_triangle, 2.0)}


@functools.lru_cache(maxsize=64)
def resize_weights(
    in_len: int,
    out_len: int,
    scale: float,
    kernel: str = "bicubic",
    antialias: bool = True,
    padding: str = "symmetric",
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``imresize``'s ``contributions``: weights and 0-based input indices per output.

    Row k of both ``[out_len, P]`` arrays gives output sample k. When shrinking with
    antialiasing the kernel is stretched by ``1/scale`` (and scaled by ``scale``); indices
    past either end are mirrored (``'symmetric'``: edge sample repeated, current MATLAB) or
    clamped (``'replicate'``: MATLAB releases of 2011 and before); columns whose weights are
    zero in every row are dropped, as MATLAB does.
    """
    fn, width = _KERNELS[kernel]
    if scale < 1 and antialias:
        width = width / scale

        def h(t: np.ndarray) -> np.ndarray:
            return scale * fn(scale * t)
    else:
        h = fn
    # Same expression order as MATLAB so that u, and hence every weight, is bit-identical.
    u = np.arange(1, out_len + 1, dtype=np.float64) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)
    weights = h(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    if padding == "symmetric":
        mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
        indices = mirror[np.mod(indices - 1, 2 * in_len).astype(np.int64)]
    elif padding == "replicate":
        indices = np.clip(indices, 1, in_len).astype(np.int64) - 1
    else:
        raise ValueError(f"padding must be 'symmetric' or 'replicate', got {padding!r}")
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


@functools.lru_cache(maxsize=64)
def _resize_matrix(*args, dtype: str) -> scipy.sparse.csr_matrix:
    """The ``[out_len, in_len]`` sparse matrix of :func:`resize_weights` (mirrored taps summed)."""
    weights, indices = resize_weights(*args)
    out_len, in_len = weights.shape[0], args[0]
    rows = np.repeat(np.arange(out_len), weights.shape[1])
    matrix = scipy.sparse.csr_matrix(
        (weights.ravel(), (rows, indices.ravel())), shape=(out_len, in_len)
    )
    return matrix.astype(dtype)


def _resize_dim_torch(x: torch.Tensor, dim: int, weights: np.ndarray, indices: np.ndarray):
    """Resize ``x`` along ``dim`` tap by tap (differentiable, any device)."""
    w = torch.from_numpy(weights).to(x)
    idx = torch.from_numpy(indices).to(x.device)
    shape = [1] * x.dim()
    shape[dim] = -1
    out = x.index_select(dim, idx[:, 0]) * w[:, 0].view(shape)
    for k in range(1, w.shape[1]):
        out = out + x.index_select(dim, idx[:, k]) * w[:, k].view(shape)
    return out


# NumPy asks Linux to back arrays of 4 MiB or more with huge pages; where the kernel compacts
# memory to find them (THP defrag "madvise"), fresh arrays that size can stall for
# milliseconds each. The sparse passes keep their temporaries below that size, and the output
# is allocated by torch, which does not ask.
_TEMP_BYTES = (4 << 20) - 4096


def _resize_dim_sparse(x: torch.Tensor, dim: int, matrix: scipy.sparse.csr_matrix):
    """Resize ``[B,C,H,W]`` along ``dim`` (-2 or -1) with sparse matmuls, plane by plane (CPU).

    Each output value is the same fixed-order sum whatever the number of columns multiplied
    at once, so working in blocks of columns or rows changes no bit.
    """
    planes = x.detach().contiguous().numpy().reshape(-1, *x.shape[-2:])
    n, h, w = planes.shape
    shape = (matrix.shape[0], w) if dim == -2 else (h, matrix.shape[0])
    out = torch.empty((n, *shape), dtype=x.dtype)
    step = max(1, _TEMP_BYTES // (planes.itemsize * max(matrix.shape)))
    for p, o in zip(planes, out.numpy(), strict=True):
        if dim == -2:
            for c in range(0, w, step):
                o[:, c : c + step] = matrix @ np.ascontiguousarray(p[:, c : c + step])
        else:  # rows of a transposed copy: OpenCV transposes faster than scipy's dense @ sparse.T
            for r in range(0, h, step):
                o[r : r + step] = cv2.transpose(matrix @ cv2.transpose(p[r : r + step]))
    return out.view(*x.shape[:-2], *shape)


def imresize(
    x: torch.Tensor,
    scale: float | tuple[float, float] | None = None,
    output_size: tuple[int, int] | None = None,
    kernel: str = "bicubic",
    antialias: bool = True,
    padding: str = "symmetric",
) -> torch.Tensor:
    """MATLAB ``imresize`` of a ``[B,C,H,W]`` float tensor (no rounding, no clamping).

    Give ``scale`` (output size ``ceil(scale * size)``) or ``output_size`` (then the scale
    of each dimension is ``out / in``). Dimensions are resized one at a time, the one with
    the smaller scale first (rows first on a tie), as MATLAB does. ``padding`` is how
    samples past the border are read (see :func:`resize_weights`).
    """
    if (scale is None) == (output_size is None):
        raise ValueError("imresize: give exactly one of scale and output_size")
    if kernel not in _KERNELS:
        raise ValueError(f"imresize: kernel must be one of {tuple(_KERNELS)}, got {kernel!r}")
    in_size = tuple(x.shape[-2:])
    if scale is not None:
        scales = (float(scale),) * 2 if isinstance(scale, int | float) else tuple(scale)
        out_size = tuple(math.ceil(s * n) for s, n in zip(scales, in_size, strict=True))
    else:
        out_size = tuple(int(n) for n in output_size)
        scales = tuple(o / n for o, n in zip(out_size, in_size, strict=True))
    if min(scales) <= 0 or min(out_size) < 1:
        raise ValueError(f"imresize: scale and output size must be positive, got {scales}")
    fast = cpu_inference(x) and x.dtype in (torch.float32, torch.float64)
    for d in sorted((0, 1), key=lambda d: scales[d]):  # stable: rows first on a tie
        args = (in_size[d], out_size[d], scales[d], kernel, antialias, padding)
        if fast:
            dtype = "float64" if x.dtype == torch.float64 else "float32"
            matrix = _resize_matrix(*args, dtype=dtype)
            x = _resize_dim_sparse(x, d - 2, matrix)
        else:
            x = _resize_dim_torch(x, x.dim() - 2 + d, *resize_weights(*args))
    return x

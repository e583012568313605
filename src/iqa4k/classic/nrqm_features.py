"""The three feature groups of Ma et al.'s NRQM, as ``feature_all.m`` computes them.

For one grey image ``img`` (uint8 in MATLAB; here its values 0..255 in float64):

- **f1, block DCT (18)**: ``im1 = img / 255`` and two more scales, each the previous one
  filtered by ``fspecial('gaussian', 3)`` (sigma 0.5, zero padding) and subsampled at even
  positions. ``block_dct.m`` on every scale: ``blkproc(im, [3 3], [2 2], ...)`` cuts 7x7
  windows with stride 3 (zero outside the image), takes their orthonormal DCT and pools three
  statistics per window over the image: the generalized-Gaussian shape of the AC coefficients
  (mean of the lowest 10 % and of all), their coefficient of variation, and the variance of
  the coefficient of variation of three oriented coefficient groups (mean of the highest 10 %
  and of all).
- **f2, steerable pyramid GSM (45)**: ``global_gsm.m`` on ``img`` (0..255): ``buildSFpyr(img,
  2, 5)`` (2 levels, 6 orientations), DIIVINE's divisive normalisation of each band by its
  3x3 neighbourhood, parent and sibling bands (``norm_sender_normalized.m``), then the shape of
  each normalised band (12), of both scales of each orientation together (6), the SSIM
  structure term of every raw band against the high-pass residual (12) and between the
  normalised orientations of the finest scale (15).
- **f3, PCA (75)**: the 25 singular values of the matrix of distinct 5x5 patches
  (``svd(im2col(im, [5 5], 'distinct'))``) on each of the three scales.

Everything runs in float64 on the tensors' device, vectorised, with working memory bounded by
processing the large intermediate arrays in bands of rows.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .backend import cpu_inference, parallel_map
from .matlab import fspecial_gaussian_1d, imresize
from .steerable import build_sf_pyramid

F1_SIZE, F2_SIZE, F3_SIZE = 18, 45, 75
MIN_SIZE = 45  # smallest side for which every feature exists (guard bands, 11x11 windows)

# Generalized Gaussian table of gama_gen_gauss.m: g = 0.03:0.001:10 and
# r(g) = Gamma(1/g) Gamma(3/g) / Gamma(2/g)^2, strictly decreasing in g.
_GGD_SHAPES = 0.03 + 0.001 * np.arange(9971)

# Coefficient groups of oriented{1,2,3}_dct_rho_config3.m for a 7x7 DCT block, (row, col)
# 0-based: near-horizontal, diagonal and near-vertical frequencies, 16 each.
_ROWS_O1 = [(0, range(1, 7)), (1, range(2, 7)), (2, range(4, 7)), (3, range(5, 7))]
_ROWS_O2 = [
    (1, range(1, 2)),
    (2, range(2, 4)),
    (3, range(2, 5)),
    (4, range(3, 7)),
    (5, range(4, 7)),
    (6, range(4, 7)),
]
_ORIENTED = (
    [r * 7 + c for r, cols in _ROWS_O1 for c in cols],
    [r * 7 + c for r, cols in _ROWS_O2 for c in cols],
    [c * 7 + r for r, cols in _ROWS_O1 for c in cols],  # the transpose of the first group
)
_BLOCK_CHUNK = 16384  # DCT windows at once (6.4 MB of coefficients; faster here than 4096)
_ROW_CHUNK_SAMPLES = 1 << 16  # neighbourhood vectors per chunk in the normalisation (8 MB)


@functools.cache
def _ggd_ratios() -> np.ndarray:
    from scipy.special import gamma

    g = _GGD_SHAPES
    return gamma(1 / g) * gamma(3 / g) / gamma(2 / g) ** 2


def ggd_shape_from_ratio(rho: torch.Tensor) -> torch.Tensor:
    """``gama_gen_gauss``'s table look-up: the shape g whose ratio r(g) is nearest to ``rho``.

    Ties go to the smaller g, as MATLAB's ``min`` returns the first minimum; a ratio beyond
    the table's ends gives its end value (0.03 or 10).
    """
    r = _ggd_ratios()
    values = np.atleast_1d(rho.detach().cpu().double().numpy())
    # r is decreasing: search the increasing -r for the first entry at or below rho.
    hi = np.searchsorted(-r, -values, side="left").clip(1, r.size - 1)
    lo = hi - 1
    nearer_hi = np.abs(r[hi] - values) < np.abs(r[lo] - values)
    index = np.where(nearer_hi, hi, lo)
    index[np.isnan(values)] = 0  # min() of all-NaN distances returns the first index
    return torch.from_numpy(_GGD_SHAPES[index]).reshape(rho.shape).to(rho.device)


def _mean_var(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased variance over dim 0, two-pass as MATLAB's ``var``.

    Statistics run over dim 0 of coefficient-major ``[coefficients, windows]`` arrays: each
    step is then a contiguous pass over all windows (twice as fast as torch.var on dim 1).
    """
    n = x.shape[0]
    mean = x.sum(dim=0).div_(n)
    return mean, (x - mean).square_().sum(dim=0).div_(n - 1)


def _cv(a: torch.Tensor, eps: float) -> torch.Tensor:
    """``std(a) / (mean(a) + eps)`` over dim 0, for magnitudes ``a``."""
    mean, var = _mean_var(a)
    return var.sqrt_().div_(mean.add_(eps))


def _dct_matrix(n: int, device: torch.device) -> torch.Tensor:
    """The orthonormal DCT-II matrix of MATLAB ``dct``: ``dct(x) = C @ x``."""
    k = torch.arange(n, dtype=torch.float64, device=device)[:, None]
    m = torch.arange(n, dtype=torch.float64, device=device)[None, :]
    c = torch.cos(math.pi * (2 * m + 1) * k / (2 * n)) * math.sqrt(2 / n)
    c[0] /= math.sqrt(2)
    return c


def dct_block_statistics(im: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-window GGD shape, coefficient of variation and orientation variance, each ``[N]``.

    Windows are ``blkproc(im, [3 3], [2 2], fun)``'s: 3x3 blocks with a 2-pixel border, i.e.
    7x7 windows every 3 pixels, zero outside the image; ``N = ceil(H/3) * ceil(W/3)``.
    """
    h, w = im.shape
    nbr, nbc = -(-h // 3), -(-w // 3)
    padded = im.new_zeros(3 * nbr + 4, 3 * nbc + 4)
    padded[2 : 2 + h, 2 : 2 + w] = im
    windows = padded.unfold(0, 7, 3).unfold(1, 7, 3)  # a [nbr, nbc, 7, 7] view, no copy
    c = _dct_matrix(7, im.device)
    # dct2(B) = C B C' is, on row-major flattened windows, one product with kron(C, C); the
    # product is taken so that the coefficients come out coefficient-major, [49, windows].
    basis = torch.kron(c, c)
    oriented = [torch.tensor(g, device=im.device) for g in _ORIENTED]
    rhos, cvs, oris = [], [], []
    rows = max(1, _BLOCK_CHUNK // nbc)
    for start in range(0, nbr, rows):
        coeffs = basis @ windows[start : start + rows].reshape(-1, 49).T
        ac = coeffs[1:]  # everything but DC
        mean, var = _mean_var(ac)
        mad = (ac - mean).abs_().sum(dim=0).div_(ac.shape[0])
        rhos.append(var.div_(mad.square_().add_(1e-7)))
        magnitude = coeffs.abs_()
        cvs.append(_cv(magnitude[1:], 1e-7))
        groups = torch.stack([_cv(magnitude.index_select(0, g), 1e-8) for g in oriented])
        oris.append(_mean_var(groups)[1])
    shape = ggd_shape_from_ratio(torch.cat(rhos))
    return shape, torch.cat(cvs), torch.cat(oris)


def _pool_lowest(values: torch.Tensor) -> torch.Tensor:
    """[mean of the lowest ceil(10 %), mean of all], as ``block_dct.m`` indexes the sort."""
    n = values.numel()
    return _pooled(values, slice(None, math.ceil(n * 0.1)))


def _pool_highest(values: torch.Tensor) -> torch.Tensor:
    """[mean of sorted(fix(0.9 n):end) (1-based), mean of all]: the top 10 % and one more."""
    n = values.numel()
    return _pooled(values, slice(max(int(n * 0.9), 1) - 1, None))


def _pooled(values: torch.Tensor, part: slice) -> torch.Tensor:
    """[mean of ``sort(values)[part]``, mean of all]. A partition around the slice's inner
    end puts the same values in the slice as a sort (in another order), in linear time."""
    v = values.detach().cpu().numpy()
    edge = part.stop - 1 if part.start is None else part.start
    chosen = np.partition(v, edge)[part]
    return torch.tensor([chosen.mean(), v.mean()], device=values.device)


def block_dct_features(im: torch.Tensor) -> torch.Tensor:
    """``block_dct.m`` of one scale, ``[H, W]`` in [0, 1] -> its 6 pooled statistics."""
    shape, cv, ori = dct_block_statistics(im)
    return torch.cat([_pool_lowest(shape), _pool_highest(cv), _pool_highest(ori)])


def spatial_scales(im: torch.Tensor) -> list[torch.Tensor]:
    """``im`` and two coarser scales: ``imfilter(., fspecial('gaussian', 3))``, then (2:2:end)."""
    g = fspecial_gaussian_1d(3, 0.5).to(im)
    scales = [im]
    for _ in range(2):
        x = scales[-1][None, None]
        x = F.conv2d(F.pad(x, (1, 1, 1, 1)), g.view(1, 1, 3, 1))  # zero padding, as imfilter
        x = F.conv2d(x, g.view(1, 1, 1, 3))
        scales.append(x[0, 0, 1::2, 1::2])
    return scales


def patch_singular_values(im: torch.Tensor) -> torch.Tensor:
    """``svd(im2col(im, [5 5], 'distinct'))``: the 25 singular values, largest first.

    The image is zero-padded to whole 5x5 patches as ``im2col`` does. The singular values of
    the 25 x N patch matrix are those of the R factor of its transpose's QR decomposition,
    which keeps full accuracy without forming the Gram matrix.
    """
    h, w = im.shape
    hp, wp = -(-h // 5) * 5, -(-w // 5) * 5
    x = F.pad(im, (0, wp - w, 0, hp - h))
    patches = x.reshape(hp // 5, 5, wp // 5, 5).permute(0, 2, 1, 3).reshape(-1, 25)
    r = torch.linalg.qr(patches, mode="r").R
    return torch.linalg.svdvals(r)


# --------------------------------------------------------------------- steerable pyramid GSM


def _enlarge(x: torch.Tensor, size: tuple[int, int] | None = None, scale: float | None = None):
    """MATLAB ``imresize(x, scale)`` / ``imresize(x, size)`` (bicubic) of a 2-D tensor."""
    if size is not None and tuple(size) == tuple(x.shape):
        return x  # the cubic kernel is 1 at 0 and 0 at the other integers: an identity
    return imresize(x[None, None], scale=scale, output_size=size)[0, 0]


def _matlab_pinv(a: torch.Tensor) -> torch.Tensor:
    """MATLAB ``pinv``: singular values up to ``max(size) * eps(norm)`` count as zero."""
    u, s, vh = torch.linalg.svd(a)
    top = s.max().item()
    tol = max(a.shape) * (math.ulp(top) if top > 0 else 0.0)
    inv = torch.where(s > tol, 1.0 / s, torch.zeros_like(s))
    return (vh.T * inv) @ u.T


class _Neighbourhoods:
    """``norm_sender_normalized.m``'s neighbourhood vectors of one band, and its divisor.

    Each interior coefficient's vector holds its 3x3 spatial neighbours, the parent (when
    there is one) and the same position in the sibling orientations: column k of MATLAB's
    matrix Y is ``sources[k]`` shifted by ``offsets[k]``. Column order does not matter (the
    quadratic form and the eigenvalue correction are invariant to a consistent permutation).
    The constructor makes the pass that needs every vector (the covariance); :meth:`divide`
    then normalises any block of coefficients.
    """

    def __init__(self, band, parent, siblings, buf: torch.Tensor):
        self.band = band
        self.sources = [band] * 9 + ([parent] if parent is not None else []) + siblings
        self.offsets = [(1 - dy, 1 - dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        self.offsets += [(1, 1)] * (len(self.sources) - 9)
        self.n = 9 + (parent is not None)
        h, w = band.shape
        self.nv, self.nh = h - 2, w - 2
        self.buf = buf  # shared: each block is consumed before the next one is filled
        self.mean = band[1 : 1 + self.nv, 1 : 1 + self.nh].mean()
        self.inv = self._inverse_covariance()

    def _fill(self, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        """Y' for a block as a contiguous [columns, samples] matrix (fast row copies)."""
        yt = self.buf[: len(self.sources), : (r1 - r0) * (c1 - c0)]
        for k, (src, (oy, ox)) in enumerate(zip(self.sources, self.offsets, strict=True)):
            yt[k].view(r1 - r0, c1 - c0).copy_(src[r0 + oy : r1 + oy, c0 + ox : c1 + ox])
        return yt

    def _inverse_covariance(self) -> torch.Tensor:
        size = len(self.sources)
        cov = self.band.new_zeros(size, size)
        for r0, r1 in _row_chunks(0, self.nv, self.nh):
            yt = self._fill(r0, r1, 0, self.nh)
            cov += yt @ yt.T
        cov = cov / (self.nv * self.nh)
        cov = (cov + cov.T) / 2  # MATLAB's innerProd is exactly symmetric
        # Negative eigenvalues are set to 0 and the rest rescaled to keep the total variance.
        lam, q = torch.linalg.eigh(cov)
        pos = lam * (lam > 0)
        total, pos_total = lam.sum(), pos.sum()
        lam = pos * total / (pos_total + (pos_total == 0).to(pos_total))
        return _matlab_pinv((q * lam) @ q.T)

    def divide(self, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        """Interior coefficients ``[r0:r1, c0:c1]`` minus the band's mean, divided by the GSM
        multiplier estimate ``z = sqrt(y' C^-1 y / N)``."""
        yt = self._fill(r0, r1, c0, c1)
        z = (self.inv @ yt).mul_(yt).sum(dim=0).div_(self.n).sqrt_().view(r1 - r0, c1 - c0)
        c = self.band[r0 + 1 : r1 + 1, c0 + 1 : c1 + 1] - self.mean
        # MATLAB keeps only z ~= 0 (and then fails to reshape); 0 keeps the shape instead.
        return torch.where(z != 0, c / z, torch.zeros_like(c))


def _row_chunks(start: int, stop: int, width: int):
    """Row ranges of about ``_ROW_CHUNK_SAMPLES`` coefficients each."""
    rows = max(1, _ROW_CHUNK_SAMPLES // width)
    return [(r0, min(r0 + rows, stop)) for r0 in range(start, stop, rows)]


def _normalize_level_in_place(
    bands: list[torch.Tensor], parents: list[torch.Tensor | None], guard: int
) -> list[torch.Tensor]:
    """``norm_sender_normalized.m`` for every band of a level, each written over its band.

    Each band (minus its mean) is divided by its GSM multiplier estimate, ``guard`` pixels
    are cut from every side and the mean is removed again; the results are views of the
    bands. The bands are each other's siblings, so they are divided block by block in
    lockstep and a block's results are written back one block later, once no remaining
    block reads those rows (block k reads the rows of its results and of the next one): no
    second set of full-size arrays is needed.
    """
    h, w = bands[0].shape
    buf = bands[0].new_empty(len(bands) + 10, max(_ROW_CHUNK_SAMPLES, w))
    hoods = [
        _Neighbourhoods(band, parent, bands[:o] + bands[o + 1 :], buf)
        for o, (band, parent) in enumerate(zip(bands, parents, strict=True))
    ]
    nv, nh = h - 2, w - 2
    c0, c1 = guard, nh - guard
    pending = None
    for block in [*_row_chunks(guard, nv - guard, c1 - c0), None]:
        ready = block and (block, [hood.divide(*block, c0, c1) for hood in hoods])
        if pending:
            (r0, r1), values = pending
            for band, value in zip(bands, values, strict=True):
                band[r0 + 1 : r1 + 1, c0 + 1 : c1 + 1] = value
        pending = ready
    views = [band[1 + guard : 1 + nv - guard, 1 + c0 : 1 + c1] for band in bands]
    for view in views:
        view.sub_(view.mean())
    return views


def _gauss_valid(x, delta: float = 0.0):
    """``filter2(fspecial('gaussian', 11, 1.5), x, 'valid') + delta`` of a 2-D float64 array.

    A NumPy array (CPU inference) goes through OpenCV's separable filter, several times faster
    than torch's float64 convolution; borders are cropped away, so the padding mode does not
    matter. A tensor (any device, differentiable) goes through ``conv2d``.
    """
    g = fspecial_gaussian_1d(11, 1.5)
    h, w = x.shape
    if isinstance(x, np.ndarray):
        k = g.numpy()
        x = np.ascontiguousarray(x)
        out = cv2.sepFilter2D(x, -1, k, k, delta=delta, borderType=cv2.BORDER_REFLECT)
        return out[5 : h - 5, 5 : w - 5]
    g = g.to(x)
    y = F.conv2d(x[None, None], g.view(1, 1, -1, 1))
    return F.conv2d(y, g.view(1, 1, 1, -1))[0, 0] + delta


_C2 = (0.03 * 255) ** 2  # ssim_index_new's contrast constant, L = 255
_STRIP_ROWS = 128  # output rows per strip of the SSIM maps: strip temporaries stay small


def _strip_structure_sums(images: list, pairs: list[tuple[int, int]], rows: tuple[int, int]):
    """Sums of ``ssim_index_new``'s contrast-structure map over output rows ``rows`` of each
    pair of ``images`` (NumPy arrays or tensors), in the order of ``pairs``.

    A valid filter needs only 10 more input rows. Each image's local moments are computed
    once and dropped after the last pair that uses them, so memory stays bounded.
    """
    r0, r1 = rows
    strips = [x[r0 : r1 + 10] for x in images]
    last_use = {i: k for k, pair in enumerate(pairs) for i in pair}
    moments, sums = {}, []
    for k, (i, j) in enumerate(pairs):
        for m in (i, j):
            if m not in moments:
                mu = _gauss_valid(strips[m])
                var = _gauss_valid(strips[m] * strips[m], _C2 / 2)  # the sum of two has C2
                var -= mu * mu
                moments[m] = mu, var
        (mu_a, var_a), (mu_b, var_b) = moments[i], moments[j]
        half_num = _gauss_valid(strips[i] * strips[j], _C2 / 2)
        half_num -= mu_a * mu_b  # sigma_ab + C2 / 2
        half_num /= var_a + var_b
        sums.append(half_num.sum())
        for m in (i, j):
            if last_use[m] == k:
                del moments[m]
    return sums


def _structure_means(images: list[torch.Tensor], pairs: list[tuple[int, int]]) -> torch.Tensor:
    """``ssim_index_new``'s ``mcs`` for each pair of same-size images -> ``[len(pairs)]``.

    ``mcs`` is the mean of (2 sigma_ab + C2) / (sigma_a^2 + sigma_b^2 + C2) over the valid
    11x11 Gaussian windows, summed a strip of rows at a time. For CPU inference the strips
    are NumPy arrays filtered by OpenCV on two threads (each filter call uses one core);
    strips' sums are added in a fixed order, so the result does not depend on the threads.
    """
    h, w = images[0].shape
    rows = h - 10
    strips = [(r0, min(r0 + _STRIP_ROWS, rows)) for r0 in range(0, rows, _STRIP_ROWS)]
    if cpu_inference(*images):
        arrays = [x.numpy() for x in images]
        sums = parallel_map(functools.partial(_strip_structure_sums, arrays, pairs), strips)
        totals = torch.tensor(np.sum(sums, axis=0))
    else:
        sums = [torch.stack(_strip_structure_sums(images, pairs, s)) for s in strips]
        totals = torch.stack(sums).sum(dim=0)
    return totals * 2 / (rows * (w - 10))


def _ggd_shape_of(parts: list[torch.Tensor]) -> torch.Tensor:
    """``gama_gen_gauss`` of all the values of ``parts`` together (no concatenated copy)."""
    n = sum(p.numel() for p in parts)
    mean = sum(p.sum() for p in parts) / n
    square = absolute = 0.0
    for block in (b for p in parts for b in p.split(_STRIP_ROWS)):  # no full-size temporaries
        d = block - mean
        absolute = absolute + d.abs().sum()
        square = square + d.square_().sum()
    mad = absolute / n
    return ggd_shape_from_ratio(square / (n - 1) / (mad.square() + 1e-7))


def gsm_features(img: torch.Tensor) -> torch.Tensor:
    """``global_gsm.m`` of a grey image ``[H, W]`` with values 0..255 -> 45 features.

    Memory stays near the pyramid's plus five full-size arrays (about 110 bytes per pixel in
    all): the coarse bands enlarged to full size serve both the structure term against the
    high-pass residual and, when the sides are even, as the parents in the normalisation;
    both levels are normalised in place.
    """
    pyr = build_sf_pyramid(img, height=2, order=5)
    fine, coarse, highpass = pyr.bands[0], pyr.bands[1], pyr.highpass
    del pyr
    nor = len(fine)
    size = tuple(img.shape)
    # Every raw band, at full size, against the high-pass residual. The last coarse band
    # has no child, so it goes first, alone, and is freed before the parents are made.
    last = _enlarge(coarse[-1], size=size)
    across_last = _structure_means([last, highpass], [(0, 1)])
    del last
    enlarged = [_enlarge(band, size=size) for band in coarse[:-1]]
    bands = [*fine, *enlarged, highpass]
    across = _structure_means(bands, [(k, len(bands) - 1) for k in range(len(bands) - 1)])
    del bands, highpass
    # As in the original, only orientations 1-5 of the finest scale get their parent
    # ('nband < Nband - Nor' excludes the last finest band and the coarsest level), enlarged
    # by 2 and cropped: the same arrays as above when the image's sides are even.
    even = tuple(2 * n for n in coarse[0].shape) == size
    parents = enlarged if even else None
    del enlarged
    if not even:
        parents = [_enlarge(band, scale=2.0)[: size[0], : size[1]] for band in coarse[:-1]]
    coarse = _normalize_level_in_place(coarse, [None] * nor, guard=8)
    fine = _normalize_level_in_place(fine, [*parents, None], guard=16)
    del parents
    shapes = [_ggd_shape_of([band]) for band in fine + coarse]
    shapes += [_ggd_shape_of([a, b]) for a, b in zip(fine, coarse, strict=True)]
    between = _structure_means(fine, [(i, j) for i in range(nor) for j in range(i + 1, nor)])
    return torch.cat([torch.stack(shapes), across, across_last, between]).to(torch.float64)


def nrqm_features(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``feature_all.m`` of one grey image ``[H, W]`` (float64, values 0..255) -> f1, f2, f3.

    ``f1`` has 18 values (6 per scale, finest first), ``f2`` 45 and ``f3`` 75 (25 singular
    values per scale), in the order ``quality_predict.m`` feeds them to the forests.
    """
    h, w = img.shape
    # The coarsest scale (H/4 x W/4) must still hold 25 distinct 5x5 patches.
    if min(h, w) < MIN_SIZE or -(-(h // 4) // 5) * -(-(w // 4) // 5) < 25:
        raise InputError(
            f"NRQM needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels with 25 5x5 patches "
            f"at a quarter of the size (e.g. 84x84), got {w}x{h}"
        )
    img = img.to(torch.float64)
    # The pyramid first: it needs the most memory, before the smaller arrays of the other
    # groups have fragmented the heap.
    f2 = gsm_features(img)  # global_gsm works on double(img), 0..255
    scales = spatial_scales(img / 255.0)  # im2double
    f1 = torch.cat([block_dct_features(s) for s in scales])
    f3 = torch.cat([patch_singular_values(s) for s in scales])
    return f1, f2, f3

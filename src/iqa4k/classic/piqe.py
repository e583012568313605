"""PIQE, the perception-based image quality evaluator, faithful to MATLAB's ``piqe()``.

N. Venkatanath, D. Praneeth, Maruthi Chandrasekhar Bh, S. S. Channappayya, S. S. Medasani,
"Blind image quality evaluation using perception based features", NCC 2015. The reference
is the Image Processing Toolbox ``piqe.m`` (2018), step by step:

1. Pad the image with replicated samples at the bottom and right ('post') to whole 16x16
   blocks, convert it to gray (``rgb2gray``) and to ``round(255 * im2double(I))``: integer
   levels 0..255 whatever the input class.
2. MSCN: ``(I - mu) / (sigma + 1)`` with ``mu`` and ``sigma`` from ``imgaussfilt`` (7x7,
   sigma 7/6, 'replicate' padding), ``sigma = sqrt(|G*I^2 - mu^2|)``.
3. Per non-overlapping 16x16 block of the MSCN image, with ``v`` its sample variance (N-1):
   active when ``v > 0.1``. An active block shows a *noticeable artifact* when any of the 11
   runs of 6 contiguous samples along any of its four edges has a sample std below 0.1, and
   *noise* when ``sqrt(v) > 2 * beta``, ``beta = |sqrt(v) - r| / max(sqrt(v), r)``, ``r`` the
   ratio of the std of the two centre columns (8 and 9 of 16) to the std of the "surround".
   As in MATLAB, the surround drops columns 8 and 10, not 8 and 9 (``Block(:,8) = []``
   shifts the columns before ``Block(:,9) = []``); reproduced on purpose.
4. Block score ``artifact * (1 - v) + noise * v``; score
   ``(sum of block scores + 1) / (number of active blocks + 1) * 100``, not clipped (a flat
   image, no active block, scores exactly 100).

Every block statistic comes from per-block column sums (variance, centre, surround) and from
the four block edges (segments), vectorised over blocks; the image is processed on the CPU
(whatever its device) in bands of block rows, two at a time, so that every intermediate
stays in cache. The MSCN map is computed in float64 by :mod:`~iqa4k.classic.mscn_filter`:
the same bits on every machine, and MATLAB's rounding where a coefficient is 0 in exact
arithmetic. ``precision="float32"`` computes it in float32 (still machine-independent, but
not MATLAB's rounding), and the cancellation in ``G*I^2 - mu^2`` then moves about 1.5 block
decisions in 10^5 across a threshold (403 LIVE Challenge and TID2013 images: median score
change 1.7e-6, largest 0.64%; docs/metrics.md).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..errors import InputError, OptionError
from .backend import parallel_map
from .mscn_filter import RADIUS, mscn_rows
from .nss import LUMA_WEIGHTS, luma_rows
from .prepare import shave

_C = 1.0  # MATLAB's stabilising constant, in the MSCN denominator and in the pooling
_BAND_BLOCKS = 1  # block rows per band: the band's buffers stay in cache
_PRECISIONS = {"float64": torch.float64, "float32": torch.float32}


class PIQEResult(NamedTuple):
    """Score, MATLAB's three masks and the per-block distortion scores of a batch."""

    score: torch.Tensor
    """``[B]``, MATLAB's ``Score``."""
    block_scores: torch.Tensor
    """``[B, ceil(H/bs), ceil(W/bs)]``: each block's distortion score, 0 if inactive."""
    activity_mask: torch.Tensor
    """``[B, H, W]`` bool, MATLAB's ``ActivityMask``."""
    noticeable_artifacts_mask: torch.Tensor
    """``[B, H, W]`` bool, MATLAB's ``NoticeableArtifactsMask``."""
    noise_mask: torch.Tensor
    """``[B, H, W]`` bool, MATLAB's ``NoiseMask``."""
    block_size: int
    """Side of the blocks, to map ``block_scores`` back to pixels."""

    def quality_map(self) -> torch.Tensor:
        """``block_scores`` spread over each block's pixels: ``[B, H, W]``."""
        h, w = self.activity_mask.shape[-2:]
        return _blocks_to_pixels(self.block_scores, self.block_size, h, w)


def piqe(
    x: torch.Tensor,
    *,
    color_space: str = "gray",
    quantize: bool = True,
    crop_border: int = 0,
    block_size: int = 16,
    activity_threshold: float = 0.1,
    impaired_threshold: float = 0.1,
    segment_length: int = 6,
    precision: str = "float64",
    return_maps: bool = False,
) -> torch.Tensor | PIQEResult:
    """PIQE of ``[B,3,H,W]`` (or ``[B,1,H,W]`` gray) images in [0,1] -> ``[B]``, lower is better.

    ``return_maps=True`` returns a :class:`PIQEResult` with MATLAB's masks as well.
    """
    _check_options(color_space, block_size, segment_length, precision)
    x = x.detach()  # thresholds and rounding: no useful gradient
    out_dtype = x.dtype
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise InputError(f"PIQE expects [B,3,H,W] or [B,1,H,W] images, got {tuple(x.shape)}")
    x = shave(x, crop_border)
    h, w = x.shape[-2:]
    if min(h, w) < block_size:
        raise InputError(
            f"PIQE needs images of at least {block_size}x{block_size} pixels (one block), "
            f"got {w}x{h}" + (f" after shaving {crop_border} per side" if crop_border else "")
        )
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()  # half precision would move the gray levels
    # On the CPU whatever the device, in NumPy: the same bits on every machine, and MATLAB's
    # rounding where the MSCN map's flat areas are concerned.
    variance, min_segment_std, noisy = _analyse(
        x.cpu().numpy(), block_size, segment_length, color_space, quantize, precision
    )

    active = variance > activity_threshold
    impaired = (min_segment_std < impaired_threshold) & active
    noisy &= active
    block_scores = impaired * (1.0 - variance) + noisy * variance
    n_active = active.sum(dim=(-2, -1))
    score = (block_scores.sum(dim=(-2, -1)) + _C) / (n_active + _C) * 100.0
    score = score.to(x.device, out_dtype)
    if not return_maps:
        return score
    return PIQEResult(
        score,
        block_scores.to(x.device, out_dtype),
        _blocks_to_pixels(active, block_size, h, w).to(x.device),
        _blocks_to_pixels(impaired, block_size, h, w).to(x.device),
        _blocks_to_pixels(noisy, block_size, h, w).to(x.device),
        block_size,
    )


def _check_options(color_space: str, block_size: int, segment_length: int, precision: str) -> None:
    if color_space not in ("gray", "y"):
        raise OptionError(f"piqe: color_space must be 'gray' or 'y', got {color_space!r}")
    if precision not in _PRECISIONS:
        raise OptionError(f"piqe: precision must be one of {tuple(_PRECISIONS)}, got {precision!r}")
    # MATLAB indexes the centre columns at block_size / 2 and drops columns up to
    # block_size / 2 + 2: an odd or tiny block is an index error there.
    if block_size < 4 or block_size % 2:
        raise OptionError(f"piqe: block_size must be an even integer >= 4, got {block_size}")
    if not 2 <= segment_length <= block_size:
        raise OptionError(
            f"piqe: segment_length must be between 2 and block_size ({block_size}), "
            f"got {segment_length}"
        )


def _levels(
    image: np.ndarray, rows: np.ndarray, width: int, color_space: str, quantize: bool
) -> np.ndarray:
    """MATLAB's ``round(255 * rgb2gray(I))`` for ``rows`` of a ``[C, H, W]`` image, padded
    (``'replicate'``, ``'post'``) to ``width`` columns: float64 levels 0..255.

    MATLAB rounds for every input class, so ``quantize=True`` is MATLAB. No offset is
    removed: MSCN is shift invariant only in exact arithmetic, and MATLAB's rounding noise
    in flat areas is that of the levels 0..255.
    """
    if image.shape[0] == 3:
        levels = luma_rows(image[:, rows], color_space, quantize)
    else:
        levels = image[0, rows].astype(np.float64) * 255.0
        if quantize:  # half away from zero, as v >= 0
            levels += 0.5
            np.floor(levels, out=levels)
    pad = width - levels.shape[1]
    return np.pad(levels, ((0, 0), (0, pad)), mode="edge") if pad else levels


_Decisions = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _analyse(
    x: np.ndarray, bs: int, seg: int, color_space: str, quantize: bool, precision: str
) -> _Decisions:
    """:func:`_decide` on every block of ``[B, C, H, W]`` images, band by band.

    The image is padded to whole blocks on the fly; each band of ``_BAND_BLOCKS`` block rows
    gets its gray levels and the filter's 3 halo rows (no image-sized copy), then its MSCN
    map from :func:`~iqa4k.classic.mscn_filter.mscn_rows` (exactly the whole image's
    values). Two bands at a time; every intermediate stays in cache.
    """
    b, _, h, w = x.shape
    hp, wp = -(-h // bs) * bs, -(-w // bs) * bs
    hb, wb = hp // bs, wp // bs
    variance, min_std = np.empty((b, hb, wb)), np.empty((b, hb, wb))
    noisy = np.empty((b, hb, wb), dtype=bool)
    exact = precision == "float64"
    rows = _BAND_BLOCKS * bs
    # A bound on every |level| (+1 for the rounding), the same for every band, so that
    # mscn_rows redoes the same pixels whatever the banding.
    weights, offset = ((255.0,), 0.0) if x.shape[1] == 1 else LUMA_WEIGHTS[color_space]
    peak = max(float(x.max()), -float(x.min())) * sum(map(abs, weights)) + abs(offset) + 1.0
    for i in range(b):

        def band(top: int, i=i) -> None:
            bottom = min(top + rows, hp)
            lo, hi = max(0, top - RADIUS), min(hp, bottom + RADIUS)
            source = np.minimum(np.arange(lo, hi), h - 1)  # padarray 'replicate', 'post'
            levels = _levels(x[i], source, wp, color_space, quantize)
            if not exact:
                levels = levels.astype(np.float32)
            mscn = mscn_rows(levels, top - lo, bottom - lo, "replicate", peak, exact)
            n = (bottom - top) // bs
            cells = mscn.reshape(n, bs, wb, bs)  # [block row, row, block column, column]
            squares = np.square(mscn).reshape(n, bs, wb, bs)
            # Rows of the blocks are [n, wb, bs], columns [n, bs, wb]: all to [bs, n, wb].
            sides = (cells[:, 0], cells[..., -1], cells[:, -1], cells[..., 0])
            edges = np.stack(
                [s.transpose((1, 0, 2) if e % 2 else (2, 0, 1)) for e, s in enumerate(sides)],
                axis=1,
                dtype=np.float64,  # block statistics in float64 whatever the map's precision
            )
            with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 handled as in MATLAB
                out = _decide(
                    cells.sum(axis=1, dtype=np.float64).transpose(2, 0, 1),
                    squares.sum(axis=1, dtype=np.float64).transpose(2, 0, 1),
                    edges,
                    seg,
                )
            done = slice(top // bs, top // bs + n)
            variance[i, done], min_std[i, done], noisy[i, done] = out

        parallel_map(band, range(0, hp, rows))
    return torch.from_numpy(variance), torch.from_numpy(min_std), torch.from_numpy(noisy)


def _decide(col_sum, col_sq, edges, seg: int) -> tuple[np.ndarray, ...]:
    """Per block: MSCN variance, smallest edge-segment std and the noise flag.

    ``col_sum``/``col_sq``: ``[bs, ...]`` sums of each block column's samples and squares;
    ``edges``: ``[bs, 4, ...]`` top row, right column, bottom row, left column.
    """
    bs = col_sum.shape[0]
    n = bs * bs
    total, total_sq = col_sum.sum(0), col_sq.sum(0)
    variance = _sample_var(total, total_sq, n)
    # Centre: columns bs/2 and bs/2 + 1 (1-based); surround: all but bs/2 and bs/2 + 2.
    c = bs // 2 - 1
    centre = _sample_var(col_sum[c] + col_sum[c + 1], col_sq[c] + col_sq[c + 1], 2 * bs)
    surround = _sample_var(
        total - col_sum[c] - col_sum[c + 2], total_sq - col_sq[c] - col_sq[c + 2], n - 2 * bs
    )
    ratio = np.sqrt(centre) / np.sqrt(surround)
    ratio = np.where(np.isnan(ratio), 0.0, ratio)  # MATLAB: NaN (0/0) -> 0
    sigma = np.sqrt(variance)
    beta = np.abs(sigma - ratio) / np.maximum(sigma, ratio)
    noisy = sigma > 2.0 * beta
    # Runs of seg contiguous edge samples: sums of seg shifted slices (float64, exact enough
    # that the one-pass variance agrees with MATLAB's two-pass std to ~1e-15 of the run's
    # magnitude; recomputing the deviations cost a third of the CPU path's block work).
    count = bs - seg + 1
    run_sum = edges[:count] + edges[1 : 1 + count]  # seg >= 2
    run_sq = edges[:count] ** 2 + edges[1 : 1 + count] ** 2
    for k in range(2, seg):
        run_sum += edges[k : k + count]
        run_sq += edges[k : k + count] ** 2
    run_var = _sample_var(run_sum, run_sq, seg)
    min_std = np.sqrt(np.amin(run_var, (0, 1)))  # min of the stds = sqrt(min variance)
    return variance, min_std, noisy


def _sample_var(total, total_sq, n: int):
    """Unbiased variance (MATLAB ``var``/``std``: N-1) from a sum and a sum of squares."""
    return ((total_sq - total * total / n) / (n - 1)).clip(0.0)


def _blocks_to_pixels(blocks: torch.Tensor, bs: int, h: int, w: int) -> torch.Tensor:
    """``[B, hb, wb]`` -> ``[B, H, W]``: each block's value on its pixels, padding cropped."""
    return blocks.repeat_interleave(bs, dim=-2).repeat_interleave(bs, dim=-1)[..., :h, :w]

"""SSIM and MS-SSIM, faithful to Wang et al.'s reference MATLAB code.

- SSIM: Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment:
  from error visibility to structural similarity", IEEE TIP 13(4), 2004 (``ssim.m``).
- MS-SSIM: Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural similarity for
  image quality assessment", Asilomar 2003 (``msssim.m``).

Inputs are ``[B,3,H,W]`` in [0,1]; the dynamic range L is 1 (MATLAB's L=255 on 8-bit data).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..errors import InputError
from ._window import local_moments, moment_bands
from .backend import cpu_inference
from .matlab import box_downsample
from .prepare import prepare_pair

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _check_size(x: torch.Tensor, need: int, what: str) -> None:
    h, w = x.shape[-2:]
    if min(h, w) < need:
        raise InputError(f"{what} needs images of at least {need}x{need} pixels, got {w}x{h}")


def ssim_and_cs(
    x: torch.Tensor, y: torch.Tensor, win_size: int, win_sigma: float, k1: float, k2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term per image and channel, ``[B,C]`` each."""
    c1, c2 = k1 * k1, k2 * k2
    if not cpu_inference(x, y):
        s, cs = _ssim_cs_maps(*local_moments(x, y, win_size, win_sigma), c1, c2)
        return s.mean(dim=(-2, -1)), cs.mean(dim=(-2, -1))
    # CPU inference: the moments are made a band of rows at a time (memory: one band, not
    # five full maps), and pooled 64 rows at a time so that the temporaries stay in cache (4x
    # faster at 4K than whole-image maps); sums accumulate in float64 in a fixed order.
    h, w = (n - win_size + 1 for n in x.shape[-2:])
    s_sum = cs_sum = torch.zeros(x.shape[:2], dtype=torch.float64)
    for moments in moment_bands(x, y, win_size, win_sigma, _POOL_ROWS * 4):
        for top in range(0, moments[0].shape[-2], _POOL_ROWS):
            band = (m[..., top : top + _POOL_ROWS, :] for m in moments)
            s, cs = _ssim_cs_maps(*band, c1, c2)
            s_sum = s_sum + s.sum(dim=(-2, -1), dtype=torch.float64)
            cs_sum = cs_sum + cs.sum(dim=(-2, -1), dtype=torch.float64)
    return (s_sum / (h * w)).to(x.dtype), (cs_sum / (h * w)).to(x.dtype)


_POOL_ROWS = 64


def _ssim_cs_maps(
    mu_x: torch.Tensor,
    mu_y: torch.Tensor,
    e_sq: torch.Tensor,
    e_xy: torch.Tensor,
    c1: float,
    c2: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and contrast-structure maps from the local moments (Wang et al., eq. 13)."""
    mu_xy = mu_x * mu_y
    mu_sq = mu_x.square() + mu_y.square()
    cs = (2 * (e_xy - mu_xy) + c2) / (e_sq - mu_sq + c2)
    luminance = (2 * mu_xy + c1) / (mu_sq + c1)
    return luminance * cs, cs


def ssim(
    dist: torch.Tensor,
    ref: torch.Tensor,
    *,
    color_space: str = "gray",
    quantize: bool = True,
    crop_border: int = 0,
    downsample: bool = False,
    win_size: int = 11,
    win_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean SSIM of ``dist`` against ``ref`` (``[B,3,H,W]`` in [0,1]) -> ``[B]``.

    ``downsample=True`` applies ``ssim.m``'s automatic step: an f x f box filter and
    subsampling by ``f = max(1, round(min(H, W) / 256))`` before the SSIM map. Colour images
    (``color_space='rgb'``) average the per-channel SSIM.
    """
    x, y = prepare_pair(dist, ref, color_space, quantize, crop_border)
    if downsample:
        f = max(1, math.floor(min(x.shape[-2:]) / 256 + 0.5))  # MATLAB round: half away
        x, y = box_downsample(x, f), box_downsample(y, f)
    _check_size(x, win_size, "SSIM")
    return ssim_and_cs(x, y, win_size, win_sigma, k1, k2)[0].mean(dim=1)


def ms_ssim(
    dist: torch.Tensor,
    ref: torch.Tensor,
    *,
    color_space: str = "gray",
    quantize: bool = True,
    crop_border: int = 0,
    win_size: int = 11,
    win_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    scale_weights: Sequence[float] = MS_SSIM_WEIGHTS,
    pooling: str = "product",
) -> torch.Tensor:
    """Multi-scale SSIM as ``msssim.m`` -> ``[B]``.

    Between scales both images go through MATLAB's 2x2 box filter with 'symmetric' borders
    and keep every second sample. ``pooling='product'`` (the paper's formula and
    ``msssim.m``'s default) multiplies ``cs_1^w1 ... cs_4^w4 * ssim_5^w5``; negative means
    (anti-correlated images only) are clamped to 0 first, where MATLAB would return a complex
    number. ``pooling='wtd_sum'`` is ``msssim.m``'s other method: the same terms summed with
    the weights normalised to sum to 1.
    """
    x, y = prepare_pair(dist, ref, color_space, quantize, crop_border)
    levels = len(scale_weights)
    _check_size(x, win_size * 2 ** (levels - 1), f"MS-SSIM with {levels} scales")
    terms = []
    for level in range(levels):
        s, cs = ssim_and_cs(x, y, win_size, win_sigma, k1, k2)
        terms.append(s if level == levels - 1 else cs)
        if level < levels - 1:
            x, y = box_downsample(x, 2), box_downsample(y, 2)
    terms = torch.stack(terms, dim=-1)  # [B, C, levels]
    weights = torch.tensor(scale_weights, dtype=terms.dtype, device=terms.device)
    if pooling == "product":
        score = (terms.clamp(min=0) ** weights).prod(dim=-1)
    elif pooling == "wtd_sum":
        score = (terms * (weights / weights.sum())).sum(dim=-1)
    else:
        raise ValueError(f"pooling must be 'product' or 'wtd_sum', got {pooling!r}")
    return score.mean(dim=1)

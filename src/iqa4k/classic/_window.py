"""Local Gaussian statistics of two images: the shared core of SSIM and MS-SSIM.

Two interchangeable back ends compute the 'valid' Gaussian-filtered moment maps of Wang's
``ssim.m`` (``filter2(window, ., 'valid')``): a differentiable torch one (any device) and one
for CPU inference that filters in plain IEEE arithmetic (``separable.valid_filter``), so
that the scores are the same bits on every SIMD path and thread count. Both return the same
numbers (tested to 1e-10 in float64).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from .backend import cpu_inference
from .matlab import fspecial_gaussian_1d
from .separable import valid_filter


def local_moments(
    x: torch.Tensor, y: torch.Tensor, win_size: int, sigma: float
) -> tuple[torch.Tensor, ...]:
    """Valid-filtered ``mu_x, mu_y, E[x^2 + y^2], E[xy]`` of ``[B,C,H,W]`` inputs.

    SSIM only needs the sum of the two second moments, which saves one filter pass.
    """
    if cpu_inference(x, y):
        return _moments_cpu(x, y, win_size, sigma)
    g = fspecial_gaussian_1d(win_size, sigma).to(x)
    maps = torch.cat([x, y, x * x + y * y, x * y], dim=1)
    c = maps.shape[1]
    maps = F.conv2d(maps, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    maps = F.conv2d(maps, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return maps.chunk(4, dim=1)


def _moments_cpu(
    x: torch.Tensor, y: torch.Tensor, win_size: int, sigma: float
) -> tuple[torch.Tensor, ...]:
    g = fspecial_gaussian_1d(win_size, sigma).numpy()
    h, w = x.shape[-2:]
    valid = (h - win_size + 1, w - win_size + 1)
    outs = []
    for source in (x, y, x * x + y * y, x * y):
        out = x.new_empty(*x.shape[:-2], *valid)
        for plane, o in zip(source.contiguous().view(-1, h, w), out.view(-1, *valid), strict=True):
            valid_filter(plane, g, out=o)
        outs.append(out)
    return tuple(outs)


def moment_bands(
    x: torch.Tensor, y: torch.Tensor, win_size: int, sigma: float, rows: int
) -> Iterator[tuple[torch.Tensor, ...]]:
    """:func:`local_moments` (CPU back end) ``rows`` output rows at a time, top to bottom.

    Each band is filtered from its input rows plus the window's halo, so the values are those
    of the whole-image maps while memory holds one band of maps, not five images' worth.
    """
    h = x.shape[-2]
    halo = win_size - 1
    for top in range(0, h - halo, rows):
        bottom = min(top + rows, h - halo) + halo
        yield _moments_cpu(x[..., top:bottom, :], y[..., top:bottom, :], win_size, sigma)

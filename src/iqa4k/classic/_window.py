"""Local Gaussian statistics of two images: the shared core of SSIM and MS-SSIM.

Two interchangeable back ends compute the five 'valid' Gaussian-filtered maps of Wang's
``ssim.m`` (``filter2(window, ., 'valid')``): a differentiable torch one (any device) and an
OpenCV one for CPU inference, several times faster at 4K because ``cv2.sepFilter2D`` is a
tuned, multithreaded separable filter while ``torch.conv2d`` is not specialised for 1-D
kernels. Both return the same numbers (tested to 1e-10 in float64).
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .backend import cpu_inference, parallel_map
from .matlab import fspecial_gaussian_1d

_BORDER = cv2.BORDER_REFLECT  # any mode: the border samples are cropped away


def local_moments(
    x: torch.Tensor, y: torch.Tensor, win_size: int, sigma: float
) -> tuple[torch.Tensor, ...]:
    """Valid-filtered ``mu_x, mu_y, E[x^2 + y^2], E[xy]`` of ``[B,C,H,W]`` inputs.

    SSIM only needs the sum of the two second moments, which saves one filter pass.
    """
    if cpu_inference(x, y):
        return _moments_cv2(x, y, win_size, sigma)
    g = fspecial_gaussian_1d(win_size, sigma).to(x)
    maps = torch.cat([x, y, x * x + y * y, x * y], dim=1)
    c = maps.shape[1]
    maps = F.conv2d(maps, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    maps = F.conv2d(maps, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return maps.chunk(4, dim=1)


def _moments_cv2(
    x: torch.Tensor, y: torch.Tensor, win_size: int, sigma: float
) -> tuple[torch.Tensor, ...]:
    dtype = np.float64 if x.dtype == torch.float64 else np.float32
    g = fspecial_gaussian_1d(win_size, sigma).numpy().astype(dtype)
    # Products in torch: multithreaded, unlike numpy's.
    sources = [
        t.contiguous().numpy().astype(dtype, copy=False) for t in (x, y, x * x + y * y, x * y)
    ]
    outs = [np.empty_like(src) for src in sources]

    def filter_map(k: int) -> None:
        for i in range(sources[k].shape[0]):
            for j in range(sources[k].shape[1]):
                cv2.sepFilter2D(sources[k][i, j], -1, g, g, dst=outs[k][i, j], borderType=_BORDER)

    # Two maps at a time: cv2.sepFilter2D leaves a core idle much of the time (measured 25%
    # faster at 4K), and it releases the GIL.
    parallel_map(filter_map, range(len(sources)))
    # A 'same' filter cropped by the window radius is exactly MATLAB's 'valid' filter.
    r = win_size // 2
    h, w = x.shape[-2:]
    return tuple(torch.from_numpy(out)[..., r : h - r, r : w - r] for out in outs)


def moment_bands(
    x: torch.Tensor, y: torch.Tensor, win_size: int, sigma: float, rows: int
) -> Iterator[tuple[torch.Tensor, ...]]:
    """:func:`local_moments` (OpenCV back end) ``rows`` output rows at a time, top to bottom.

    Each band is filtered from its input rows plus the window's halo, so the values are those
    of the whole-image maps while memory holds one band of maps, not five images' worth.
    """
    h = x.shape[-2]
    halo = win_size - 1
    for top in range(0, h - halo, rows):
        bottom = min(top + rows, h - halo) + halo
        yield _moments_cv2(x[..., top:bottom, :], y[..., top:bottom, :], win_size, sigma)

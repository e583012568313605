"""Local Gaussian statistics of two images: the shared core of SSIM and MS-SSIM.

Two interchangeable back ends compute the five 'valid' Gaussian-filtered maps of Wang's
``ssim.m`` (``filter2(window, ., 'valid')``): a differentiable torch one (any device) and an
OpenCV one for CPU inference, several times faster at 4K because ``cv2.sepFilter2D`` is a
tuned, multithreaded separable filter while ``torch.conv2d`` is not specialised for 1-D
kernels. Both return the same numbers (tested to 1e-10 in float64).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..matlab import fspecial_gaussian_1d


def wants_autograd(*tensors: torch.Tensor) -> bool:
    """True when the caller will differentiate through the result."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def local_moments(
    x: torch.Tensor, y: torch.Tensor, win_size: int, sigma: float
) -> tuple[torch.Tensor, ...]:
    """Valid-filtered ``mu_x, mu_y, E[x^2], E[y^2], E[xy]`` of ``[B,C,H,W]`` inputs."""
    if x.device.type == "cpu" and not wants_autograd(x, y):
        return _moments_cv2(x, y, win_size, sigma)
    g = fspecial_gaussian_1d(win_size, sigma).to(x)
    maps = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    c = maps.shape[1]
    maps = F.conv2d(maps, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    maps = F.conv2d(maps, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return maps.chunk(5, dim=1)


def _moments_cv2(
    x: torch.Tensor, y: torch.Tensor, win_size: int, sigma: float
) -> tuple[torch.Tensor, ...]:
    dtype = np.float64 if x.dtype == torch.float64 else np.float32
    g = fspecial_gaussian_1d(win_size, sigma).numpy().astype(dtype)
    xs = x.detach().contiguous().numpy().astype(dtype, copy=False)
    ys = y.detach().contiguous().numpy().astype(dtype, copy=False)
    outs = [np.empty_like(xs) for _ in range(5)]
    for i in range(xs.shape[0]):
        for j in range(xs.shape[1]):
            a, b = xs[i, j], ys[i, j]
            for out, src in zip(outs, (a, b, a * a, b * b, a * b), strict=True):
                cv2.sepFilter2D(src, -1, g, g, dst=out[i, j], borderType=cv2.BORDER_REFLECT)
    # A 'same' filter cropped by the window radius is exactly MATLAB's 'valid' filter.
    r = win_size // 2
    h, w = xs.shape[-2:]
    return tuple(torch.from_numpy(out)[..., r : h - r, r : w - r] for out in outs)

"""Colour conversions with MATLAB's exact coefficients.

Every metric that works on one channel calls :func:`to_channels`, so the meaning of
``color_space`` is defined here once:

- ``rgb``: the three channels as given.
- ``gray``: MATLAB ``rgb2gray`` (the Y of NTSC YIQ), what Wang's ``ssim.m`` and the LIVE
  releases of NIQE/BRISQUE are fed in the published reference values.
- ``y``: BT.601 studio-swing luma as MATLAB ``rgb2ycbcr`` (range [16, 235] / 255), what
  super-resolution papers evaluate PSNR/SSIM on.

MATLAB returns ``uint8`` from both functions for ``uint8`` input, i.e. it rounds the luma to
the 8-bit grid. ``quantize=True`` reproduces that rounding (with a straight-through gradient,
so the conversion stays usable in a loss).
"""

from __future__ import annotations

import torch

COLOR_SPACES = ("rgb", "gray", "y")

# First row of inv([1 .956 .621; 1 -.272 -.647; 1 -1.106 1.703]), as MATLAB rgb2gray computes it.
RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
# MATLAB rgb2ycbcr, luma row, for RGB in [0, 1] and Y in [0, 255]: Y = 16 + 65.481 R + ...
RGB2Y_BT601 = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0


def round_to_uint8_grid(x: torch.Tensor) -> torch.Tensor:
    """Round [0,1] values to multiples of 1/255 as MATLAB's uint8 conversion does.

    MATLAB rounds half away from zero (torch.round rounds half to even); the values are
    non-negative, so floor(v + 0.5) is that rule. The gradient passes straight through.
    """
    q = torch.floor(x.detach() * 255.0 + 0.5).clamp_(0, 255) / 255.0
    return x + (q - x).detach() if x.requires_grad else q


def _weighted_sum(x: torch.Tensor, weights: tuple[float, float, float]) -> torch.Tensor:
    # Accumulating in place avoids two full-size temporaries (4x faster at 4K).
    out = x[:, 0:1] * weights[0]
    out.add_(x[:, 1:2], alpha=weights[1])
    return out.add_(x[:, 2:3], alpha=weights[2])


def rgb_to_gray(x: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """MATLAB ``rgb2gray`` of ``[B,3,H,W]`` in [0,1] -> ``[B,1,H,W]`` in [0,1]."""
    gray = _weighted_sum(x, RGB2GRAY)
    return round_to_uint8_grid(gray) if quantize else gray


def rgb_to_y(x: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """BT.601 luma as MATLAB ``rgb2ycbcr(...)(:,:,1)``: ``[B,3,H,W]`` -> ``[B,1,H,W]`` in [0,1]."""
    y = (_weighted_sum(x, RGB2Y_BT601) + Y_OFFSET) / 255.0
    return round_to_uint8_grid(y) if quantize else y


def to_channels(x: torch.Tensor, color_space: str, quantize: bool = True) -> torch.Tensor:
    """Return the channels a metric is computed on, per ``color_space`` (see module doc)."""
    if color_space == "rgb":
        return x
    if color_space == "gray":
        return rgb_to_gray(x, quantize)
    if color_space == "y":
        return rgb_to_y(x, quantize)
    raise ValueError(f"color_space must be one of {COLOR_SPACES}, got {color_space!r}")

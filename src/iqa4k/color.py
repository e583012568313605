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

from .layout import planar_rows

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
    q = _round_255(x.detach() * 255.0)
    return x + (q - x).detach() if x.requires_grad else q


def _round_255(scaled: torch.Tensor) -> torch.Tensor:
    """Values in [0,255] (a fresh tensor, modified in place) -> rounded, back in [0,1]."""
    return scaled.add_(0.5).floor_().clamp_(0, 255).div_(255.0)


def _luma(x: torch.Tensor, weights: tuple[float, ...], offset: float, quantize: bool):
    """``offset + sum(w * channel)`` on the [0,255] scale, optionally rounded, as [0,1].

    The offset and rounding are applied in place on the weighted sum.
    """
    out = _weighted_sum(x, weights)
    if offset:
        out.add_(offset)
    if not quantize:
        return out.div_(255.0)
    if x.requires_grad:  # straight-through: round the value, keep the gradient of the luma
        return round_to_uint8_grid(out / 255.0)
    return _round_255(out)


_BAND_ROWS = 64  # rows at a time: a 4K band and its temporaries stay in cache


def _weighted_sum(x: torch.Tensor, weights: tuple[float, ...]) -> torch.Tensor:
    """``sum(w * channel)`` -> ``[B,1,H,W]``. On the CPU without gradients, band by band in
    planes (:func:`iqa4k.layout.planar_rows`): the temporaries stay in cache and channels-last
    input is read in one pass; the values are those of the whole-image expression."""
    if x.requires_grad or x.device.type != "cpu":
        return _products_added(x[:, 0:1], x[:, 1:2], x[:, 2:3], weights)
    out = x.new_empty((x.shape[0], 1, *x.shape[2:]))
    for image, target in zip(x, out, strict=True):
        for band, planes in planar_rows(image, _BAND_ROWS):
            r, g, b = (torch.from_numpy(p) for p in planes)
            target[0, band] = _products_added(r, g, b, weights)
    return out


def _products_added(
    r: torch.Tensor, g: torch.Tensor, b: torch.Tensor, weights: tuple[float, ...]
) -> torch.Tensor:
    """``w0 r + w1 g + w2 b``, each product and each sum rounded on its own: torch's ``add``
    with ``alpha`` is a fused multiply-add on FMA CPUs only, so its last bits follow the CPU."""
    return r * weights[0] + g * weights[1] + b * weights[2]


def rgb_to_gray(x: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """MATLAB ``rgb2gray`` of ``[B,3,H,W]`` in [0,1] -> ``[B,1,H,W]`` in [0,1]."""
    return _luma(x, tuple(255.0 * w for w in RGB2GRAY), 0.0, quantize)


def rgb_to_y(x: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """BT.601 luma as MATLAB ``rgb2ycbcr(...)(:,:,1)``: ``[B,3,H,W]`` -> ``[B,1,H,W]`` in [0,1]."""
    return _luma(x, RGB2Y_BT601, Y_OFFSET, quantize)


def to_channels(x: torch.Tensor, color_space: str, quantize: bool = True) -> torch.Tensor:
    """Return the channels a metric is computed on, per ``color_space`` (see module doc)."""
    if color_space == "rgb":
        return x
    if color_space == "gray":
        return rgb_to_gray(x, quantize)
    if color_space == "y":
        return rgb_to_y(x, quantize)
    raise ValueError(f"color_space must be one of {COLOR_SPACES}, got {color_space!r}")

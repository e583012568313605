"""Steps every full-reference classical metric shares."""

from __future__ import annotations

import torch

from ..color import to_channels
from ..errors import InputError


def shave(x: torch.Tensor, crop_border: int) -> torch.Tensor:
    """``x`` less ``crop_border`` pixels on each side; an error when nothing would be left."""
    if not crop_border:
        return x
    h, w = x.shape[-2:]
    if min(h, w) <= 2 * crop_border:
        raise InputError(f"crop_border={crop_border} leaves nothing of a {w}x{h} image")
    return x[..., crop_border:-crop_border, crop_border:-crop_border]


def prepare_pair(
    dist: torch.Tensor, ref: torch.Tensor, color_space: str, quantize: bool, crop_border: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert both images to the metric's channels and shave ``crop_border`` pixels per side.

    Shaving the border is the super-resolution convention (``crop_border = scale``): the
    upscaler's border handling is not what the comparison is about.
    """
    shave(dist, crop_border)  # refuse before converting
    x = to_channels(dist, color_space, quantize)
    y = to_channels(ref, color_space, quantize)
    return shave(x, crop_border), shave(y, crop_border)

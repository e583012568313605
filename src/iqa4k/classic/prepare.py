"""Steps every full-reference classical metric shares."""

from __future__ import annotations

import torch

from ..color import to_channels


def prepare_pair(
    dist: torch.Tensor, ref: torch.Tensor, color_space: str, quantize: bool, crop_border: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert both images to the metric's channels and shave ``crop_border`` pixels per side.

    Shaving the border is the super-resolution convention (``crop_border = scale``): the
    upscaler's border handling is not what the comparison is about.
    """
    x = to_channels(dist, color_space, quantize)
    y = to_channels(ref, color_space, quantize)
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        y = y[..., crop_border:-crop_border, crop_border:-crop_border]
    return x, y

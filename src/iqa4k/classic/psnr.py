"""Peak signal-to-noise ratio, as MATLAB ``psnr(dist, ref)``: one MSE over all samples."""

from __future__ import annotations

import math

import cv2
import torch

from .backend import cpu_inference
from .prepare import prepare_pair


def psnr(
    dist: torch.Tensor,
    ref: torch.Tensor,
    *,
    color_space: str = "rgb",
    quantize: bool = True,
    crop_border: int = 0,
) -> torch.Tensor:
    """PSNR in dB of ``[B,3,H,W]`` images in [0,1] (peak 1) -> ``[B]``; identical gives inf."""
    x, y = prepare_pair(dist, ref, color_space, quantize, crop_border)
    # Squared errors are summed in float64: a 4K image has 25M samples.
    if cpu_inference(x, y):
        # One fused pass (cv2.norm), about 10x faster than torch's subtract-square-mean.
        sse = [cv2.norm(_as_2d(a), _as_2d(b), cv2.NORM_L2SQR) for a, b in zip(x, y, strict=True)]
        mse = torch.tensor(sse, dtype=torch.float64) / x[0].numel()
    else:
        mse = (x - y).square().flatten(1).sum(1, dtype=torch.float64) / x[0].numel()
    # Identical images: inf, with a zero gradient (not 0 * inf = NaN), as a loss needs.
    zero = mse == 0
    value = -10.0 * torch.log10(torch.where(zero, torch.ones_like(mse), mse))
    return torch.where(zero, torch.full_like(value, math.inf), value).to(x.dtype)


def _as_2d(image: torch.Tensor):
    """A ``[C,H,W]`` tensor as a 2-D numpy array over the same samples (for OpenCV)."""
    array = image.detach().contiguous().numpy()
    return array.reshape(-1, array.shape[-1])

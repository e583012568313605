"""Peak signal-to-noise ratio, as MATLAB ``psnr(dist, ref)``: one MSE over all samples."""

from __future__ import annotations

import torch

from ._common import prepare_pair


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
    # Accumulate in float64: a 4K image has 25M samples and float32 sums drift by ~1e-4 dB.
    mse = (
        torch.nn.functional.mse_loss(x, y, reduction="none").flatten(1).mean(1, dtype=torch.float64)
    )
    return (-10.0 * torch.log10(mse)).to(x.dtype)

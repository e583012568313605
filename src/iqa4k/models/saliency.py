"""A saliency-driven crop: the most salient square window of an image, by spectral residual.

UIQA's paper describes its third branch as a crop around the salient region, but the official
code takes a centre crop. This module offers the crop the paper describes, with the spectral
residual detector (X. Hou, L. Zhang, "Saliency detection: a spectral residual approach", CVPR
2007): it needs no trained weights (so nothing to download or license), is deterministic, and
works on a 64-pixel-wide thumbnail: only the grey conversion and the area downscale touch
every pixel of a 4K or 8K input.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..color import rgb_to_gray

MAP_WIDTH = 64  # the paper's thumbnail width
SMOOTHING_SIGMA = 8.0  # the paper's Gaussian on the saliency map, in thumbnail pixels


def spectral_residual(image: torch.Tensor) -> np.ndarray:
    """Saliency map of a ``[3,H,W]`` image in [0, 1], ``MAP_WIDTH`` wide, summing to 1."""
    gray = rgb_to_gray(image[None].double(), quantize=False)[0, 0].cpu().numpy()
    height, width = gray.shape
    thumb_h = max(1, round(height * MAP_WIDTH / width))
    thumb = cv2.resize(gray, (MAP_WIDTH, thumb_h), interpolation=cv2.INTER_AREA)
    spectrum = np.fft.fft2(thumb)
    log_amplitude = np.log(np.abs(spectrum) + 1e-12)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3), borderType=cv2.BORDER_REPLICATE)
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = cv2.GaussianBlur(saliency, (0, 0), SMOOTHING_SIGMA)
    return saliency / saliency.sum()


def salient_window(image: torch.Tensor, size: int) -> tuple[int, int]:
    """``(top, left)`` of the ``size`` x ``size`` window holding the most saliency.

    The window is searched on the saliency map with an integral image (every position), then
    mapped back to full resolution; an image smaller than ``size`` gives ``(0, 0)``.
    """
    _, height, width = image.shape
    if height <= size and width <= size:
        return 0, 0
    saliency = spectral_residual(image)
    scale = saliency.shape[1] / width
    win_h = min(saliency.shape[0], max(1, round(size * scale)))
    win_w = min(saliency.shape[1], max(1, round(size * scale)))
    integral = cv2.integral(saliency)
    sums = (
        integral[win_h:, win_w:]
        - integral[:-win_h, win_w:]
        - integral[win_h:, :-win_w]
        + integral[:-win_h, :-win_w]
    )
    row, col = np.unravel_index(int(np.argmax(sums)), sums.shape)
    top = min(max(0, round(row / scale)), max(0, height - size))
    left = min(max(0, round(col / scale)), max(0, width - size))
    return int(top), int(left)

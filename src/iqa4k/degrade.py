"""Deterministic degradations of the kind super-resolution and compression produce.

Every function takes a ``[3,H,W]`` (or ``[B,3,H,W]``) float tensor in [0, 1] and returns a
tensor of the same shape, clamped to [0, 1]. The same input and arguments always give the same
output, so the demo, the tests and the benchmarks can rely on the ordering of the scores.
"""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import InputError, OptionError
from .io import to_8bit_hwc

__all__ = ["gaussian_blur", "gaussian_noise", "jpeg", "resample", "sr_suite"]

RESAMPLE_METHODS = ("nearest", "bilinear", "bicubic")
# torch's plain 'nearest' picks floor(i * scale), a half-pixel shift; 'nearest-exact' samples
# at pixel centres as PIL and OpenCV do, which is what an SR "nearest" baseline means.
_TORCH_MODE = {"nearest": "nearest-exact", "bilinear": "bilinear", "bicubic": "bicubic"}


def _as_batch(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``x`` as ``[B,3,H,W]`` float, and whether it was a single ``[3,H,W]`` image."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise InputError("expected a float tensor in [0, 1]")
    if x.ndim == 3:
        return x.unsqueeze(0), True
    if x.ndim == 4:
        return x, False
    raise InputError(f"expected a [3,H,W] or [B,3,H,W] tensor, got shape {tuple(x.shape)}")


def _restore(y: torch.Tensor, single: bool) -> torch.Tensor:
    y = y.clamp(0.0, 1.0)
    return y[0] if single else y


def resample(x: torch.Tensor, factor: int, method: str = "bicubic") -> torch.Tensor:
    """Downscale by ``factor`` (antialiased bicubic), then upscale back with ``method``.

    This is the classic SR test input: the small image is what an upscaler would receive, and
    ``method`` ('nearest' | 'bilinear' | 'bicubic') is the interpolation baseline.
    """
    if method not in RESAMPLE_METHODS:
        raise OptionError(f"method must be one of {RESAMPLE_METHODS}, got {method!r}")
    if int(factor) != factor or factor < 1:
        raise OptionError(f"factor must be a positive integer, got {factor!r}")
    b, single = _as_batch(x)
    h, w = b.shape[-2:]
    small = (max(1, round(h / factor)), max(1, round(w / factor)))
    # Antialiasing low-passes before decimating, as MATLAB imresize and PIL do; without it the
    # small image aliases and the comparison would be about aliasing, not interpolation.
    down = F.interpolate(b, size=small, mode="bicubic", antialias=True, align_corners=False)
    down = down.clamp(0.0, 1.0)  # bicubic overshoots; the small image is a real 8-bit-ish image
    mode = _TORCH_MODE[method]
    kwargs = {} if mode == "nearest-exact" else {"align_corners": False}
    up = F.interpolate(down, size=(h, w), mode=mode, **kwargs)
    return _restore(up, single)


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode as JPEG at ``quality`` (1-95) with Pillow's defaults and decode, in memory."""
    if int(quality) != quality or not 1 <= quality <= 100:
        raise OptionError(f"quality must be an integer in [1, 100], got {quality!r}")
    b, single = _as_batch(x)
    out = []
    for img in b:
        buf = io.BytesIO()
        pixels = to_8bit_hwc(img.detach().cpu()).numpy()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        with Image.open(buf) as decoded:
            back = np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255.0
        out.append(torch.from_numpy(back).permute(2, 0, 1))
    y = torch.stack(out).to(device=b.device, dtype=b.dtype)
    return _restore(y, single)


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, math.ceil(3.0 * sigma))  # +-3 sigma holds 99.7% of the mass
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with standard deviation ``sigma`` pixels (mirrored borders).

    Computed by OpenCV on the CPU whatever the tensor's device, so every device gives the same
    result; on a 4K frame it is several times faster than torch's grouped conv2d. Not
    differentiable.
    """
    if not sigma > 0:
        raise OptionError(f"sigma must be > 0, got {sigma!r}")
    b, single = _as_batch(x)
    k = _gaussian_kernel(float(sigma))
    out = []
    for img in b.detach().cpu():
        hwc = np.ascontiguousarray(img.permute(1, 2, 0).numpy())
        # BORDER_REFLECT_101 mirrors without repeating the edge pixel (torch's 'reflect').
        blurred = cv2.sepFilter2D(hwc, -1, k, k, borderType=cv2.BORDER_REFLECT_101)
        out.append(torch.from_numpy(blurred.reshape(hwc.shape)).permute(2, 0, 1))
    y = torch.stack(out).to(device=b.device, dtype=b.dtype)
    return _restore(y, single)


def gaussian_noise(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Add white Gaussian noise of standard deviation ``sigma`` (in [0,1] units), seeded."""
    if not sigma >= 0:
        raise OptionError(f"sigma must be >= 0, got {sigma!r}")
    b, single = _as_batch(x)
    # A private CPU generator: same noise for the same seed on any device, global RNG untouched.
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(b.shape, generator=gen, dtype=torch.float32)
    y = b + float(sigma) * noise.to(device=b.device, dtype=b.dtype)
    return _restore(y, single)


def sr_suite(x: torch.Tensor, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """The demo's 15 degraded versions of ``x``, as (name, tensor), in a fixed order.

    x2/x4/x8 with nearest/bilinear/bicubic upscaling, JPEG q10/q30, blur sigma 1/2 and noise
    sigma 0.02/0.05. Names are file-name safe (no dots) so they survive as PNG stems.
    """
    suite = []
    for factor in (2, 4, 8):
        for method in RESAMPLE_METHODS:
            suite.append((f"x{factor}_{method}", resample(x, factor, method)))
    for quality in (10, 30):
        suite.append((f"jpeg_q{quality}", jpeg(x, quality)))
    for sigma in (1, 2):
        suite.append((f"blur_s{sigma}", gaussian_blur(x, sigma)))
    for sigma in (0.02, 0.05):
        # Percent in the name: "noise_s2pct" reads well and has no dot in it.
        suite.append((f"noise_s{round(sigma * 100)}pct", gaussian_noise(x, sigma, seed)))
    return suite

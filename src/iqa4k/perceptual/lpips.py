"""LPIPS (Zhang et al., CVPR 2018), version 0.1, as the reference ``lpips`` package computes it.

Both images go from [0, 1] to [-1, 1] and through the package's scaling layer, then through
an ImageNet backbone (AlexNet or VGG16, torchvision's layers) tapped after five ReLUs. At each
tap the features are unit-normalised along channels (``x / (||x|| + 1e-10)``), the squared
difference is weighted per channel by the calibrated 1x1 "lin" layer, averaged over the
positions, and the five layer values are summed. Lower is better; 0 for identical images.

Large images go through the backbone in exact row bands (:mod:`.bands`): the averages are
those of the whole image.

The lin weights ship with iqa4k (``assets/lpips_v0.1_lin.npz``, from the ``lpips`` 0.1.4
package, BSD-2-Clause); the backbone comes from the weights cache (torchvision's files).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import torch
from torch import nn

from ..metric_spec import Setup
from .backbone import Backbone
from .bands import banded, reaches

# The reference package's ScalingLayer, applied after mapping [0, 1] to [-1, 1].
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10  # normalize_tensor's epsilon


class LPIPS(nn.Module):
    """The LPIPS network: backbone slices and the five calibrated lin weights."""

    def __init__(self, net: str) -> None:
        super().__init__()
        self.backbone = Backbone(net)
        self.taps = reaches(self.backbone.slices)
        for i, w in enumerate(_lin_weights(net)):
            self.register_buffer(f"lin{i}", torch.from_numpy(w.copy()))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor, max_pixels: int = 0) -> torch.Tensor:
        """``[B]`` LPIPS of ``x`` against ``y`` (``[B,3,H,W]`` in [0, 1]), in row bands of
        about ``max_pixels`` when the image is larger (0: whole image)."""
        sums = [x.new_zeros(x.shape[0], dtype=torch.float64) for _ in self.taps]
        counts = [0] * len(self.taps)
        for i, (a, b) in banded(self._taps, (x, y), self.taps, max_pixels):
            diff = (_unit(a) - _unit(b)).square()
            weighted = (diff * getattr(self, f"lin{i}")).sum(dim=1)  # the 1x1 conv, no bias
            sums[i] = sums[i] + weighted.sum(dim=(-2, -1), dtype=torch.float64)
            counts[i] += weighted.shape[-2] * weighted.shape[-1]
        return sum(s / n for s, n in zip(sums, counts, strict=True)).to(x.dtype)

    def _taps(self, *images: torch.Tensor) -> Iterator[list[torch.Tensor]]:
        return self.backbone.taps(*(((2 * x - 1) - self.shift) / self.scale for x in images))


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f / (f.square().sum(dim=1, keepdim=True).sqrt() + EPS)


@cache
def _lin_weights(net: str) -> list[np.ndarray]:
    asset = resources.files("iqa4k") / "assets" / "lpips_v0.1_lin.npz"
    with resources.as_file(asset) as path, np.load(path) as data:
        return [data[f"{net}_lin{i}"] for i in range(5)]


def setup(net: str):
    """The metric setup of ``lpips`` (``alex``) or ``lpips_vgg`` (``vgg``)."""

    def prepare(options: Mapping[str, Any]) -> Setup:
        model = LPIPS(net)
        model.backbone.load(options.get("backbone", ""), options.get("download", False))
        model = model.eval().requires_grad_(False)
        return Setup(
            call={"model": model, "max_pixels": options["band_pixels"]}, modules={"model": model}
        )

    return prepare


def lpips(dist: torch.Tensor, ref: torch.Tensor, *, model: LPIPS, max_pixels: int) -> torch.Tensor:
    """LPIPS of ``dist`` against ``ref`` (``[B,3,H,W]`` in [0, 1]) -> ``[B]``."""
    return model(dist, ref.to(dist.device), max_pixels)

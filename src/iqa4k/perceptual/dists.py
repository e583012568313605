"""DISTS (Ding et al., TPAMI 2020), as the reference ``DISTS_pytorch`` 0.1 package computes it.

The image (in [0, 1]) and VGG16's five ReLU taps (ImageNet-normalised input, max pooling
replaced by an L2 pooling, torchvision's weights) give six feature sets. Per channel, a
"texture" term compares the global means ``(2 mx my + c) / (mx^2 + my^2 + c)`` and a
"structure" term the global (co)variances ``(2 cov + c) / (vx + vy + c)``, with c = 1e-6; the
score is one minus their weighted sum (the learnt alpha and beta, normalised to sum to 1).
Lower is better; 0 for identical images.

The means and (co)variances are accumulated over exact row bands (:mod:`.bands`), each band's
centred sums merged with the pairwise update of Chan et al., so a 4K image needs a few GB at
most and gives the whole image's statistics.

alpha and beta ship with iqa4k (``assets/dists_alpha_beta.npz``, from the DISTS_pytorch 0.1
package, MIT); the backbone comes from the weights cache (torchvision's VGG16 file).
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
from .bands import Reach, banded, reaches

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
C1 = C2 = 1e-6
CHANNELS = (3, 64, 128, 256, 512, 512)  # the image, then the five taps


class DISTS(nn.Module):
    """VGG16 with L2 pooling and the learnt per-channel weights of the two terms."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = Backbone("vgg", l2_pool=True)
        self.taps = [Reach(1, 0, 0), *reaches(self.backbone.slices)]
        # normalised in float64, so that identical images score 0 to 1e-16 (the reference
        # divides in float32: 7e-8)
        alpha, beta = (torch.from_numpy(w.astype(np.float64)) for w in _alpha_beta())
        total = alpha.sum() + beta.sum()
        self.register_buffer("alpha", alpha.flatten() / total)
        self.register_buffer("beta", beta.flatten() / total)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor, max_pixels: int = 0) -> torch.Tensor:
        """``[B]`` DISTS of ``x`` against ``y`` (``[B,3,H,W]`` in [0, 1]), in row bands of about
        ``max_pixels`` when the image is larger (0: whole image)."""
        moments = [_Moments() for _ in self.taps]
        for k, (a, b) in banded(self._taps, (x, y), self.taps, max_pixels):
            moments[k].add(a, b)
        texture = torch.cat([m.texture() for m in moments], dim=1)
        structure = torch.cat([m.structure() for m in moments], dim=1)
        score = 1 - (texture * self.alpha).sum(1) - (structure * self.beta).sum(1)
        return score.to(x.dtype)

    def _taps(self, *images: torch.Tensor) -> Iterator[list[torch.Tensor]]:
        yield list(images)
        yield from self.backbone.taps(*((x - self.mean) / self.std for x in images))


class _Moments:
    """Per-channel means, variances and covariance of two feature maps, band by band: each
    band is centred on its own means (as the reference centres on the whole image's) and
    merged into the running totals."""

    def __init__(self) -> None:
        self.n = 0
        self.mx = self.my = self.vx = self.vy = self.cxy = 0.0  # sums of centred products

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        n = x.shape[-2] * x.shape[-1]
        if n == 0:
            return
        mx, my = x.mean((2, 3), keepdim=True), y.mean((2, 3), keepdim=True)
        dx, dy = x - mx, y - my
        # float32 sums (as the reference's means), merged in float64
        vx, vy, cxy = ((a * b).sum((2, 3)).double() for a, b in ((dx, dx), (dy, dy), (dx, dy)))
        mx, my = mx.flatten(1).double(), my.flatten(1).double()
        if self.n == 0:
            self.n, self.mx, self.my, self.vx, self.vy, self.cxy = n, mx, my, vx, vy, cxy
            return
        total = self.n + n
        ex, ey = mx - self.mx, my - self.my
        w = self.n * n / total
        self.vx = self.vx + vx + ex * ex * w
        self.vy = self.vy + vy + ey * ey * w
        self.cxy = self.cxy + cxy + ex * ey * w
        self.mx = self.mx + ex * n / total
        self.my = self.my + ey * n / total
        self.n = total

    def texture(self) -> torch.Tensor:
        return (2 * self.mx * self.my + C1) / (self.mx.square() + self.my.square() + C1)

    def structure(self) -> torch.Tensor:
        return (2 * self.cxy + C2 * self.n) / (self.vx + self.vy + C2 * self.n)


@cache
def _alpha_beta() -> tuple[np.ndarray, np.ndarray]:
    asset = resources.files("iqa4k") / "assets" / "dists_alpha_beta.npz"
    with resources.as_file(asset) as path, np.load(path) as data:
        return data["alpha"], data["beta"]


def _upper() -> float:
    # texture terms are >= 0 (the features are), structure terms >= -1
    alpha, beta = _alpha_beta()
    return float(1 + beta.sum(dtype=np.float64) / (alpha.sum(dtype=np.float64) + beta.sum()))


UPPER = _upper()  # the largest score: no shared texture, opposite structure


def prepare(options: Mapping[str, Any]) -> Setup:
    """The metric setup of ``dists``: the network with its ImageNet backbone."""
    model = DISTS()
    model.backbone.load(options.get("backbone", ""), options.get("download", False))
    model = model.eval().requires_grad_(False)
    return Setup(
        call={"model": model, "max_pixels": options["band_pixels"]}, modules={"model": model}
    )


def dists(dist: torch.Tensor, ref: torch.Tensor, *, model: DISTS, max_pixels: int) -> torch.Tensor:
    """DISTS of ``dist`` against ``ref`` (``[B,3,H,W]`` in [0, 1]) -> ``[B]``."""
    return model(dist, ref.to(dist.device), max_pixels)

"""LPIPS (Zhang et al., CVPR 2018), version 0.1, as the reference ``lpips`` package computes it.

Both images go from [0, 1] to [-1, 1] and through the package's scaling layer, then through
an ImageNet backbone (AlexNet or VGG16, torchvision's layers) tapped after five ReLUs. At each
tap the features are unit-normalised along channels (``x / (||x|| + 1e-10)``), the squared
difference is weighted per channel by the calibrated 1x1 "lin" layer, averaged over the
positions, and the five layer values are summed. Lower is better; 0 for identical images.

The lin weights ship with iqa4k (``assets/lpips_v0.1_lin.npz``, from the ``lpips`` 0.1.4
package, BSD-2-Clause); the backbone comes from the weights cache (torchvision's files).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import weights
from ..metric_spec import Setup

# The reference package's ScalingLayer, applied after mapping [0, 1] to [-1, 1].
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10  # normalize_tensor's epsilon

# Backbone: torchvision's ``features`` cut after these layers (the ReLU taps), per network.
TAPS = {"alex": (2, 5, 8, 10, 12), "vgg": (4, 9, 16, 23, 30)}
BACKBONE_FILE = {"alex": "torchvision-alexnet", "vgg": "torchvision-vgg16"}

_TV = "https://download.pytorch.org/models/{}"
_TV_LICENCE = "BSD-3-Clause (torchvision); trained on ImageNet-1k"
BACKBONES = tuple(
    weights.register(
        weights.WeightsFile(
            name=f"torchvision-{name}",
            filename=file,
            url=_TV.format(file),
            sha256=file.rsplit("-", 1)[1].split(".")[0],  # torch.hub's 8-digit prefix
            licence=_TV_LICENCE,
            note=f"torchvision {name} IMAGENET1K_V1: the LPIPS backbone",
            metrics=(metric,),
            option="backbone",
            download_option="download",
        )
    )
    for name, file, metric in (
        ("alexnet", "alexnet-owt-7be5be79.pth", "lpips"),
        ("vgg16", "vgg16-397923af.pth", "lpips_vgg"),
    )
)


class LPIPS(nn.Module):
    """The LPIPS network: backbone slices and the five calibrated lin weights."""

    def __init__(self, net: str) -> None:
        super().__init__()
        import torchvision

        features = (torchvision.models.alexnet if net == "alex" else torchvision.models.vgg16)(
            weights=None
        ).features
        bounds = (0, *TAPS[net])
        self.slices = nn.ModuleList(
            nn.Sequential(*features[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)
        )
        lin = _lin_weights(net)
        for i, w in enumerate(lin):
            self.register_buffer(f"lin{i}", torch.from_numpy(w.copy()))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``[B]`` LPIPS of ``x`` against ``y`` (``[B,3,H,W]`` in [0, 1])."""
        fx, fy = self._prepare(x), self._prepare(y)
        total = x.new_zeros(x.shape[0])
        for i, block in enumerate(self.slices):
            fx, fy = block(fx), block(fy)
            diff = (_unit(fx) - _unit(fy)).square()
            weighted = (diff * getattr(self, f"lin{i}")).sum(dim=1)  # the 1x1 conv, no bias
            total = total + weighted.mean(dim=(-2, -1))
        return total

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return ((2 * x - 1) - self.shift) / self.scale


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f / (f.square().sum(dim=1, keepdim=True).sqrt() + EPS)


@cache
def _lin_weights(net: str) -> list[np.ndarray]:
    asset = resources.files("iqa4k") / "assets" / "lpips_v0.1_lin.npz"
    with resources.as_file(asset) as path, np.load(path) as data:
        return [data[f"{net}_lin{i}"] for i in range(5)]


def load_backbone(net: str, path: str = "", download: bool = False) -> LPIPS:
    """The LPIPS network with the ImageNet backbone from ``path`` or the weights cache
    (fetched into it first when ``download``)."""
    from ..models.checkpoint import load_into, read_checkpoint

    model = LPIPS(net)
    state, _ = read_checkpoint(weights.resolve(BACKBONE_FILE[net], path or None, download))
    # torchvision numbers the layers of ``features`` 0, 1, ...; here they are cut into slices
    bounds = (0, *TAPS[net])
    sliced = {}
    for key, value in state.items():
        layer, rest = key.removeprefix("features.").split(".", 1)
        if not key.startswith("features."):
            continue  # the classifier is not used
        part = next(i for i, end in enumerate(bounds[1:]) if int(layer) < end)
        sliced[f"{part}.{int(layer) - bounds[part]}.{rest}"] = value
    load_into(model.slices, sliced, path or BACKBONE_FILE[net])
    return model.eval().requires_grad_(False)


def setup(net: str):
    """The metric setup of ``lpips`` (``alex``) or ``lpips_vgg`` (``vgg``)."""

    def prepare(options: Mapping[str, Any]) -> Setup:
        model = load_backbone(net, options.get("backbone", ""), options.get("download", False))
        return Setup({"model": model}, {"model": model})

    return prepare


def lpips(dist: torch.Tensor, ref: torch.Tensor, *, model: LPIPS) -> torch.Tensor:
    """LPIPS of ``dist`` against ``ref`` (``[B,3,H,W]`` in [0, 1]) -> ``[B]``."""
    return model(dist, ref.to(dist.device))

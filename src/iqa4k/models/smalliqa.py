"""SmallIQA: a small CNN trained from scratch, iqa4k's own model for learning on a CPU.

Not from a paper: the network of the ``cpu-small`` training preset, small enough to train on
a laptop in minutes (about 0.1 M parameters). Four stride-2 3x3 convolutions with ReLU, then
each channel's mean and standard deviation over the grid (sharpness, noise and exposure show
in both), then a two-layer head. It has no normalisation layer, so a sample's output and
gradient never depend on the rest of its batch: distributed training equals one process.

There are no published weights: ``iqa4k train --preset cpu-small`` makes them, and
``create_metric("smalliqa", weights=PATH)`` scores with them. Predictions are on the training
targets' scale (the training MOS range mapped to [0, 1], higher is better).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import WeightsFile
from .entry import ModelEntry, Release
from .inputs import IMAGENET_MEAN, IMAGENET_STD, CropProtocol, Crops, NetInput

NET_INPUT = NetInput(size=192, mean=IMAGENET_MEAN, std=IMAGENET_STD)
PROTOCOL = CropProtocol(n_crops=8, source="iqa4k: 8 seeded random 192 crops, averaged")


class SmallIQA(nn.Module):
    """Conv(3x3, stride 2) + ReLU, four times; mean and std pooling; MLP head -> ``[B]``."""

    def __init__(self, width: int = 32, hidden: int = 64) -> None:
        super().__init__()
        channels = (3, width // 2, width, 2 * width, 2 * width)
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, 3, stride=2, padding=1)
            for a, b in zip(channels, channels[1:], strict=False)
        )
        self.head = nn.Sequential(
            nn.Linear(2 * channels[-1], hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.relu(conv(x))
        pooled = torch.cat((x.mean((2, 3)), x.flatten(2).std(2)), dim=1)
        return self.head(pooled)[:, 0]


def build(**options: int) -> SmallIQA:
    """SmallIQA with random weights (``width``, ``hidden``)."""
    return SmallIQA(**options)


ENTRY = ModelEntry(
    name="smalliqa",
    build=build,
    inputs=Crops(NET_INPUT, PROTOCOL),
    releases={
        "trained": Release(
            file=WeightsFile(
                filename="smalliqa.safetensors",
                url="",
                sha256=None,
                licence="yours: weights you train with iqa4k",
                note="make them with `iqa4k train --preset cpu-small`",
            ),
            metric="smalliqa",
            summary="SmallIQA, a small CNN you train with the cpu-small preset (no release).",
        )
    },
    citation="iqa4k's cpu-small model (docs/training.md); no paper.",
)

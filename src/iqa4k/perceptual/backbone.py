"""The ImageNet backbones of LPIPS and DISTS: torchvision's ``features`` cut into five slices
that end at the tapped ReLUs, with the weights from torchvision's own files."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from .. import weights

# torchvision's ``features`` cut after these layers (the ReLU taps), per network.
TAPS = {"alex": (2, 5, 8, 10, 12), "vgg": (4, 9, 16, 23, 30)}
FILE = {"alex": "torchvision-alexnet", "vgg": "torchvision-vgg16"}

_TV = "https://download.pytorch.org/models/{}"
_TV_LICENCE = "BSD-3-Clause (torchvision); trained on ImageNet-1k"
FILES = tuple(
    weights.register(
        weights.WeightsFile(
            name=f"torchvision-{name}",
            filename=file,
            url=_TV.format(file),
            sha256=file.rsplit("-", 1)[1].split(".")[0],  # torch.hub's 8-digit prefix
            licence=_TV_LICENCE,
            note=f"torchvision {name} IMAGENET1K_V1: the {users} backbone",
            metrics=metrics,
            option="backbone",
            download_option="download",
        )
    )
    for name, file, metrics, users in (
        ("alexnet", "alexnet-owt-7be5be79.pth", ("lpips",), "LPIPS"),
        ("vgg16", "vgg16-397923af.pth", ("lpips_vgg", "dists"), "LPIPS-VGG and DISTS"),
    )
)


class L2Pool(nn.Module):
    """DISTS's pooling: ``sqrt(blur(x^2) + 1e-12)`` with a 3x3 Hann window, stride 2, padding 1
    (it replaces VGG's max pooling, which aliases)."""

    kernel_size, stride, padding = 3, 2, 1

    def __init__(self) -> None:
        super().__init__()
        a = torch.tensor([0.5, 1.0, 0.5])  # numpy.hanning(5)[1:-1]
        window = torch.outer(a, a)
        self.register_buffer("window", (window / window.sum())[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        out = F.conv2d(
            x.square(),
            self.window.expand(channels, 1, 3, 3),
            stride=self.stride,
            padding=self.padding,
            groups=channels,
        )
        return (out + 1e-12).sqrt()


class Backbone(nn.Module):
    """The five slices, run on several images side by side (:meth:`taps`)."""

    def __init__(self, net: str, *, l2_pool: bool = False) -> None:
        super().__init__()
        import torchvision

        build = torchvision.models.alexnet if net == "alex" else torchvision.models.vgg16
        layers = list(build(weights=None).features)
        if l2_pool:
            layers = [L2Pool() if isinstance(m, nn.MaxPool2d) else m for m in layers]
        self.net = net
        bounds = (0, *TAPS[net])
        self.slices = nn.ModuleList(
            nn.Sequential(*layers[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)
        )

    def taps(self, *images: torch.Tensor) -> Iterator[list[torch.Tensor]]:
        """Each tap's features of every image in turn: only one tap is held at a time."""
        for block in self.slices:
            images = [block(x) for x in images]
            yield images

    def load(self, path: str = "", download: bool = False) -> None:
        """Load torchvision's ImageNet file from ``path`` or the weights cache (fetched into it
        first when ``download``); the classifier is not used."""
        from ..models.checkpoint import load_into, read_checkpoint

        state, _ = read_checkpoint(weights.resolve(FILE[self.net], path or None, download))
        bounds = (0, *TAPS[self.net])
        sliced = {}  # torchvision numbers the layers of ``features`` 0, 1, ...
        for key, value in state.items():
            if not key.startswith("features."):
                continue
            layer, rest = key.removeprefix("features.").split(".", 1)
            part = next(i for i, end in enumerate(bounds[1:]) if int(layer) < end)
            sliced[f"{part}.{int(layer) - bounds[part]}.{rest}"] = value
        load_into(self.slices, sliced, path or FILE[self.net])

"""How images become a model's inputs, and how the outputs pool to one score per image.

Two kinds, declared by each :class:`~.entry.ModelEntry`:

- :class:`Crops`: square crops of the network's input size, cut by a sampling policy
  (:mod:`.sampling`: the official seeded random crops, a full-coverage grid, the centre); a
  full-reference model gets the same windows from the distorted image and its reference.
- :class:`Views`: a fixed set of whole-image views made by a model's own function (UIQA's
  aesthetic, fragment and salient views).

Each says which metric options it adds, scores a batch (``score``, the metric's function),
counts its network inputs per image (cost) and makes one training sample (``training_inputs``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..io import to_8bit_hwc
from ..metric_spec import Option
from .sampling import POLICIES, crop, grid_positions, positions, random_position

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)  # (x - 0.5) / 0.5: inputs in [-1, 1]

UHD = (2160, 3840)  # height, width of the image costs are quoted for

CROP_OPTIONS = {
    "sampling": Option(
        "official",
        "crops scored: official (the model's test protocol, seeded random crops), grid "
        "(tiles covering the whole image) or centre (one centre crop)",
        POLICIES,
    ),
    "n_crops": Option(0, "random crops for sampling=official; 0: the official number", minimum=0),
    "seed": Option(0, "seed of the random crops: the same seed gives the same score"),
    "overlap": Option(0, "pixels shared by neighbouring tiles for sampling=grid", minimum=0),
    "batch_size": Option(
        16, "crops per forward pass (memory; scores do not depend on it)", minimum=1
    ),
}

# Models that score the patches of a crop and pool them with weights they also predict.
AGGREGATE_OPTION = Option(
    "mean",
    "pooling over crops: mean of the crop scores (the official protocol) or patch_weights "
    "(every patch of every crop, weighted as the model weights the patches of one crop)",
    ("mean", "patch_weights"),
)


@dataclass(frozen=True)
class NetInput:
    """What the network expects: square crops of ``size`` normalised by ``mean``/``std``."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``[B,3,H,W]`` in [0, 1] -> the network's input range."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


@dataclass(frozen=True)
class CropProtocol:
    """The official test-time sampling: optional resize, then ``n_crops`` random crops."""

    n_crops: int  # random crops of NetInput.size averaged per image (1 and centre: one crop)
    resize: tuple[int, int] | None = None  # (height, width) before cropping, as the official
    centre: bool = False  # a single centre crop instead of random ones
    source: str = ""  # where in the official code this protocol comes from


def pil_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[B,3,H,W]`` in [0, 1] resized to ``size`` (height, width) exactly as torchvision's
    ``Resize`` does on the official loaders' 8-bit PIL images: rounded to 8 bits, PIL's
    antialiased bilinear filter, back to [0, 1]. Torch's own antialiased bilinear differs from
    it by up to a grey level, which is visible in the scores of the released models."""
    out = []
    for image in x:
        pil = Image.fromarray(to_8bit_hwc(image.detach().cpu()).numpy())
        resized = np.asarray(pil.resize((size[1], size[0]), Image.BILINEAR))
        out.append(torch.from_numpy(resized.copy()).permute(2, 0, 1))
    return torch.stack(out).to(device=x.device, dtype=x.dtype) / 255.0


@dataclass(frozen=True)
class Crops:
    """Square crops of ``net_input.size`` by a sampling policy, averaged per image.

    ``patch_scores``: the network's ``forward(*crops, return_patches=True)`` also returns a
    score and a weight per patch ``[N,h,w]`` (MANIQA, AHIQ), which give per-patch quality maps
    and the ``aggregate=patch_weights`` pooling.
    """

    net_input: NetInput
    protocol: CropProtocol
    patch_scores: bool = False
    has_maps: ClassVar[bool] = True

    @property
    def options(self) -> dict[str, Option]:
        """The metric options of crop-based scoring."""
        if self.patch_scores:
            return {**CROP_OPTIONS, "aggregate": AGGREGATE_OPTION}
        return dict(CROP_OPTIONS)

    def images_per_forward(self, kind: str) -> int:
        """One crop, or a (distorted, reference) pair of crops for a full-reference model."""
        return 2 if kind == "FR" else 1

    def per_image(self, policy: str, overlap: int = 0, size: tuple[int, int] = UHD) -> int:
        """How many crops one image of ``size`` (height, width) costs under ``policy``."""
        if policy == "official":
            return 1 if self.protocol.centre else self.protocol.n_crops
        if policy == "centre":
            return 1
        return len(grid_positions(*size, self.net_input.size, overlap))

    def training_inputs(
        self, images: tuple[torch.Tensor, ...], generator: torch.Generator
    ) -> list[torch.Tensor]:
        """One random crop per image (the same window in each of ``images``, e.g. distorted and
        reference), after the official resize, normalised: ``[B,3,H,W]`` -> ``[B,3,S,S]``."""
        size = self.net_input.size
        images = tuple(self._resized(x) for x in images)
        height, width = images[0].shape[-2:]
        crops: list[list[torch.Tensor]] = [[] for _ in images]
        for b in range(images[0].shape[0]):
            where = [random_position(height, width, size, generator)]
            for out, x in zip(crops, images, strict=True):
                out.append(crop(x[b], where, size))
        return [self.net_input.normalize(torch.cat(c)) for c in crops]

    def score(
        self,
        x: torch.Tensor,
        ref: torch.Tensor | None = None,
        *,
        net: torch.nn.Module,
        sampling: str,
        n_crops: int,
        seed: int,
        overlap: int,
        batch_size: int,
        aggregate: str = "mean",
        maps: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Each image's crops scored and pooled -> ``[B]`` (``ref``: full-reference).

        ``aggregate="mean"`` averages the crop scores (the official protocols);
        ``"patch_weights"`` pools every patch of every crop with the model's own patch weights,
        as the model pools the patches of one crop. With a ``maps`` list, each image's quality
        map ``[H,W]`` is appended to it: per-patch scores for models that have them, else each
        crop's score over its window, averaged where crops overlap, NaN where none fell.
        """
        out = []
        size = self.net_input.size
        patches = self.patch_scores and (maps is not None or aggregate == "patch_weights")
        with torch.inference_mode():
            for b in range(x.shape[0]):
                images = (x[b],) if ref is None else (x[b], ref[b])
                if sampling == "official":
                    images = tuple(self._resized(im[None])[0] for im in images)
                _, height, width = images[0].shape
                policy = "centre" if sampling == "official" and self.protocol.centre else sampling
                n = n_crops or self.protocol.n_crops
                where = positions(policy, height, width, size, n, seed, overlap)
                crops = [crop(im, where, size) for im in images]
                scores, patch_scores, patch_weights = self._run(net, crops, batch_size, patches)
                if aggregate == "patch_weights":
                    out.append((patch_scores * patch_weights).sum() / patch_weights.sum())
                else:
                    out.append(scores.mean())
                if maps is not None:
                    values = patch_scores if patches else scores
                    painted = _paint(values, where, size, (height, width))
                    if (height, width) != tuple(x.shape[-2:]):  # back from the official resize
                        painted = F.interpolate(painted[None, None], size=x.shape[-2:])[0, 0]
                    maps.append(painted)
        return torch.stack(out).to(torch.float32)

    def _resized(self, x: torch.Tensor) -> torch.Tensor:
        """The official pre-crop resize (PIL bilinear on 8 bits), when there is one."""
        size = self.protocol.resize
        if size is None or tuple(x.shape[-2:]) == tuple(size):
            return x
        return pil_resize(x, size)

    def _run(
        self, net: torch.nn.Module, crops: list[torch.Tensor], batch_size: int, patches: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Scores ``[N]`` of the crops, and when asked their patch scores and patch weights
        ``[N,h,w]`` (None otherwise)."""
        scores, patch_scores, patch_weights = [], [], []
        for i in range(0, crops[0].shape[0], batch_size):
            inputs = [self.net_input.normalize(c[i : i + batch_size]) for c in crops]
            if patches:
                s, f, w = net(*inputs, return_patches=True)
                patch_scores.append(f)
                patch_weights.append(w)
            else:
                s = net(*inputs)
            scores.append(s)
        if not patches:
            return torch.cat(scores), None, None
        return torch.cat(scores), torch.cat(patch_scores), torch.cat(patch_weights)


def _paint(
    values: torch.Tensor, where: list[tuple[int, int]], size: int, shape: tuple[int, int]
) -> torch.Tensor:
    """Average crop values (``[N]``) or patch maps (``[N,h,w]``) over their windows ->
    ``[H,W]``, NaN where no crop fell."""
    total = torch.zeros(shape, dtype=torch.float64)
    count = torch.zeros(shape, dtype=torch.float64)
    for value, (top, left) in zip(values.double().cpu(), where, strict=True):
        if value.dim() == 2:  # patch scores: each patch covers its share of the crop
            value = F.interpolate(value[None, None], size=(size, size), mode="nearest")[0, 0]
        total[top : top + size, left : left + size] += value
        count[top : top + size, left : left + size] += 1
    return (total / count).float()  # 0 / 0 = NaN where uncovered


@dataclass(frozen=True)
class Views:
    """A fixed set of views per image made by the model's own ``make(x, generator, **options)``
    (``[B,3,H,W]`` in [0, 1] -> ``n_views`` normalised tensors); ``options`` are its metric
    options, a ``seed`` of the generator among them."""

    net_input: NetInput
    make: Callable[..., tuple[torch.Tensor, ...]]
    n_views: int
    options: Mapping[str, Option]
    source: str = ""  # where in the official code the views come from
    has_maps: ClassVar[bool] = False

    def images_per_forward(self, kind: str) -> int:
        return self.n_views

    def per_image(self, policy: str, overlap: int = 0, size: tuple[int, int] = UHD) -> int:
        """One set of views per image, whatever its size."""
        return 1

    def training_inputs(
        self, images: tuple[torch.Tensor, ...], generator: torch.Generator
    ) -> list[torch.Tensor]:
        """The views of ``[B,3,H,W]`` images, random parts drawn from ``generator``."""
        (x,) = images
        return list(self.make(x, generator))

    def score(
        self, x: torch.Tensor, ref: None = None, *, net: torch.nn.Module, seed: int, **options
    ) -> torch.Tensor:
        """Each image's views, random parts seeded per image, scored -> ``[B]``."""
        with torch.inference_mode():
            scores = [
                net(*self.make(x[b : b + 1], torch.Generator().manual_seed(seed), **options))
                for b in range(x.shape[0])
            ]
        return torch.cat(scores).to(torch.float32)

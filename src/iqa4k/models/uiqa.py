"""UIQA: quality of UHD images from aesthetics, distortions and saliency (no-reference).

Wei Sun, Weixia Zhang, Yuqin Cao, Linhan Cao, Jun Jia, Zijian Chen, Zicheng Zhang, Xiongkuo Min,
Guangtao Zhai, "Assessing UHD Image Quality from Aesthetics, Distortions, and Saliency",
ECCV 2024 Workshops (AIM 2024 UHD-IQA Challenge, first place), arXiv:2409.00749.
Official code: github.com/sunwei925/UIQA at 624d1727addbdd5acba64dab20adb2e03303a805
(``models/UIQA.py`` ``UIQA_Model``; views from ``test_single_image.py`` / ``IQADataset.py``).

Structure: three independent torchvision Swin-T backbones (classifier head removed, so each
gives the 768-d pooled feature after the final LayerNorm) see three 480x480 views of one image:

- aesthetics: the image resized to short side 512 (antialiased bilinear) and centre-cropped;
- distortion: a 15x15 mosaic of 32x32 full-resolution patches, one per grid cell at a random
  offset inside the cell (FAST-VQA "fragments");
- saliency: the central 480x480 crop of the full-resolution image (no saliency detector).

The three features are concatenated (2304) and regressed by Linear(2304, 128) -> Linear(128, 1)
with no non-linearity in between. The output is unbounded, on the UHD-IQA ``quality_mos`` scale
(about 0.5-0.9), higher is better.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..metric_spec import Option
from ..weights import WeightsFile
from .attention import flush_swin_attention
from .entry import ModelEntry, Pretrained, Release
from .inputs import IMAGENET_MEAN, IMAGENET_STD, NetInput, Views, pil_resize
from .saliency import salient_window
from .sampling import centre_position

NET_INPUT = NetInput(size=480, mean=IMAGENET_MEAN, std=IMAGENET_STD)

# Official inference (README command for test_single_image.py): --resize 512 --crop_size 480
# --n_fragment 15 --salient_patch_dimension 480, one view of each kind. The script calls
# torch.manual_seed(2) and then builds the model, whose initialisation consumes random numbers
# before the fragment offsets are drawn; iqa4k re-seeds with 2 right before drawing them, so
# its offsets are not the script's (the protocol is "seed 2 right before sampling").
RESIZE = 512
N_FRAGMENT = 15
PATCH = 32
SALIENT_SIZE = 480  # train.py and the README use 480; IQADataset.py defaults 448, the script 384
FRAGMENT_SEED = 2  # a generator seeded with this right before each image's offsets


RELEASES: dict[str, Release] = {
    "uhd-iqa": Release(
        file=WeightsFile(
            filename="UIQA.pth",
            url=(
                "https://www.dropbox.com/scl/fi/mgvvt902zehhmo6drnxve/UIQA.pth"
                "?rlkey=413edq08c8qnxbrlgclnq0va6&st=yzcskkus&dl=1"  # dl=1: the file, not a page
            ),
            sha256=None,
            licence="Apache-2.0 (README badge of sunwei925/UIQA)",
            note=(
                "Trained on the UHD-IQA challenge training set (80% random split), from "
                "AVA-pretrained Swin-T branches. The release also ships UIQA.npy, a 4-parameter "
                "logistic (popt) that test_single_image.py loads but never applies: its printed "
                "score is the raw output."
            ),
        ),
        metric="uiqa",
        summary="UIQA (three Swin-T: aesthetics, fragments, salient crop), UHD-IQA; AIM 2024.",
    ),
}


def _swin_t_features() -> nn.Module:
    """torchvision Swin-T without its classifier: [B,3,H,W] -> [B,768]; its window attention
    without subnormal numbers (same outputs, see :mod:`.attention`)."""
    from torchvision.models import swin_t  # deferred: see iqa4k.models

    net = swin_t(weights=None)
    net.head = nn.Identity()
    return flush_swin_attention(net)


class UIQA(nn.Module):
    """Three Swin-T branches (aesthetics, distortion, saliency) and a linear two-layer head."""

    def __init__(self) -> None:
        super().__init__()
        self.aesthetics_feature_extraction = _swin_t_features()
        self.distortion_feature_extraction = _swin_t_features()
        self.saliency_feature_extraction = _swin_t_features()
        # no activation between the two layers, as in the official head (R)
        self.quality = nn.Sequential(nn.Linear(3 * 768, 128), nn.Linear(128, 1))

    def forward(
        self, aesthetic: torch.Tensor, fragments: torch.Tensor, salient: torch.Tensor
    ) -> torch.Tensor:
        """Three normalised ``[B,3,480,480]`` views (see :func:`views`) -> scores ``[B]``."""
        features = torch.cat(
            (
                self.aesthetics_feature_extraction(aesthetic),
                self.distortion_feature_extraction(fragments),
                self.saliency_feature_extraction(salient),
            ),
            dim=1,
        )
        return self.quality(features)[:, 0]


def build(**options) -> UIQA:
    """UIQA with random weights; the official model has no options, so any option is a TypeError."""
    return UIQA(**options)


def _centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision ``CenterCrop(size)``: zero padding when smaller, Python rounding of offsets."""
    h, w = x.shape[-2:]
    if size > h or size > w:
        pad_w, pad_h = max(size - w, 0), max(size - h, 0)
        x = F.pad(x, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2))
    top, left = centre_position(x.shape[-2], x.shape[-1], size)
    return x[..., top : top + size, left : left + size]


def aesthetic_view(x: torch.Tensor, resize: int = RESIZE, crop: int = 480) -> torch.Tensor:
    """Short side to ``resize``, then the centre ``crop``: ``[B,3,H,W]`` in [0, 1] -> same.

    The resize is the official one: PIL's antialiased bilinear on the 8-bit image
    (:func:`pil_resize`).
    """
    h, w = x.shape[-2:]
    # torchvision Resize(int): the long side is truncated, not rounded
    if w <= h:
        size = (int(resize * h / w), resize)
    else:
        size = (resize, int(resize * w / h))
    if size != (h, w):
        x = pil_resize(x, size)
    return _centre_crop(x, crop)


def salient_view(x: torch.Tensor, size: int = SALIENT_SIZE) -> torch.Tensor:
    """The centre ``size`` crop of the full-resolution image (zero-padded if it is smaller)."""
    return _centre_crop(x, size)


def fragment_view(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    n_fragment: int = N_FRAGMENT,
    patch: int = PATCH,
) -> torch.Tensor:
    """Mosaic of ``n_fragment``^2 patches, one per grid cell, as the official fragments.

    ``x`` is ``[B,3,H,W]`` in [0, 1]; the result is ``[B,3,n*patch,n*patch]``. Cell ``i`` starts
    at ``min(i * (H // n), H - patch)`` and the patch at a random offset in
    ``[0, H // n - patch)`` (none when the cell is not larger than the patch); likewise for
    columns, with an independent offset pair per cell. Offsets come from ``generator`` (the global
    torch RNG when None), rows then columns, image after image: from the same generator state
    the output is bit-identical to the official ``get_spatial_fragments``.

    When the short side is below ``n * patch`` the image is first upsampled by bilinear
    interpolation by the factor that makes it ``n * patch``, but the grid is still laid out on
    the original size, so patches come from the top-left region of the upsampled image (R).
    """
    if x.dim() != 4:
        raise ValueError(f"expected [B,C,H,W], got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if min(h, w) < patch:
        raise ValueError(f"image {h}x{w} is smaller than one {patch}x{patch} patch")
    side = n_fragment * patch
    ratio = min(h / side, w / side)
    if ratio < 1:
        # the official code scales by 1/255 and back around the interpolation (a leftover from
        # uint8 video); kept because it changes the last bit of some values (R). Planes go in
        # one channel at a time, as the official [C,1,H,W] layout does: torch's CPU kernel for
        # three channels rounds differently in the last bit.
        b, c = x.shape[:2]
        planes = x.reshape(b * c, 1, h, w) / 255.0
        planes = F.interpolate(planes, scale_factor=1 / ratio, mode="bilinear") * 255.0
        x = planes.reshape(b, c, *planes.shape[-2:])

    cells = torch.arange(n_fragment)
    row_start = torch.minimum(cells * (h // n_fragment), torch.tensor(h - patch))
    col_start = torch.minimum(cells * (w // n_fragment), torch.tensor(w - patch))
    row_room, col_room = h // n_fragment - patch, w // n_fragment - patch
    span = torch.arange(patch)

    out = []
    for image in x:
        shape = (n_fragment, n_fragment)
        dy = torch.randint(row_room, shape, generator=generator) if row_room > 0 else 0
        dx = torch.randint(col_room, shape, generator=generator) if col_room > 0 else 0
        # rows[i, j, a] and cols[i, j, b]: source pixel of pixel (a, b) of the patch of cell (i, j)
        rows = (row_start[:, None] + dy)[..., None] + span
        cols = (col_start[None, :] + dx)[..., None] + span
        rows = rows.expand(n_fragment, n_fragment, patch).to(x.device)
        cols = cols.expand(n_fragment, n_fragment, patch).to(x.device)
        tiles = image[:, rows[..., :, None], cols[..., None, :]]  # [C, n, n, patch, patch]
        out.append(tiles.permute(0, 1, 3, 2, 4).reshape(image.shape[0], side, side))
    return torch.stack(out)


def views(
    x: torch.Tensor, generator: torch.Generator | None = None, salient: str = "centre"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three views of ``[B,3,H,W]`` images in [0, 1], normalised for :class:`UIQA`.

    For the official test-time offsets pass ``torch.Generator().manual_seed(FRAGMENT_SEED)``.
    ``salient="centre"`` is the official salient view; ``"saliency"`` centres it instead on
    each image's most salient ``SALIENT_SIZE`` window (:mod:`iqa4k.models.saliency`).
    """
    if salient == "saliency":
        windows = [salient_window(image, SALIENT_SIZE) for image in x]
        salient_crops = [
            salient_view(image[None, :, top : top + SALIENT_SIZE, left : left + SALIENT_SIZE])
            for image, (top, left) in zip(x, windows, strict=True)
        ]
        third = torch.cat(salient_crops)
    elif salient == "centre":
        third = salient_view(x)
    else:
        raise ValueError(f"salient must be 'centre' or 'saliency', got {salient!r}")
    return (
        NET_INPUT.normalize(aesthetic_view(x)),
        NET_INPUT.normalize(fragment_view(x, generator)),
        NET_INPUT.normalize(third),
    )


ENTRY = ModelEntry(
    name="uiqa",
    build=build,
    head=("quality",),
    inputs=Views(
        NET_INPUT,
        views,
        n_views=3,
        options={
            "seed": Option(
                FRAGMENT_SEED, "seed of the fragment offsets, set right before each image's draw"
            ),
            "salient": Option(
                "centre",
                "third view: centre (the official code's 480 centre crop) or saliency (the most "
                "salient 480 window by spectral residual, as the paper describes; see "
                "iqa4k.models.saliency)",
                ("centre", "saliency"),
            ),
        },
        source=(
            "test_single_image.py with the README arguments: aesthetic = short side 512 then "
            "centre 480; fragments = 15x15 grid of 32x32 patches at offsets drawn from a "
            "generator seeded 2 right before (the script's global RNG has also served its "
            "model's initialisation by then); salient = centre 480 of the full image"
        ),
    ),
    releases=RELEASES,
    citation=(
        "W. Sun et al. Assessing UHD image quality from aesthetics, distortions, and saliency. "
        "arXiv:2409.00749, 2024 (winner of the AIM 2024 UHD-IQA challenge)."
    ),
    # ImageNet Swin-T in each branch; the official run starts from an AVA-trained Swin-T
    # that is not published (docs/training.md)
    pretrained=tuple(
        Pretrained(branch, "torchvision-swin_t", drop=("head.",))
        for branch in (
            "aesthetics_feature_extraction",
            "distortion_feature_extraction",
            "saliency_feature_extraction",
        )
    ),
)

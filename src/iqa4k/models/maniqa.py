"""MANIQA: ViT-B/8 features, transposed (channel) attention and scaled Swin stages.

Paper: Sidi Yang, Tianhe Wu, Shuwei Shi, Shanshan Lao, Yuan Gong, Mingdeng Cao, Jiahao Wang,
Yujiu Yang, "MANIQA: Multi-dimension Attention Network for No-Reference Image Quality
Assessment", CVPR Workshops (NTIRE 2022 NR track, 1st place), 2022.
Official code: https://github.com/IIGROUP/MANIQA (``models/maniqa.py``, ``models/swin.py``;
HEAD f573d862401243c45641951a0303b8059c1c8577, 2023-06-10; the files compared against were
read at 6a9d49f67afce095b62909902f8dc74779367366), Apache-2.0 licence.

Structure, for a 224x224 crop (a 28x28 grid of 8x8 patches, N = 784 tokens):

- ``vit``: timm ``vit_base_patch8_224``. The outputs of blocks 6, 7, 8 and 9 (0-based), class
  token dropped, are concatenated into [B, 784, 3072].
- stage 1: ``tablock1`` (two transposed-attention blocks: the 3072 channels attend to each
  other, q/k/v being linear maps over the 784 grid positions), ``conv1`` (1x1, 3072 -> 768),
  ``swintransformer1`` (two Swin layers of two blocks each, window 4, shift 0/2, each layer
  followed by a 3x3 convolution and ReLU and added back as ``scale * layer(x) + x``).
- stage 2: the same with ``tablock2``, ``conv2`` (768 -> 384) and ``swintransformer2``.
- head: on each of the 784 tokens, ``fc_score`` (ends in ReLU) gives a score f and
  ``fc_weight`` (ends in a sigmoid) a weight w; the image score is sum(f w) / sum(w).

Scores are on the training labels' scale (min-max normalised MOS, about 0-1), higher is better.
``scale`` is not stored in the checkpoints: 0.13 for the PIPAL 2022 release, 0.8 for the
KADID-10k and KonIQ-10k releases (see ``RELEASES``).

Departures from the official code, none of which changes a score:

- (F) the official forward gathers the per-image scores into ``torch.tensor([]).cuda()`` in a
  Python loop, so it cannot run without CUDA; here the weighted mean is computed for the whole
  batch at once (the same sums).
- (F) the official forward runs all 12 ViT blocks, the final norm and the classifier head and
  collects block outputs with forward hooks; here the ViT stops after block 9, the last one
  used. The unused blocks 10-11, ``norm`` and ``head`` stay in the module so that the state_dict
  keeps every key of the official checkpoints.
- (R) kept as in the official code: the transposed-attention blocks return their result
  through ``transpose(1, 2).reshape(B, C, N)``, which does not undo the transpose and mixes
  channels and positions; and each Swin stage owns a ``downsample`` convolution that is never
  used but is in every checkpoint.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import WeightsFile
from .attention import flushed_softmax, from_windows, shift_mask, to_windows
from .entry import ModelEntry, Pretrained, Release
from .inputs import HALF, CropProtocol, Crops, NetInput

NET_INPUT = NetInput(size=224, mean=HALF, std=HALF)

PROTOCOL = CropProtocol(
    n_crops=20,
    source=(
        "predict_one_image.py (KADID-10k/KonIQ-10k releases): 20 random 224x224 crops of the "
        "image at its own size, scores averaged. The PIPAL 2022 inference.py uses one crop "
        "instead (num_avg_val=1 of its five_point_crop: the top-left corner)."
    ),
)

_LICENCE = "Apache-2.0 (repository licence of IIGROUP/MANIQA; no separate terms for the weights)"

RELEASES: dict[str, Release] = {
    "koniq": Release(
        file=WeightsFile(
            filename="ckpt_koniq10k.pt",
            url="https://github.com/IIGROUP/MANIQA/releases/download/Koniq10k/ckpt_koniq10k.pt",
            sha256=None,
            licence=_LICENCE,
            note=(
                "Trained on KonIQ-10k images resized to 224x224 (80/20 split, seed 20); "
                "README: SRCC 0.930, PLCC 0.946 on its 2,015 test images. predict_one_image.py "
                "scores crops of the un-resized image. A plain state_dict (no prefix). Built "
                "with scale=0.8."
            ),
        ),
        metric="maniqa",
        summary="MANIQA (ViT-B/8 + transposed attention + Swin), KonIQ-10k release.",
        options={"scale": 0.8},
        score_range=(0.0, math.inf),
    ),
    "kadid": Release(
        file=WeightsFile(
            filename="ckpt_kadid10k.pt",
            url="https://github.com/IIGROUP/MANIQA/releases/download/Kadid10k/ckpt_kadid10k.pt",
            sha256=None,
            licence=_LICENCE,
            note=(
                "Trained on KADID-10k (80/20 split by reference image, seed 20); README: SRCC "
                "0.939, PLCC 0.939 on its 2,125 test images. A plain state_dict (no prefix). "
                "Built with scale=0.8."
            ),
        ),
        metric="maniqa-kadid",
        summary="MANIQA, KADID-10k release.",
        options={"scale": 0.8},
        score_range=(0.0, math.inf),
    ),
    "pipal": Release(
        file=WeightsFile(
            filename="ckpt_valid",
            url="https://github.com/IIGROUP/MANIQA/releases/download/PIPAL22-VALID-CKPT/ckpt_valid",
            sha256=None,
            licence=_LICENCE,
            note=(
                "Trained on PIPAL 2022 (NTIRE 2022 NR-IQA); README: PIPAL22 validation SRCC 0.686, "
                "PLCC 0.707. Published on the release page "
                "https://github.com/IIGROUP/MANIQA/releases/tag/PIPAL22-VALID-CKPT as a whole "
                "pickled nn.DataParallel(MANIQA) (torch.save(net)); keys carry 'module.'. pyiqa "
                "re-hosts it as a state_dict, MANIQA_PIPAL-ae6d356b.pth. Built with scale=0.13."
            ),
        ),
        metric="maniqa-pipal",
        summary="MANIQA, PIPAL 2022 release (NTIRE 2022 winner).",
        options={"scale": 0.13},
        score_range=(0.0, math.inf),
    ),
}

_TAPS = (6, 7, 8, 9)  # ViT blocks whose outputs are used (0-based)


class TABlock(nn.Module):
    """Transposed attention: channels are the tokens, grid positions their features."""

    def __init__(self, n_positions: int, drop: float = 0.1) -> None:
        super().__init__()
        self.c_q = nn.Linear(n_positions, n_positions)
        self.c_k = nn.Linear(n_positions, n_positions)
        self.c_v = nn.Linear(n_positions, n_positions)
        self.norm_fact = n_positions**-0.5
        self.proj_drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, N]`` -> ``[B, C, N]``."""
        b, c, n = x.shape
        affinity = (self.c_q(x) @ self.c_k(x).transpose(1, 2)) * self.norm_fact  # [B, C, C]
        mixed = affinity.softmax(dim=-1) @ self.c_v(x)  # [B, C, N]
        # (R) the official code returns transpose(1, 2).reshape(B, C, N): a reshape, not a
        # transpose back, so the result's rows are read across channels. Trained that way.
        mixed = mixed.transpose(1, 2).reshape(b, c, n)
        # residual added in the official operand order: the sum then has the official memory
        # layout, and the next block's linear maps round exactly as the official ones do
        return self.proj_drop(mixed) + x


class Mlp(nn.Module):
    """Two linear layers with GELU between (no dropout: the official rate is 0)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside square windows, with a relative position bias."""

    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        # index[i, j] of the table for window cells i, j: their (dy, dx) offset, made positive
        yx = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
        yx = yx.flatten(1)  # [2, window^2]
        offset = (yx[:, :, None] - yx[:, None, :]) + (window - 1)  # [2, N, N]
        self.register_buffer("relative_position_index", offset[0] * (2 * window - 1) + offset[1])
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x`` ``[B * nW, N, C]``; ``mask`` ``[nW, N, N]`` (0 / -100) or None."""
        bw, n, c = x.shape
        q, k, v = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        logits = (q * self.scale) @ k.transpose(-2, -1)  # [B * nW, heads, N, N]
        bias = self.relative_position_bias_table[self.relative_position_index.flatten()]
        logits = logits + bias.reshape(n, n, self.heads).permute(2, 0, 1)[None]
        if mask is not None:
            n_win = mask.shape[0]
            logits = logits.reshape(bw // n_win, n_win, self.heads, n, n) + mask[None, :, None]
            logits = logits.reshape(bw, self.heads, n, n)
        out = flushed_softmax(logits) @ v  # [B * nW, heads, N, C / heads]
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class SwinBlock(nn.Module):
    """Pre-norm (shifted) window attention and MLP, each with a residual and drop path."""

    def __init__(
        self,
        dim: int,
        grid: int,
        heads: int,
        window: int,
        shift: int,
        hidden: int,
        drop_path: float,
    ) -> None:
        super().__init__()
        if grid <= window:  # one window covers the grid: nothing to shift
            window, shift = grid, 0
        self.grid, self.window, self.shift = grid, window, shift
        square = (grid, grid), (window, window), (shift, shift)
        mask = shift_mask(*square) if shift > 0 else None
        self.register_buffer("attn_mask", mask)  # None (not saved) for unshifted blocks
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        from timm.layers import DropPath  # deferred: see iqa4k.models

        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, grid * grid, C]`` -> same."""
        b, n, c = x.shape
        y = self.norm1(x).reshape(b, self.grid, self.grid, c)
        window, shift = (self.window,) * 2, (self.shift,) * 2
        y = self.attn(to_windows(y, window, shift), self.attn_mask)
        y = from_windows(y, (self.grid,) * 2, window, shift)
        x = x + self.drop_path(y.reshape(b, n, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class BasicLayer(nn.Module):
    """Swin blocks (shift 0, window/2, 0, ...) followed by a 3x3 convolution and ReLU."""

    def __init__(
        self,
        dim: int,
        grid: int,
        depth: int,
        heads: int,
        window: int,
        hidden: int,
        drop_paths: list[float],
    ) -> None:
        super().__init__()
        self.grid = grid
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)
        self.blocks = nn.ModuleList(
            SwinBlock(dim, grid, heads, window, 0 if i % 2 == 0 else window // 2, hidden, dp)
            for i, dp in enumerate(drop_paths[:depth])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N, C]`` tokens -> same."""
        for block in self.blocks:
            x = block(x)
        image = x.transpose(1, 2).unflatten(2, (self.grid, self.grid))
        return F.relu(self.conv(image)).flatten(2).transpose(1, 2)


class SwinTransformer(nn.Module):
    """Swin layers with scaled residuals: ``x = scale * layer(x) + x``."""

    def __init__(
        self,
        dim: int,
        grid: int,
        depths: tuple[int, ...],
        heads: tuple[int, ...],
        window: int,
        hidden: int,
        scale: float,
        drop: float = 0.1,
        drop_path: float = 0.1,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.dropout = nn.Dropout(drop)
        # (R) never used by forward, but every official checkpoint holds its weights
        self.downsample = nn.Conv2d(dim, dim, kernel_size=3, stride=2, padding=1)
        rates = torch.linspace(0, drop_path, sum(depths), device="cpu").tolist()
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.layers = nn.ModuleList(
            BasicLayer(dim, grid, d, h, window, hidden, rates[s : s + d])
            for d, h, s in zip(depths, heads, starts, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> same."""
        b, c, h, w = x.shape
        tokens = self.dropout(x).flatten(2).transpose(1, 2)
        for layer in self.layers:
            tokens = self.scale * layer(tokens) + tokens
        return tokens.transpose(1, 2).reshape(b, c, h, w)


def _head(dim: int, drop: float, last: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(drop), nn.Linear(dim, 1), last)


class MANIQA(nn.Module):
    """MANIQA for 224x224 crops normalised to [-1, 1]; returns one score per image."""

    def __init__(
        self,
        scale: float = 0.8,
        embed_dim: int = 768,
        dim_mlp: int = 768,
        num_heads: tuple[int, ...] = (4, 4),
        window_size: int = 4,
        depths: tuple[int, ...] = (2, 2),
        num_tab: int = 2,
        img_size: int = 224,
        drop: float = 0.1,
    ) -> None:
        """``drop`` is the dropout of the two heads, as in the official constructor; the
        transposed-attention blocks and the Swin inputs use 0.1 and the Swin drop path rises
        from 0 to 0.1, fixed as in the official code."""
        super().__init__()
        import timm  # deferred: see iqa4k.models

        self.vit = timm.create_model("vit_base_patch8_224", pretrained=False, img_size=img_size)
        patch = self.vit.patch_embed.patch_size[0]
        self.grid = img_size // patch
        if img_size % patch or self.grid % window_size:
            raise ValueError(
                f"img_size {img_size} must be a multiple of the patch size {patch} times "
                f"window_size {window_size}"
            )
        n = self.grid * self.grid

        def swin(dim: int) -> SwinTransformer:
            return SwinTransformer(
                dim, self.grid, tuple(depths), tuple(num_heads), window_size, dim_mlp, scale
            )

        self.tablock1 = nn.ModuleList(TABlock(n) for _ in range(num_tab))
        self.conv1 = nn.Conv2d(self.vit.embed_dim * len(_TAPS), embed_dim, 1, 1, 0)
        self.swintransformer1 = swin(embed_dim)
        self.tablock2 = nn.ModuleList(TABlock(n) for _ in range(num_tab))
        self.conv2 = nn.Conv2d(embed_dim, embed_dim // 2, 1, 1, 0)
        self.swintransformer2 = swin(embed_dim // 2)
        self.fc_score = _head(embed_dim // 2, drop, nn.ReLU())
        self.fc_weight = _head(embed_dim // 2, drop, nn.Sigmoid())

    def vit_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S]`` -> the tapped ViT block outputs without the class token,
        concatenated: ``[B, N, 4 * 768]``."""
        vit = self.vit
        tokens = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(x))))
        taps = []
        # (F) blocks after the last tap, the final norm and the classifier are skipped
        for i, block in enumerate(vit.blocks[: max(_TAPS) + 1]):
            tokens = block(tokens)
            if i in _TAPS:
                taps.append(tokens[:, 1:])
        return torch.cat(taps, dim=2)

    def forward(
        self, x: torch.Tensor, return_patches: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scores ``[B]`` of normalised crops ``x`` ``[B, 3, 224, 224]``.

        With ``return_patches``, also the per-token scores f and weights w on the token grid
        (``[B, 28, 28]`` each at 224): the score is sum(f w) / sum(w).
        """
        g = self.grid
        y = self.vit_features(x).transpose(1, 2)  # [B, 3072, N]: channels as tokens
        for block in self.tablock1:
            y = block(y)
        y = self.swintransformer1(self.conv1(y.unflatten(2, (g, g))))  # [B, 768, g, g]
        y = y.flatten(2)
        for block in self.tablock2:
            y = block(y)
        y = self.swintransformer2(self.conv2(y.unflatten(2, (g, g))))  # [B, 384, g, g]
        tokens = y.flatten(2).transpose(1, 2)  # [B, N, 384]
        f = self.fc_score(tokens).squeeze(-1)  # [B, N]
        w = self.fc_weight(tokens).squeeze(-1)
        # (F) one weighted mean per image for the whole batch (official: a loop into .cuda())
        score = (f * w).sum(dim=1) / w.sum(dim=1)
        if return_patches:
            return score, f.reshape(-1, g, g), w.reshape(-1, g, g)
        return score


def build(**options) -> MANIQA:
    """A randomly initialised MANIQA; options are the constructor's (``scale``, ...)."""
    return MANIQA(**options)


ENTRY = ModelEntry(
    name="maniqa",
    build=build,
    head=("fc_score", "fc_weight"),
    inputs=Crops(NET_INPUT, PROTOCOL, patch_scores=True),
    releases=RELEASES,
    citation=(
        "S. Yang, T. Wu, S. Shi, S. Lao, Y. Gong, M. Cao, J. Wang, Y. Yang. MANIQA: "
        "Multi-dimension attention network for no-reference image quality assessment. CVPR "
        "Workshops (NTIRE), 2022."
    ),
    # the ViT-B/8 of the vendored timm 0.5.5: the AugReg file AHIQ also reads
    pretrained=(Pretrained("vit", "ahiq-vit_base_patch8_224.augreg_in21k_ft_in1k"),),
)

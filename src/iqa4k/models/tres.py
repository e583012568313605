"""TReS: a ResNet whose multi-scale features pass through a small transformer encoder.

Paper: S. Alireza Golestaneh, Saba Dadsetan, Kris M. Kitani, "No-Reference Image Quality
Assessment via Transformers, Relative Ranking, and Self-Consistency", WACV 2022.
Official code: https://github.com/isalirezag/TReS (``models.py``: ``Net``; ``resnet_modify.py``,
``transformers.py``, ``posencode.py``; read at commit 1fb1e40dcbff7cef1efb62f9e0bb84ee51b0d859,
2023-02-16), under a Carnegie Mellon University licence for noncommercial research only.

Structure, for a 224x224 crop (ResNet-50, the released configuration):

- ``model``: a torchvision ResNet-50 (the official code copies torchvision's ImageNet weights
  into its own copy of the class, which also returns the four stage outputs). Its ImageNet
  classifier ``fc`` is kept because the checkpoints hold it, but its output is never used.
- each stage output (256x56x56, 512x28x28, 1024x14x14, 2048x7x7) is L2-normalised over
  channels, "L2-pooled" (square, depthwise 3x3 Hann-window blur, square root: ``L2pooling_l*``,
  whose fixed filters are buffers in the checkpoint), dropped out (p 0.1, training only) and
  average-pooled to 7x7; the concatenation is a 3840x7x7 map, i.e. 49 tokens of width 3840.
- ``transformer``: a DETR encoder (2 pre-norm layers, 16 heads, feed-forward width 64, dropout
  0.5, final LayerNorm) with a fixed normalised sine position encoding added to queries and
  keys in every layer. The encoding is built for a 7x7 grid, so only 224x224 crops fit.
- head: the mean token -> ``fc2`` (3840 -> 2048), concatenated with the mean of stage 4
  (2048) -> ``fc`` (4096 -> 1). The score is unbounded, on the training labels' scale.

Self-consistency: the official ``Net.forward`` always runs a second pass on the horizontally
flipped crop (no feature dropout) and returns ``(prediction, consistency loss)``, where the
loss is the L1 distance of the transformer outputs and of the stage-4 maps between the passes
(the flipped ones detached, compared position by position without un-flipping them). The
prediction comes from the unflipped pass alone, so :meth:`TReS.forward` skips the flipped
pass, which halves the cost of inference and gives the same score. :meth:`TReS.forward_train`
runs both passes as the official forward does.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import WeightsFile
from .entry import ModelEntry, Pretrained, Release
from .inputs import IMAGENET_MEAN, IMAGENET_STD, CropProtocol, Crops, NetInput

NET_INPUT = NetInput(size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD)

PROTOCOL = CropProtocol(
    n_crops=50,
    resize=(512, 384),
    source=(
        "data_loader.py (koniq test transform: Resize((512, 384)), i.e. H=512 W=384, PIL "
        "bilinear, then RandomCrop(224)) with args.py test_patch_num=50; TReS.test in models.py "
        "averages the 50 crop predictions of each image. The other datasets' test transforms "
        "do not resize (FLIVE: Resize((512, 512))). predict.py (the Replicate demo) instead "
        "scores a single CenterCrop(224) of the unresized image."
    ),
)

_LICENCE = (
    "TReS software licence agreement (Carnegie Mellon University): academic or non-profit, "
    "noncommercial internal research use only, no redistribution; the repository's licence, "
    "no separate terms for the weights"
)
_FOLDER = "https://drive.google.com/drive/folders/149CcTlnVX3fXmNFmnFRwUmX0PL8jd5vf"

RELEASES: dict[str, Release] = {
    "koniq": Release(
        file=WeightsFile(
            filename="bestmodel_1_2021",
            url=_FOLDER,
            sha256=None,
            licence=_LICENCE,
            note=(
                "Trained on KonIQ-10k (run.sh: ResNet-50, seed 2021, version 1); predicts "
                "MOS_zscore on about 0-100, higher is better. A plain Net state_dict (354 entries) "
                "in the Google Drive folder's KonIQ run directory: predict.py names the LIVE one "
                "live_1_2021/sv/bestmodel_1_2021, so koniq_1_2021/sv/bestmodel_1_2021 by analogy "
                "(the folder's listing was not checked here)."
            ),
        ),
        metric="tres",
        summary="TReS (ResNet-50 + transformer, relative ranking), KonIQ-10k release.",
    ),
    "live": Release(
        file=WeightsFile(
            filename="bestmodel_1_2021",
            url=_FOLDER,
            sha256=None,
            licence=_LICENCE,
            note=(
                "Trained on LIVE (run.sh: ResNet-50, seed 2021, version 1); predicts realigned "
                "DMOS, lower is better. live_1_2021/sv/bestmodel_1_2021 in the Google Drive folder "
                "(predict.py loads it as pretrained_models/live_1_2021/sv/bestmodel_1_2021.zip, "
                "which torch.load reads as is). Officially tested on 50 random 224 crops without "
                "a resize; predict.py scores one centre crop."
            ),
        ),
        higher_is_better=False,
    ),
}

# stage widths of each torchvision backbone the official Net accepts
_BACKBONES = {
    "resnet50": (256, 512, 1024, 2048),
    "resnet34": (64, 128, 256, 512),
    "resnet18": (64, 128, 256, 512),
}
_GRID = 7  # stage 4 of a 224 crop is 7x7; every stage is pooled to it
_POOLS = (8, 4, 2, 1)  # 56, 28, 14 and 7 -> 7


def sine_position_encoding(channels: int, side: int = _GRID) -> torch.Tensor:
    """DETR's normalised sine encoding of a ``side x side`` grid as ``[side*side, channels]``.

    The first half of the channels encodes the row, the second the column; within each half,
    channel pairs ``(2k, 2k+1)`` are ``sin`` and ``cos`` of ``2 pi (i / side) / 10000^(2k/half)``
    for the 1-based position ``i``. Tokens are in row-major order, as ``flatten(2)`` leaves them.
    """
    half = channels // 2
    steps = torch.arange(1, side + 1, dtype=torch.float32)
    coord = steps / (steps[-1:] + 1e-6) * (2 * math.pi)  # the official normalisation
    index = torch.arange(half, dtype=torch.float32)
    freq = 10000.0 ** (2 * torch.div(index, 2, rounding_mode="floor") / half)
    angle = coord[:, None] / freq  # [side, half]
    enc = torch.empty_like(angle)
    enc[:, 0::2] = angle[:, 0::2].sin()
    enc[:, 1::2] = angle[:, 1::2].cos()
    rows = enc[:, None, :].expand(side, side, half)
    cols = enc[None, :, :].expand(side, side, half)
    return torch.cat((rows, cols), dim=-1).reshape(side * side, 2 * half)


class _L2Pool(nn.Module):
    """sqrt(Hann-blur(x^2)): a depthwise 3x3 filter [.5, 1, .5] x [.5, 1, .5] / 4, padding 1."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        tap = torch.tensor([0.5, 1.0, 0.5])
        kernel = torch.outer(tap, tap)
        kernel = kernel / kernel.sum()
        self.register_buffer("filter", kernel.expand(channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blurred = F.conv2d(x * x, self.filter, padding=1, groups=x.shape[1])
        return (blurred + 1e-12).sqrt()


class _SelfAttention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameters, on ``[B, N, C]``.

    Queries and keys share one input (tokens plus position encoding), values another.
    ``dropout`` is the attention-weight dropout, active in training only.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, qk: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, n, c = v.shape
        dim = c
        q, k = F.linear(qk, self.in_proj_weight[: 2 * dim], self.in_proj_bias[: 2 * dim]).chunk(
            2, dim=-1
        )
        v = F.linear(v, self.in_proj_weight[2 * dim :], self.in_proj_bias[2 * dim :])
        q, k, v = (t.view(b, n, self.heads, c // self.heads).transpose(1, 2) for t in (q, k, v))
        drop = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))


class _EncoderLayer(nn.Module):
    """A pre-norm DETR encoder layer: the position encoding is added to queries and keys only."""

    def __init__(self, dim: int, heads: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = _SelfAttention(dim, heads, dropout)
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.dropout1(self.self_attn(h + pos, h))
        h = self.norm2(x)
        return x + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(h)))))


class _Encoder(nn.Module):
    def __init__(
        self, dim: int, heads: int, num_layers: int, dim_feedforward: int, dropout: float
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            _EncoderLayer(dim, heads, dim_feedforward, dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)  # pre-norm layers need a final norm

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, pos)
        return self.norm(x)


class _Transformer(nn.Module):
    """The official ``Transformer`` (encoder only), on tokens ``[B, N, C]``."""

    def __init__(
        self, dim: int, heads: int, num_layers: int, dim_feedforward: int, dropout: float
    ) -> None:
        super().__init__()
        self.encoder = _Encoder(dim, heads, num_layers, dim_feedforward, dropout)
        for p in self.parameters():  # the official initialisation of every matrix
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, tokens: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        return self.encoder(tokens, pos)


class TReS(nn.Module):
    """The official ``Net``: parameter names and shapes equal its state_dict's.

    ``backbone``, ``nhead``, ``num_layers`` and ``dim_feedforward`` are the official
    ``cfg.network``, ``nheadt``, ``num_encoder_layerst`` and ``dim_feedforwardt``; the defaults
    are run.sh's, those of every release. ResNet-34/18 give 960-wide tokens.
    """

    def __init__(
        self,
        backbone: Literal["resnet50", "resnet34", "resnet18"] = "resnet50",
        nhead: int = 16,
        num_layers: int = 2,
        dim_feedforward: int = 64,
    ) -> None:
        super().__init__()
        if backbone not in _BACKBONES:
            raise ValueError(f"backbone must be one of {', '.join(_BACKBONES)}, not {backbone!r}")
        from torchvision import models  # deferred: see iqa4k.models

        make, widths = getattr(models, backbone), _BACKBONES[backbone]
        for index, width in enumerate(widths, start=1):
            setattr(self, f"L2pooling_l{index}", _L2Pool(width))
        self.model = make(weights=None)  # never ImageNet weights here: checkpoints carry them
        dim = sum(widths)
        self.transformer = _Transformer(dim, nhead, num_layers, dim_feedforward, dropout=0.5)
        head = self.model.fc.in_features
        self.fc2 = nn.Linear(dim, head)
        self.fc = nn.Linear(2 * head, 1)
        self.drop2d = nn.Dropout(p=0.1)  # on the pooled stage features of the unflipped pass
        # a constant, rebuilt rather than stored: the checkpoints do not hold it
        self.register_buffer("pos_embed", sine_position_encoding(dim), persistent=False)

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        m = self.model
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        out = []
        for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
            x = layer(x)
            out.append(x)
        return out

    def _pass(
        self, x: torch.Tensor, feature_dropout: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pass: (scores ``[B]``, transformer output ``[B,49,C]``, stage 4 ``[B,C4,7,7]``)."""
        side = NET_INPUT.size
        if x.shape[-2:] != (side, side):
            # the position encoding and the pools are built for a 7x7 stage-4 grid
            raise ValueError(f"TReS takes {side}x{side} crops, got {tuple(x.shape[-2:])}")
        stages = self._stages(x)
        maps = []
        for index, (feat, pool) in enumerate(zip(stages, _POOLS, strict=True), start=1):
            t = getattr(self, f"L2pooling_l{index}")(F.normalize(feat, dim=1))
            if feature_dropout:
                t = self.drop2d(t)
            maps.append(F.avg_pool2d(t, pool) if pool > 1 else t)
        tokens = torch.cat(maps, dim=1).flatten(2).transpose(1, 2)  # [B, 49, C]
        tokens = self.transformer(tokens, self.pos_embed)
        layer4 = stages[-1]
        joint = torch.cat((self.fc2(tokens.mean(dim=1)), layer4.mean(dim=(2, 3))), dim=1)
        return self.fc(joint)[:, 0], tokens, layer4

    def forward(
        self, x: torch.Tensor, training_outputs: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``[B,3,224,224]`` ImageNet-normalised crops -> ``[B]`` quality scores
        (``training_outputs``: :meth:`forward_train`'s triple, for the training loss).

        The official forward's prediction, without its flipped pass (which only feeds the
        consistency loss). The official forward also calls its dropout modules at test time,
        but ``nn.Dropout`` and the attention dropout do nothing in eval mode, so the eval-mode
        score is deterministic. In training mode the feature and transformer dropouts act.
        """
        if training_outputs:
            return self.forward_train(x)
        return self._pass(x, feature_dropout=True)[0]

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The official ``Net.forward`` with both passes: ``(pred, pred_flipped, consistency)``.

        ``pred`` (``[B]``) and ``consistency`` (a scalar) are what the official forward
        returns; ``pred_flipped`` (``[B]``) is the flipped pass's prediction, which it computes
        and discards. The flipped pass has no feature dropout, and in training mode BatchNorm
        updates its running statistics in both passes, as there. The official training step
        calls the network on the crop and again on its flip, and uses ``pred`` and
        ``consistency`` of each: ``p, _, c = forward_train(x)``,
        ``p2, _, c2 = forward_train(x.flip(3))``.
        """
        pred, tokens, layer4 = self._pass(x, feature_dropout=True)
        pred_f, tokens_f, layer4_f = self._pass(torch.flip(x, [3]), feature_dropout=False)
        # (R) the flipped maps are compared as they are, not flipped back
        consistency = F.l1_loss(tokens, tokens_f.detach()) + F.l1_loss(layer4, layer4_f.detach())
        return pred, pred_f, consistency


def build(**options: str | int) -> TReS:
    """A TReS with the official random initialisation (no ImageNet weights, no download)."""
    return TReS(**options)


ENTRY = ModelEntry(
    name="tres",
    build=build,
    head=("fc2", "fc"),
    channels_last=True,  # benchmarks/deep_4k.py
    inputs=Crops(NET_INPUT, PROTOCOL),
    releases=RELEASES,
    citation=(
        "S. A. Golestaneh, S. Dadsetan, K. M. Kitani. No-reference image quality assessment via "
        "transformers, relative ranking, and self-consistency. WACV, 2022."
    ),
    pretrained=(Pretrained("model", "torchvision-resnet50"),),
)

"""MaxIQA: MaxViT features refined by channel attention and fused by self-attention (no-reference).

Shawn Lee (supervised by Aaron Zhang), University of Bristol, "MaxIQA: MaxViT backbone with
Channel Attention and Self-Attention for Blind Image Quality Assessment for 4K Super-Resolution
image dataset", project poster and code release, 2025 (the repository cites no paper).
Official code: https://github.com/mb21100/myModel at commit
48d1e2b2bf57d647d07fbd6e9e8b945b2c4fdd0b, ``models/maxiqa.py``, where the class is still called
``MANIQA`` (the repository grew out of MANIQA's training code). The official environment
vendors timm 1.0.15; parameter names and outputs are the same under timm 1.0.31.

Structure. A MaxViT-B (``maxvit_rmlp_base_rw_224``, timm, feature extractor) gives two maps per
stage, both ``[B,C,H/s,W/s]`` with C = 96, 192, 384, 768 and s = 4, 8, 16, 32:

- "global": the stage output;
- "local": the residual branch of the stage's first MBConv block (its ``conv3_1x1`` output,
  taken before the shortcut is added), read by a forward hook on that block's ``drop_path``.

Per stage, ``fusion_modules`` concatenates local and global, reduces 2C -> C with a 1x1
convolution, BN and ReLU, and reweights channels (CBAM's channel attention; the spatial half is
disabled in the official code), then ``stage_norms`` (BN) and Dropout2d. ``self_attn_fusion``
pools each stage to 7x7, projects it to 512 channels, and runs the 4 x 49 = 196 tokens plus a
learned position embedding through two post-norm transformer encoder layers; their mean goes
through ``mlp_basic`` and ``fusion_head`` to one logit and a sigmoid. Scores lie in (0, 1),
higher is better (trained on min-max-normalised PIPAL MOS).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import WeightsFile
from .entry import ModelEntry, Pretrained, Release
from .inputs import HALF, CropProtocol, Crops, NetInput

# utils/process.py: RGB / 255, then Normalize(0.5, 0.5) -> [-1, 1]; crops of 224 (timm's
# maxvit_rmlp_base_rw_224 also declares mean = std = 0.5)
NET_INPUT = NetInput(size=224, mean=HALF, std=HALF)

PROTOCOL = CropProtocol(
    n_crops=15,
    source=(
        "sr4kiqa_inference.py eval_epoch: num_avg_val=15 random 224x224 crops of the full "
        "image (no resize; utils/inference_process.py random_crop, offsets randint(0, h - 224) "
        "with an exclusive upper bound), predictions averaged. The official script draws one "
        "crop position per batch of 8 images and its loader uses drop_last=True, silently "
        "dropping the last partial batch; here each image gets its own seeded crops and no "
        "image is dropped (F). qads_inference.py uses 5 crops the same way."
    ),
)

RELEASES: dict[str, Release] = {
    "pipal": Release(
        file=WeightsFile(
            filename="maxiqa_pipal.pth",
            url="https://drive.google.com/drive/folders/1fFv3BFGcDvrerYEMK9wWPuJzqtF9aRN_",
            sha256=None,
            licence="none stated (the repository has no LICENSE file)",
            note=(
                "PIPAL-trained checkpoint from the Google Drive folder of the README: "
                "torch.save(net.state_dict()) under nn.DataParallel, so every key starts with "
                "'module.' (strip it). 1408 entries, backbone included. The folder could not be "
                "listed where this was written, so the published file name is unknown: "
                "maxiqa_pipal.pth is the name to save it under (the official inference scripts "
                "load output9/.../model_maniqa_pipal_epoch5.pth or output8/.../epoch3.pth; which "
                "training run the release is, is not documented). The code reports SR4KIQA SRCC "
                ".7474 and QADS SRCC .8682 for a PIPAL-trained model."
            ),
        ),
        metric="maxiqa",
        summary="MaxIQA (MaxViT + channel attention + self-attention), trained on PIPAL; 0..1.",
        options={"drop": 0.3, "hidden_dim": 768},
        score_range=(0.0, 1.0),
    ),
}

BACKBONE_TAG = "maxvit_rmlp_base_rw_224.sw_in12k_ft_in1k"
FUSION_DIM = 512  # width of the tokens in self_attn_fusion
TOKEN_GRID = (7, 7)  # every stage is pooled to this grid before tokenisation

# Attribute on each hooked drop_path: a list while MaxIQA.forward waits for the tap, else None.
_TAP_SLOT = "_maxiqa_tap"


def _store_tap(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
    """Forward hook on ``blocks.0.conv.drop_path``: keep its output if a forward asked for it.

    The slot lives on the hooked module itself, not on the model, so that each replica made by
    ``nn.DataParallel`` (which shares hook functions but copies modules) fills its own slot; a
    hook that wrote into the parent model's dict would leave the replicas' taps empty. Only the
    first call per forward is kept, as in the official code.
    """
    slot = module.__dict__.get(_TAP_SLOT)
    if slot is not None and not slot:
        slot.append(output)


class ChannelAttention(nn.Module):
    """CBAM channel gate: sigmoid of a shared bottleneck MLP on the average- and max-pooled map."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = channels // reduction
        self.fc = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean_pooled = F.adaptive_avg_pool2d(x, 1)
        max_pooled = F.adaptive_max_pool2d(x, 1)
        return torch.sigmoid(self.fc(mean_pooled) + self.fc(max_pooled))


class CBAM(nn.Module):
    """Channel attention only: the official spatial-attention branch is commented out (R)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channel_attention = ChannelAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.channel_attention(x)


class StageFusion(nn.Module):
    """Local and global map of one stage -> one ``[B,C,h,w]`` map (official ``FusionModule``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1x1 = nn.Conv2d(2 * channels, channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.ReLU(inplace=True)
        self.cbam = CBAM(channels)

    def forward(self, local: torch.Tensor, global_: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.conv1x1(torch.cat((local, global_), dim=1))))
        return self.cbam(x)


class TokenFusion(nn.Module):
    """Pool every stage to a 7x7 grid, project to ``dim``, encode all tokens, average them.

    Official ``SelfAttentionFusionAvg``. ``nn.TransformerEncoder`` is kept as the module type:
    in eval mode without gradients it takes PyTorch's fused fast path, so only the same module
    gives bitwise-close outputs (R).
    """

    def __init__(
        self,
        in_channels: list[int],
        dim: int = FUSION_DIM,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.projs = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in in_channels)
        layer = nn.TransformerEncoderLayer(
            d_model=dim, nhead=heads, dropout=dropout, batch_first=True
        )
        self.transformer_encoder = nn.TransformerEncoder(layer, num_layers=layers)
        n_tokens = len(in_channels) * TOKEN_GRID[0] * TOKEN_GRID[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, n_tokens, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        # [B,dim,7,7] -> [B,49,dim] per stage, stages one after another along the tokens
        tokens = [
            proj(F.adaptive_avg_pool2d(m, TOKEN_GRID)).flatten(2).transpose(1, 2)
            for proj, m in zip(self.projs, maps, strict=True)
        ]
        x = torch.cat(tokens, dim=1) + self.pos_embed
        return self.transformer_encoder(x).mean(dim=1)


class MaxIQA(nn.Module):
    """MaxIQA network: ``[B,3,224,224]`` in [-1, 1] -> scores ``[B]`` in (0, 1).

    ``hidden_dim`` is the width of the regression head and ``drop`` every dropout rate
    (stage Dropout2d, transformer layers, head); the official defaults are 768 and 0.3.
    """

    def __init__(self, drop: float = 0.3, hidden_dim: int = 768) -> None:
        super().__init__()
        import timm  # deferred: see iqa4k.models

        # pretrained=False always: released checkpoints hold the backbone weights too
        self.backbone = timm.create_model(
            BACKBONE_TAG, pretrained=False, features_only=True, out_indices=(1, 2, 3, 4)
        )
        channels = list(self.backbone.feature_info.channels())  # 96, 192, 384, 768
        self.n_stages = len(channels)
        for stage in range(self.n_stages):
            self._tap_site(stage).register_forward_hook(_store_tap)

        # keyed by stage index as strings, as the official ModuleDict
        self.fusion_modules = nn.ModuleDict(
            {str(i): StageFusion(c) for i, c in enumerate(channels)}
        )
        self.stage_norms = nn.ModuleList(nn.BatchNorm2d(c) for c in channels)
        self.stage_drops = nn.ModuleList(nn.Dropout2d(drop) for _ in channels)
        self.self_attn_fusion = TokenFusion(channels, FUSION_DIM, dropout=drop)
        self.mlp_basic = nn.Sequential(
            nn.Linear(FUSION_DIM, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(drop),
        )
        self.fusion_head = nn.Sequential(
            nn.Linear(hidden_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(drop),
            nn.Linear(hidden_dim, 1),
        )

    def _tap_site(self, stage: int) -> nn.Module:
        """The module whose output is the "local" map of ``stage``, found from ``self``.

        Looked up on every call rather than cached, so that a replica resolves its own copy.
        """
        return getattr(self.backbone, f"stages_{stage}").blocks[0].conv.drop_path

    def features(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(local, global)`` backbone maps of every stage."""
        sites = [self._tap_site(i) for i in range(self.n_stages)]
        slots: list[list[torch.Tensor]] = []
        for site in sites:  # arm a fresh slot per forward, so nothing leaks between calls
            slot: list[torch.Tensor] = []
            setattr(site, _TAP_SLOT, slot)
            slots.append(slot)
        try:
            global_maps = self.backbone(x)
        finally:
            for site in sites:
                setattr(site, _TAP_SLOT, None)
        if not all(slots):
            # The official code would silently use the global map instead (F).
            raise RuntimeError("MaxIQA: a first-MBConv tap did not fire during the forward")
        return [(slot[0], g) for slot, g in zip(slots, global_maps, strict=True)]

    def head(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Scores ``[B]`` from the ``(local, global)`` maps that :meth:`features` returns."""
        fused = []
        for i, (local, global_) in enumerate(pairs):
            y = self.fusion_modules[str(i)](local, global_)
            fused.append(self.stage_drops[i](self.stage_norms[i](y)))
        h = self.mlp_basic(self.self_attn_fusion(fused))
        return torch.sigmoid(self.fusion_head(h).squeeze(-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build(**options: Any) -> MaxIQA:
    """A MaxIQA network with random weights (options: ``drop``, ``hidden_dim``)."""
    return MaxIQA(**options)


ENTRY = ModelEntry(
    name="maxiqa",
    build=build,
    head=("mlp_basic", "fusion_head"),
    channels_last=True,  # benchmarks/deep_4k.py
    inputs=Crops(NET_INPUT, PROTOCOL),
    releases=RELEASES,
    citation=(
        "S. Lee, A. Zhang. MaxIQA: MaxViT backbone with channel attention and self-attention "
        "for blind image quality assessment of 4K super-resolution images. University of "
        "Bristol, 2025 (github.com/mb21100/myModel)."
    ),
    pretrained=(
        Pretrained(
            "backbone",
            "timm-maxvit_rmlp_base_rw_224.sw_in12k_ft_in1k",
            drop=("head.",),
            rename=((r"^stages\.(\d+)", r"stages_\1"),),  # features_only names
        ),
    ),
)

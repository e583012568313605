"""AHIQ: attention-based hybrid image quality assessment (full-reference).

Paper: Shanshan Lao, Yuan Gong, Shuwei Shi, Sidi Yang, Tianhe Wu, Jiahao Wang, Weihao Xia,
Yujiu Yang, "Attentions Help CNNs See Better: Attention-based Hybrid Image Quality Assessment
Network", CVPR Workshops (NTIRE 2022, first place in the full-reference track), 2022,
arXiv:2204.10485.
Official code: https://github.com/IIGROUP/AHIQ at commit 9cc6a4eed821bb8f16a1aae00d420b24625bc07a
(``model/deform_regressor.py`` for the two heads; ``train.py`` / ``test.py`` build the rest
inline with forward hooks on timm 0.5.4 backbones).

Structure. Two frozen ImageNet backbones see the distorted and the reference image:
ResNet-50, whose three ``layer1`` bottleneck outputs are concatenated ([B,768,56,56]), and
ViT-B/8, whose blocks 0-4 outputs without the class token are concatenated ([B,3840,28,28]).
``deform_net`` predicts deformable-convolution offsets from the *reference* ViT features and
uses them to resample both CNN feature maps, then halves their resolution to the ViT grid.
``regressor`` fuses ViT and CNN features per image, compares distorted with reference, and
predicts a score map and a sigmoid weight map over the 28x28 patches; the score is their
weighted mean. Higher is better (trained on min-max-normalised PIPAL MOS).

The official checkpoint holds only the two heads; the backbones come from timm's pretrained
weights (RSB-A1 ResNet-50 and AugReg in21k->in1k ViT-B/8), see ``RELEASES``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import WeightsFile
from .checkpoint import load_into, strip_prefix
from .entry import ModelEntry, Pretrained, Release
from .inputs import HALF, CropProtocol, Crops, NetInput

# data/pipal.py: RGB / 255, then (x - 0.5) / 0.5; the ResNet gets the same [-1, 1] input (R)
NET_INPUT = NetInput(size=224, mean=HALF, std=HALF)

PROTOCOL = CropProtocol(
    n_crops=20,
    source=(
        "test.py Test.test with options/test_options.py defaults: n_ensemble=20 random "
        "224x224 crops (crop_size), the same window for distorted and reference, predictions "
        "averaged"
    ),
)

_DRIVE = "https://drive.google.com/drive/folders/1-8LKOEDYt-RzmM9IDV_oW73uRBLqeRB6"
_HF = "https://huggingface.co/timm/{}/resolve/main/model.safetensors"

RESNET_TAG = "resnet50.a1_in1k"
VIT_TAGS = {
    8: "vit_base_patch8_224.augreg_in21k_ft_in1k",
    16: "vit_base_patch16_224.augreg_in21k_ft_in1k",
}

RELEASES: dict[str, Release] = {
    "pipal": Release(
        file=WeightsFile(
            filename="AHIQ_vit_p8_epoch33.pth",
            url=_DRIVE,
            sha256=None,
            licence="MIT",
            note=(
                "Official PIPAL (NTIRE 2022 FR) checkpoint from the Google Drive folder of the "
                "README (download.sh: gdown ids 1Nk-IpjnDNXbWacoh3T69wkSYhYYWip2W and "
                "1Jr2nLnhMA0f0uPEjMG7sH-T4WfIEasXn). A dict with regressor_model_state_dict and "
                "deform_net_model_state_dict (plus optimizer state): heads only; load with "
                "load_official_heads and take the backbones from the two timm releases below. "
                "The file name is the one third-party loaders of this folder use."
            ),
        ),
        metric="ahiq",
        summary="AHIQ (ViT + ResNet-50, deformable fusion), full-reference, trained on PIPAL.",
        options={"patch_size": 8},
        needs=(RESNET_TAG, VIT_TAGS[8]),
    ),
    RESNET_TAG: Release(
        file=WeightsFile(
            filename="resnet50.a1_in1k.safetensors",
            url=_HF.format(RESNET_TAG),
            # Hugging Face's LFS record of model.safetensors, as added in commit 93271f4 (the
            # file's page at revision 5d9e13b); 102 MB.
            sha256="773525d5821de224f8f30c33377b7a795d7863e08522698200d3217d3f2a41bb",
            licence="Apache-2.0",
            note=(
                "ResNet-50 backbone: timm's RSB A1 weights, which timm 0.5.4 (the official "
                "requirement) loads for pretrained 'resnet50'. Load with load_backbones."
            ),
        ),
    ),
    VIT_TAGS[8]: Release(
        file=WeightsFile(
            filename="vit_base_patch8_224.augreg_in21k_ft_in1k.safetensors",
            url=_HF.format(VIT_TAGS[8]),
            sha256=None,
            licence="Apache-2.0",
            note=(
                "ViT-B/8 backbone: AugReg in21k -> in1k weights, which timm 0.5.4 loads for "
                "pretrained 'vit_base_patch8_224' (timm 1.x defaults to augreg2, the wrong "
                "weights). Load with load_backbones."
            ),
        ),
    ),
}

N_CNN_BLOCKS = 3  # the three bottlenecks of layer1, each [B,256,56,56]
N_VIT_BLOCKS = 5  # transformer blocks 0..4, each 768 channels per patch
CNN_CHANNELS = 256 * N_CNN_BLOCKS
VIT_CHANNELS = 768 * N_VIT_BLOCKS


class DeformFusion(nn.Module):
    """Warps CNN features with offsets predicted from ViT features (official ``deform_fusion``).

    Output: ``[B,768,h,w]`` on the ViT patch grid (28x28 for patch 8, 14x14 for patch 16).
    """

    def __init__(self, patch_size: int = 8, hidden: int = 512) -> None:
        super().__init__()
        # 2 offsets (dy, dx) for each of the 3x3 kernel taps
        self.conv_offset = nn.Conv2d(VIT_CHANNELS, 2 * 3 * 3, 3, padding=1)
        from torchvision.ops import DeformConv2d  # deferred: see iqa4k.models

        self.deform = DeformConv2d(CNN_CHANNELS, CNN_CHANNELS, 3, padding=1)
        # 56 -> 28 always; a further /2 brings the map to the 14x14 grid of ViT-B/16
        self.conv1 = nn.Sequential(
            nn.Conv2d(CNN_CHANNELS, hidden, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, CNN_CHANNELS, 3, stride=1 if patch_size == 8 else 2, padding=1),
        )

    def forward(self, cnn_feat: torch.Tensor, vit_feat: torch.Tensor) -> torch.Tensor:
        """``cnn_feat`` [k*B,768,56,56] (k maps per offset source) and ``vit_feat`` [B,3840,h,w].

        The offsets are computed once per ``vit_feat`` image and reused for each of the k CNN
        maps stacked along the batch (AHIQ warps dist and ref CNN features alike).
        """
        vit_up = _upsample_nearest(vit_feat, cnn_feat.shape[-2:])
        offset = self.conv_offset(vit_up)
        repeats = cnn_feat.shape[0] // offset.shape[0]
        if repeats * offset.shape[0] != cnn_feat.shape[0]:
            raise ValueError("cnn_feat batch must be a multiple of vit_feat batch")
        offset = offset.repeat(repeats, 1, 1, 1)
        if cnn_feat.device.type == "cpu":  # 2.4x torchvision's CPU kernel (ahiq_kernels.py)
            warped = deform_conv3x3(cnn_feat, offset, self.deform.weight, self.deform.bias)
        else:
            warped = self.deform(cnn_feat, offset)
        return self.conv1(warped)


def _upsample_nearest(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """``F.interpolate(x, size, mode="nearest")`` for an integer factor, as a broadcast copy:
    14x faster than torch's CPU kernel on AHIQ's 3840-channel maps, which it computes
    channels-last and then copies back (``benchmarks/ahiq_kernels.py``)."""
    (h, w), (out_h, out_w) = x.shape[-2:], size
    if out_h % h or out_w % w:
        return F.interpolate(x, size=size, mode="nearest")
    fh, fw = out_h // h, out_w // w
    grown = x[:, :, :, None, :, None].expand(-1, -1, h, fh, w, fw)
    return grown.reshape(x.shape[0], x.shape[1], out_h, out_w)


def deform_conv3x3(
    x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """torchvision's ``deform_conv2d`` for a 3x3 kernel, stride 1, padding 1, one offset group,
    as bilinear sampling (``grid_sample``) followed by one matrix product.

    Each of the 9 taps samples ``x`` at its shifted position (zero outside the image, as
    torchvision); the samples of all taps form the columns a convolution would multiply.
    """
    batch, channels, height, width = x.shape
    taps = weight.shape[-2] * weight.shape[-1]
    off = offset.view(batch, taps, 2, height, width)
    ky, kx = torch.meshgrid(torch.arange(-1, 2), torch.arange(-1, 2), indexing="ij")
    rows = torch.arange(height, dtype=x.dtype, device=x.device).view(1, 1, height, 1)
    cols = torch.arange(width, dtype=x.dtype, device=x.device).view(1, 1, 1, width)
    y = rows + ky.reshape(1, taps, 1, 1).to(x) + off[:, :, 0]
    xx = cols + kx.reshape(1, taps, 1, 1).to(x) + off[:, :, 1]
    # align_corners=True maps -1 and 1 to the centres of the first and last pixels
    grid = torch.stack((xx * 2 / (width - 1) - 1, y * 2 / (height - 1) - 1), dim=-1)
    sampled = F.grid_sample(
        x, grid.view(batch, taps * height, width, 2), align_corners=True, padding_mode="zeros"
    )
    columns = sampled.view(batch, channels * taps, height * width)
    kernel = weight.reshape(weight.shape[0], -1)
    # one plain matmul per image: a batched ``kernel @ columns`` would first copy the columns
    # into a transposed layout, which costs more than the product itself
    out = torch.stack([kernel @ c for c in columns])
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    return out.view(batch, -1, height, width)


class PixelPrediction(nn.Module):
    """Per-patch score and weight maps from dist/ref features (official ``Pixel_Prediction``)."""

    def __init__(self, reduced: int = 256, hidden: int = 1024) -> None:
        super().__init__()
        self.down_channel = nn.Conv2d(VIT_CHANNELS + CNN_CHANNELS, reduced, 1)
        self.feat_smoothing = nn.Sequential(
            nn.Conv2d(3 * reduced, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, 512, 3, padding=1),
        )
        self.conv1 = nn.Sequential(nn.Conv2d(512, 256, 3, padding=1), nn.ReLU())
        self.conv_attent = nn.Sequential(nn.Conv2d(256, 1, 1), nn.Sigmoid())
        self.conv = nn.Sequential(nn.Conv2d(256, 1, 1))

    def forward(
        self,
        vit_dist: torch.Tensor,
        vit_ref: torch.Tensor,
        cnn_dist: torch.Tensor,
        cnn_ref: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Score map and weight map, each ``[B,1,h,w]``."""
        # one shared 1x1 projection for both images: run it on them stacked along the batch
        both = torch.cat((torch.cat((vit_dist, cnn_dist), 1), torch.cat((vit_ref, cnn_ref), 1)), 0)
        f_dist, f_ref = self.down_channel(both).chunk(2, dim=0)
        fused = self.feat_smoothing(torch.cat((f_dist - f_ref, f_dist, f_ref), 1))
        feat = self.conv1(fused)
        return self.conv(feat), self.conv_attent(feat)


class AHIQ(nn.Module):
    """Full-reference AHIQ: frozen ResNet-50 + ViT backbones, ``deform_net`` and ``regressor``.

    ``state_dict`` names: ``regressor.*`` and ``deform_net.*`` are the official checkpoint's
    ``regressor_model_state_dict`` / ``deform_net_model_state_dict`` entries under a prefix;
    ``resnet.*`` and ``vit.*`` are timm's own names for the backbones.
    """

    def __init__(self, patch_size: int = 8) -> None:
        super().__init__()
        if patch_size not in VIT_TAGS:
            raise ValueError(f"patch_size must be 8 or 16, got {patch_size!r}")
        self.patch_size = patch_size
        import timm  # deferred: see iqa4k.models

        self.resnet = timm.create_model(RESNET_TAG, pretrained=False)
        self.vit = timm.create_model(VIT_TAGS[patch_size], pretrained=False)
        # heads in the order of the official checkpoint's dicts
        self.regressor = PixelPrediction()
        self.deform_net = DeformFusion(patch_size)
        # the backbones are never trained (the official optimiser holds the heads only)
        self.resnet.requires_grad_(False)
        self.vit.requires_grad_(False)
        self.resnet.eval()
        self.vit.eval()

    def train(self, mode: bool = True) -> AHIQ:
        """Switch the heads only: the backbones stay in eval mode (frozen batch norm).

        train.py keeps the backbones in eval mode for training and validation. (F) test.py
        never calls ``eval()``, so its ResNet normalises with the statistics of each test
        batch; here the batch norm always uses its running statistics.
        """
        super().train(mode)
        self.resnet.eval()
        self.vit.eval()
        return self

    def cnn_features(self, x: torch.Tensor) -> torch.Tensor:
        """The three layer1 bottleneck outputs, concatenated: ``[B,768,56,56]``.

        Only the stem and layer1 run; layers 2-4 and the classifier cannot change these.
        """
        r = self.resnet
        x = r.maxpool(r.act1(r.bn1(r.conv1(x))))
        taps = []
        for block in r.layer1[:N_CNN_BLOCKS]:
            x = block(x)
            taps.append(x)
        return torch.cat(taps, 1)

    def vit_features(self, x: torch.Tensor) -> torch.Tensor:
        """Blocks 0-4 outputs, class token dropped, concatenated: ``[B,3840,h,w]``.

        Blocks 5-11, the final norm and the head are skipped: they cannot change these.
        """
        taps = self.vit.forward_intermediates(
            x,
            indices=list(range(N_VIT_BLOCKS)),
            norm=False,
            stop_early=True,
            output_fmt="NCHW",
            intermediates_only=True,
        )
        return torch.cat(taps, 1)

    def forward(
        self, dist: torch.Tensor, ref: torch.Tensor, return_patches: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scores ``[B]`` for normalised 224x224 ``dist`` and ``ref`` ``[B,3,224,224]``.

        With ``return_patches``: ``(score, patch_scores, patch_weights)``, the maps
        ``[B,h,w]`` (28x28 for patch 8) with score = sum(f * w) / sum(w).
        """
        b = dist.shape[0]
        pair = torch.cat((dist, ref), 0)  # both images through each backbone in one pass
        vit_dist, vit_ref = self.vit_features(pair).split(b)
        cnn = self.cnn_features(pair)
        # offsets come from the reference's ViT features for both CNN maps (R)
        cnn_dist, cnn_ref = self.deform_net(cnn, vit_ref).split(b)
        f, w = self.regressor(vit_dist, vit_ref, cnn_dist, cnn_ref)
        score = (f * w).sum(dim=(2, 3))[:, 0] / w.sum(dim=(2, 3))[:, 0]
        if return_patches:
            return score, f[:, 0], w[:, 0]
        return score


def load_official_heads(model: AHIQ, checkpoint: Mapping[str, object]) -> AHIQ:
    """Load an official checkpoint dict (``regressor_model_state_dict``,
    ``deform_net_model_state_dict``) strictly into ``model.regressor`` / ``model.deform_net``."""
    model.regressor.load_state_dict(strip_prefix(checkpoint["regressor_model_state_dict"]))
    model.deform_net.load_state_dict(strip_prefix(checkpoint["deform_net_model_state_dict"]))
    return model


def load_backbones(
    model: AHIQ,
    resnet_state_dict: Mapping[str, torch.Tensor],
    vit_state_dict: Mapping[str, torch.Tensor],
) -> AHIQ:
    """Load timm state_dicts (e.g. the safetensors releases) strictly into the backbones."""
    model.resnet.load_state_dict(resnet_state_dict)
    model.vit.load_state_dict(vit_state_dict)
    return model


def load_checkpoint(
    model: AHIQ, state: Mapping[str, object], fetch: Callable[[str], Mapping]
) -> None:
    """Load a checkpoint: ours holds every weight; an official one only the heads, so the
    backbones come from their timm releases through ``fetch(release)``."""
    if "regressor_model_state_dict" not in state:
        load_into(model, state, "AHIQ checkpoint")
        return
    load_official_heads(model, state)
    load_backbones(model, fetch(RESNET_TAG), fetch(VIT_TAGS[model.patch_size]))


def build(patch_size: int = 8) -> AHIQ:
    """AHIQ with random weights (``patch_size`` 8, the official default, or 16)."""
    return AHIQ(patch_size=patch_size)


ENTRY = ModelEntry(
    name="ahiq",
    build=build,
    head=("regressor.conv", "regressor.conv_attent"),
    inputs=Crops(NET_INPUT, PROTOCOL, patch_scores=True),
    releases=RELEASES,
    citation=(
        "S. Lao, Y. Gong, S. Shi, S. Yang, T. Wu, J. Wang, W. Xia, Y. Yang. Attentions help "
        "CNNs see better: attention-based hybrid image quality assessment network. CVPR "
        "Workshops (NTIRE), 2022."
    ),
    kind="FR",
    load=load_checkpoint,
    pretrained=(
        Pretrained("resnet", f"ahiq-{RESNET_TAG}"),
        Pretrained("vit", f"ahiq-{VIT_TAGS[8]}"),
    ),
)

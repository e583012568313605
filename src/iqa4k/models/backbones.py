"""Pretrained backbone files the official training scripts start from, shared by models.

AHIQ's two timm backbones are its releases (it scores with them too); MANIQA starts from the
same ViT-B/8 file. The torchvision file names carry the first 8 hex digits of their SHA-256,
which is what torch.hub checks and what is recorded here.
"""

from __future__ import annotations

from ..weights import WeightsFile, register

_TV = "https://download.pytorch.org/models/{}"
_TV_LICENCE = "BSD-3-Clause (torchvision); trained on ImageNet-1k"

FILES = (
    WeightsFile(
        name="torchvision-resnet50",
        filename="resnet50-0676ba61.pth",
        url=_TV.format("resnet50-0676ba61.pth"),
        sha256="0676ba61",
        licence=_TV_LICENCE,
        note="torchvision ResNet50_Weights.IMAGENET1K_V1 (pretrained=True of the 2020-22 scripts)",
    ),
    WeightsFile(
        name="torchvision-swin_t",
        filename="swin_t-704ceda3.pth",
        url=_TV.format("swin_t-704ceda3.pth"),
        sha256="704ceda3",
        licence=_TV_LICENCE,
        note="torchvision Swin_T_Weights.IMAGENET1K_V1 (Swin_T_Weights.DEFAULT in UIQA's code)",
    ),
    WeightsFile(
        name="timm-maxvit_rmlp_base_rw_224.sw_in12k_ft_in1k",
        filename="maxvit_rmlp_base_rw_224.sw_in12k_ft_in1k.safetensors",
        url=(
            "https://huggingface.co/timm/maxvit_rmlp_base_rw_224.sw_in12k_ft_in1k/resolve/main/"
            "model.safetensors"
        ),
        sha256=None,
        licence="Apache-2.0 (timm)",
        note="timm MaxViT-B rmlp, ImageNet-12k then 1k: MaxIQA's pretrained=True backbone",
    ),
)

for _file in FILES:
    register(_file)

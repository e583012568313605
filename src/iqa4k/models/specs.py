"""The deep models' entries in the metric table: one per official release
(see :mod:`iqa4k.registry`; the functions behind them are in :mod:`.as_metric`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

from ..sampling import POLICIES
from ..spec import MetricSpec, Option
from .as_metric import score, score_uiqa, setup_for

_CROP_OPTIONS = {
    "weights": Option(
        "",
        "checkpoint file (official format or ours); empty: this release from the iqa4k cache, "
        "downloaded on first use when it has a direct link",
    ),
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

# MANIQA and AHIQ score the patches of a crop and pool them with weights they also predict.
_PATCH_OPTIONS = {
    **_CROP_OPTIONS,
    "aggregate": Option(
        "mean",
        "pooling over crops: mean of the crop scores (the official protocol) or patch_weights "
        "(every patch of every crop, weighted as the model weights the patches of one crop)",
        ("mean", "patch_weights"),
    ),
}

_UIQA_OPTIONS = {
    "weights": _CROP_OPTIONS["weights"],
    "seed": Option(2, "seed of the fragment offsets (2: the official test_single_image.py)"),
    "salient": Option(
        "centre",
        "third view: centre (the official code's 480 centre crop) or saliency (the most salient "
        "480 window by spectral residual, as the paper describes; see iqa4k.saliency)",
        ("centre", "saliency"),
    ),
}


def _deep(
    name: str,
    model: str,
    release: str,
    summary: str,
    citation: str,
    kind: str = "NR",
    score_range: tuple[float, float] = (-math.inf, math.inf),
    function: Callable[..., torch.Tensor] = score,
    options: Mapping[str, Option] = _CROP_OPTIONS,
) -> MetricSpec:
    return MetricSpec(
        name=name,
        kind=kind,
        higher_is_better=True,
        score_range=score_range,
        differentiable=False,
        summary=summary,
        citation=citation,
        function=function,
        options=options,
        setup=setup_for(name, model, release),
        model=(model, release),
    )


_MANIQA = (
    "S. Yang, T. Wu, S. Shi, S. Lao, Y. Gong, M. Cao, J. Wang, Y. Yang. MANIQA: Multi-dimension "
    "attention network for no-reference image quality assessment. CVPR Workshops (NTIRE), 2022."
)
SPECS = [
    _deep(
        "maxiqa",
        "maxiqa",
        "pipal",
        "MaxIQA (MaxViT + channel attention + self-attention), trained on PIPAL; 0..1.",
        "S. Lee, A. Zhang. MaxIQA: MaxViT backbone with channel attention and self-attention "
        "for blind image quality assessment of 4K super-resolution images. University of "
        "Bristol, 2025 (github.com/mb21100/myModel).",
        score_range=(0.0, 1.0),
    ),
    _deep(
        "uiqa",
        "uiqa",
        "uhd-iqa",
        "UIQA (three Swin-T: aesthetics, fragments, salient crop), UHD-IQA; AIM 2024 winner.",
        "W. Sun et al. Assessing UHD image quality from aesthetics, distortions, and saliency. "
        "arXiv:2409.00749, 2024 (winner of the AIM 2024 UHD-IQA challenge).",
        function=score_uiqa,
        options=_UIQA_OPTIONS,
    ),
    _deep(
        "ahiq",
        "ahiq",
        "pipal",
        "AHIQ (ViT + ResNet-50, deformable fusion), full-reference, trained on PIPAL.",
        "S. Lao, Y. Gong, S. Shi, S. Yang, T. Wu, J. Wang, W. Xia, Y. Yang. Attentions help "
        "CNNs see better: attention-based hybrid image quality assessment network. CVPR "
        "Workshops (NTIRE), 2022.",
        kind="FR",
        options=_PATCH_OPTIONS,
    ),
    _deep(
        "maniqa",
        "maniqa",
        "koniq",
        "MANIQA (ViT-B/8 + transposed attention + Swin), KonIQ-10k release.",
        _MANIQA,
        score_range=(0.0, math.inf),
        options=_PATCH_OPTIONS,
    ),
    _deep(
        "maniqa-kadid",
        "maniqa",
        "kadid",
        "MANIQA, KADID-10k release.",
        _MANIQA,
        score_range=(0.0, math.inf),
        options=_PATCH_OPTIONS,
    ),
    _deep(
        "maniqa-pipal",
        "maniqa",
        "pipal",
        "MANIQA, PIPAL 2022 release (NTIRE 2022 winner).",
        _MANIQA,
        score_range=(0.0, math.inf),
        options=_PATCH_OPTIONS,
    ),
    _deep(
        "hyperiqa",
        "hyperiqa",
        "koniq",
        "HyperIQA (ResNet-50 + hyper network), KonIQ-10k release.",
        "S. Su, Q. Yan, Y. Zhu, C. Zhang, X. Ge, J. Sun, Y. Zhang. Blindly assess image quality "
        "in the wild guided by a self-adaptive hyper network. CVPR, 2020.",
    ),
    _deep(
        "tres",
        "tres",
        "koniq",
        "TReS (ResNet-50 + transformer, relative ranking), KonIQ-10k release.",
        "S. A. Golestaneh, S. Dadsetan, K. M. Kitani. No-reference image quality assessment via "
        "transformers, relative ranking, and self-consistency. WACV, 2022.",
    ),
]

"""The classical metrics' rows of the metric table (see :mod:`iqa4k.registry`)."""

from __future__ import annotations

import math
from dataclasses import replace

from ..color import COLOR_SPACES
from ..metric_spec import MetricSpec, Option
from . import nrqm as _nrqm
from .brisque import brisque
from .niqe import niqe
from .piqe import piqe
from .psnr import psnr
from .ssim import MS_SSIM_WEIGHTS, ms_ssim, ssim


def _shared_options(crop_border: int = 0) -> dict[str, Option]:
    """Options every classical metric has: luma rounding, border shave, input range."""
    return {
        "quantize": Option(
            True,
            "round gray/y to the 8-bit grid as MATLAB does for uint8 images (straight-through)",
        ),
        "crop_border": Option(
            crop_border,
            "pixels shaved from each side before scoring (SR convention: the scale)",
            minimum=0,
        ),
        "data_range": Option(
            1.0,
            "value range of tensor/array inputs: 1.0 for [0,1], 255.0 for [0,255]",
            minimum=1e-12,
        ),
    }


def _odd(size: int) -> str:
    return "" if size % 2 else "must be odd (a window centred on its pixel)"


def _scale_weights(weights: tuple) -> str:
    if not weights or min(weights) < 0 or not any(weights):
        return "must hold one weight per scale, none negative and not all zero"
    return ""


_WINDOW = {
    "win_size": Option(11, "side of the Gaussian window (odd)", minimum=1, rule=_odd),
    "win_sigma": Option(1.5, "standard deviation of the Gaussian window", minimum=1e-6),
    "k1": Option(0.01, "luminance stabiliser: C1 = (k1 * L)^2", minimum=0.0),
    "k2": Option(0.03, "contrast stabiliser: C2 = (k2 * L)^2", minimum=0.0),
}


def _classic(**fields) -> MetricSpec:
    """A classical metric's spec: tensor inputs in [0, data_range] (see :func:`_shared_options`)."""
    return MetricSpec(range_option="data_range", **fields)


def _color(default: str, choices: tuple[str, ...] = COLOR_SPACES) -> dict[str, Option]:
    doc = "channels the metric is computed on: " + ", ".join(
        {"rgb": "rgb", "gray": "gray (MATLAB rgb2gray)", "y": "y (BT.601 luma)"}[c] for c in choices
    )
    return {"color_space": Option(default, doc, choices)}


def _on_luma(spec: MetricSpec, summary: str) -> MetricSpec:
    """The ``_y`` variant of ``spec``: the same metric on BT.601 luma, as SR papers report it."""
    options = {**spec.options, **_color("y")}
    return replace(spec, name=f"{spec.name}_y", summary=summary, options=options)


_PSNR = _classic(
    name="psnr",
    kind="FR",
    higher_is_better=True,
    score_range=(0.0, math.inf),
    differentiable=True,
    summary="Peak signal-to-noise ratio in dB over all RGB samples (MATLAB psnr).",
    citation="Peak signal-to-noise ratio; MATLAB Image Processing Toolbox psnr().",
    function=psnr,
    options={**_color("rgb"), **_shared_options()},
)
_SSIM = _classic(
    name="ssim",
    kind="FR",
    higher_is_better=True,
    score_range=(-1.0, 1.0),
    differentiable=True,
    summary="Structural similarity, Wang et al.'s ssim.m on MATLAB rgb2gray.",
    citation=(
        "Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli. Image quality assessment: from "
        "error visibility to structural similarity. IEEE TIP 13(4):600-612, 2004."
    ),
    function=ssim,
    options={
        **_color("gray"),
        **_shared_options(),
        "downsample": Option(
            False,
            "ssim.m's automatic f x f box downsampling, f = round(min(H,W)/256); "
            "off scores full resolution",
        ),
        **_WINDOW,
    },
)
_MS_SSIM = _classic(
    name="ms_ssim",
    kind="FR",
    higher_is_better=True,
    score_range=(0.0, 1.0),
    differentiable=True,
    summary="Multi-scale SSIM, Wang et al.'s msssim.m (5 scales) on MATLAB rgb2gray.",
    citation=(
        "Z. Wang, E. P. Simoncelli, A. C. Bovik. Multiscale structural similarity for image "
        "quality assessment. Asilomar Conference on Signals, Systems and Computers, 2003."
    ),
    function=ms_ssim,
    options={
        **_color("gray"),
        **_shared_options(),
        **_WINDOW,
        "scale_weights": Option(
            MS_SSIM_WEIGHTS, "weight of each scale, finest first", rule=_scale_weights
        ),
        "pooling": Option(
            "product",
            "combine scales as msssim.m's 'product' (the paper) or 'wtd_sum' "
            "(normalised weighted sum)",
            ("product", "wtd_sum"),
        ),
    },
)


# NRQM and PI read Ma et al.'s model.mat (not shipped; see iqa4k.weights), loaded at creation.
_MA_OPTIONS = {
    **_color("y", ("y", "gray")),
    **_shared_options(crop_border=4),  # PIRM 2018 shaved 4 pixels
    "model_path": Option("", "path of Ma et al.'s model.mat; empty: the iqa4k cache"),
    "download": Option(False, "fetch model.mat into the cache when it is missing (network)"),
}
_NRQM_CITATION = (
    "C. Ma, C.-Y. Yang, X. Yang, M.-H. Yang. Learning a no-reference quality metric for "
    "single-image super-resolution. Computer Vision and Image Understanding 158:1-16, 2017."
)
_NRQM = _classic(
    name="nrqm",
    kind="NR",
    higher_is_better=True,
    score_range=(0.0, 10.0),
    differentiable=False,
    summary="Ma et al.'s no-reference SR quality: 3 regression forests + linear, on Y.",
    citation=_NRQM_CITATION,
    function=_nrqm.nrqm,
    options=_MA_OPTIONS,
    setup=_nrqm.setup,
)
_PI = _classic(
    name="pi",
    kind="NR",
    higher_is_better=False,
    score_range=(0.0, math.inf),
    differentiable=False,
    summary="PIRM 2018 perceptual index ((10 - NRQM) + NIQE) / 2, on Y, 4-pixel border shaved.",
    citation=(
        "Y. Blau, R. Mechrez, R. Timofte, T. Michaeli, L. Zelnik-Manor. The 2018 PIRM challenge "
        "on perceptual image super-resolution. ECCV Workshops, 2018. With " + _NRQM_CITATION
    ),
    function=_nrqm.pi,
    options=_MA_OPTIONS,
    setup=_nrqm.setup,
)

# NIQE and BRISQUE: the LIVE releases' models, bundled (see assets/NOTICE.md).
_NSS_OPTIONS = {**_color("gray", ("gray", "y")), **_shared_options()}
_NIQE = _classic(
    name="niqe",
    kind="NR",
    higher_is_better=False,
    score_range=(0.0, math.inf),
    differentiable=False,
    summary="Natural image quality evaluator, LIVE computequality.m with the pristine model.",
    citation=(
        "A. Mittal, R. Soundararajan, A. C. Bovik. Making a completely blind image quality "
        "analyzer. IEEE Signal Processing Letters 20(3):209-212, 2013."
    ),
    function=niqe,
    options={
        **_NSS_OPTIONS,
        "block_size": Option(
            96, "side of the blocks (even; the pristine model was fitted on 96)", minimum=4
        ),
    },
)
_BRISQUE = _classic(
    name="brisque",
    kind="NR",
    higher_is_better=False,
    score_range=(-math.inf, math.inf),
    differentiable=False,
    summary="BRISQUE, LIVE brisquescore.m with its SVR (typically 0..100; unbounded in principle).",
    citation=(
        "A. Mittal, A. K. Moorthy, A. C. Bovik. No-reference image quality assessment in the "
        "spatial domain. IEEE Transactions on Image Processing 21(12):4695-4708, 2012."
    ),
    function=brisque,
    options={
        **_NSS_OPTIONS,
        "feature_rounding": Option(
            True,
            "round the features to 6 decimals before scaling, as brisquescore.m's fprintf('%f') "
            "(the release); False keeps full precision",
        ),
    },
)

# PIQE: MATLAB's piqe() (no model). Maps: iqa4k.classic.piqe.piqe(x, return_maps=True).
_PIQE = _classic(
    name="piqe",
    kind="NR",
    higher_is_better=False,
    score_range=(0.0, 100.0),
    differentiable=False,
    summary="Perception-based image quality evaluator, MATLAB piqe() (16x16 blocks of MSCN).",
    citation=(
        "N. Venkatanath, D. Praneeth, M. C. Bh, S. S. Channappayya, S. S. Medasani. Blind image "
        "quality evaluation using perception based features. National Conference on "
        "Communications (NCC), 2015."
    ),
    function=piqe,
    options={
        **_NSS_OPTIONS,
        "block_size": Option(
            16, "side of the non-overlapping blocks (even; piqe() uses 16)", minimum=4
        ),
        "activity_threshold": Option(
            0.1, "a block is active when the variance of its MSCN exceeds this", minimum=0.0
        ),
        "impaired_threshold": Option(
            0.1,
            "an active block has a noticeable artifact when an edge segment's std is below this",
            minimum=0.0,
        ),
        "segment_length": Option(
            6, "contiguous edge samples per segment (2..block_size)", minimum=2
        ),
        "precision": Option(
            "float64",
            "arithmetic of the MSCN map: float64 as MATLAB (exact decisions) or float32 "
            "(about 2x faster on the CPU; ~1.5 block decisions in 10^5 differ, scores within "
            "0.64%)",
            ("float64", "float32"),
        ),
    },
)

SPECS = [
    _PSNR,
    _on_luma(_PSNR, "PSNR on BT.601 luma, the super-resolution papers' convention."),
    _SSIM,
    _on_luma(_SSIM, "SSIM on BT.601 luma, the super-resolution papers' convention."),
    _MS_SSIM,
    _NIQE,
    _BRISQUE,
    _PIQE,
    _NRQM,
    _PI,
]

"""The perceptual metrics' rows of the metric table."""

from __future__ import annotations

import math
from collections.abc import Callable

from ..metric_spec import MetricSpec, Option
from . import dists as _dists
from . import lpips as _lpips

_LPIPS_CITATION = (
    "R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang. The unreasonable effectiveness of "
    "deep features as a perceptual metric. CVPR 2018 (lpips 0.1.4, version 0.1 weights)."
)
_DISTS_CITATION = (
    "K. Ding, K. Ma, S. Wang, E. P. Simoncelli. Image quality assessment: unifying structure "
    "and texture similarity. IEEE TPAMI 44(5), 2022 (DISTS_pytorch 0.1 weights)."
)
# Images larger than this go through the backbone in exact row bands (see perceptual/bands.py).
BAND_PIXELS = 2**21


def _spec(
    name: str,
    backbone: str,
    summary: str,
    citation: str,
    function: Callable,
    setup: Callable,
    score_range: tuple[float, float],
) -> MetricSpec:
    return MetricSpec(
        name=name,
        kind="FR",
        higher_is_better=False,
        score_range=score_range,
        differentiable=True,
        summary=summary,
        citation=citation,
        function=function,
        options={
            "backbone": Option(
                "", f"path of torchvision's {backbone} ImageNet file (default: the weights cache)"
            ),
            "download": Option(
                False, "fetch the backbone into the weights cache when it is not there"
            ),
            "band_pixels": Option(
                BAND_PIXELS,
                "images above this many pixels go through the network in row bands of about "
                "this size, context rows included; same score as the whole image, less memory "
                "(0: always the whole image)",
                minimum=0,
            ),
            "data_range": Option(
                1.0,
                "value range of tensor/array inputs: 1.0 for [0,1], 255.0 for [0,255]",
                minimum=1e-12,
            ),
        },
        setup=setup,
        range_option="data_range",
    )


def _lpips_spec(name: str, net: str, backbone: str) -> MetricSpec:
    summary = f"LPIPS v0.1 on {backbone} features (the lpips package); 0 for identical images."
    return _spec(
        name, backbone, summary, _LPIPS_CITATION, _lpips.lpips, _lpips.setup(net), (0.0, math.inf)
    )


SPECS = (
    _lpips_spec("lpips", "alex", "AlexNet"),
    _lpips_spec("lpips_vgg", "vgg", "VGG16"),
    _spec(
        "dists",
        "VGG16",
        "DISTS: structure and texture similarity of VGG16 features (the DISTS_pytorch package); "
        "0 for identical images.",
        _DISTS_CITATION,
        _dists.dists,
        _dists.prepare,
        (0.0, _dists.UPPER),
    ),
)

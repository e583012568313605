"""The perceptual metrics' rows of the metric table."""

from __future__ import annotations

import math

from ..metric_spec import MetricSpec, Option
from . import lpips as _lpips

_CITATION = (
    "R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang. The unreasonable effectiveness of "
    "deep features as a perceptual metric. CVPR 2018 (lpips 0.1.4, version 0.1 weights)."
)


def _lpips_spec(name: str, net: str, backbone: str) -> MetricSpec:
    return MetricSpec(
        name=name,
        kind="FR",
        higher_is_better=False,
        score_range=(0.0, math.inf),
        differentiable=True,
        summary=f"LPIPS v0.1 on {backbone} features (the lpips package); 0 for identical images.",
        citation=_CITATION,
        function=_lpips.lpips,
        options={
            "backbone": Option(
                "", f"path of torchvision's {backbone} ImageNet file (default: the weights cache)"
            ),
            "download": Option(
                False, "fetch the backbone into the weights cache when it is not there"
            ),
            "data_range": Option(
                1.0,
                "value range of tensor/array inputs: 1.0 for [0,1], 255.0 for [0,255]",
                minimum=1e-12,
            ),
        },
        setup=_lpips.setup(net),
        range_option="data_range",
    )


SPECS = (
    _lpips_spec("lpips", "alex", "AlexNet"),
    _lpips_spec("lpips_vgg", "vgg", "VGG16"),
)

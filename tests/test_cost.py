"""Parameters and MACs of every deep model, counted on the meta device (nothing computed)."""

from __future__ import annotations

import pytest

from iqa4k.models import MODELS, cost

# (parameters in millions, GMACs per network input) as published or measured with fvcore on
# the official code (docs/models.md); MACs here count matmuls and convolutions only.
EXPECTED = {
    "maxiqa": (124.87, 24.1),
    "uiqa": (82.85, 69.7),
    "maniqa": (135.75, 138.5),
    "hyperiqa": (27.375, 4.3),
}


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_counts_match_the_official_figures(model):
    params, gmacs = EXPECTED[model]
    assert cost.parameters(model) / 1e6 == pytest.approx(params, rel=2e-3)
    assert cost.macs_per_forward(model) / 1e9 == pytest.approx(gmacs, rel=0.03)


@pytest.mark.parametrize("model", MODELS)
def test_policies_scale_with_the_number_of_inputs(model):
    policies = ("official",) if model == "uiqa" else ("official", "grid")  # UIQA: its views
    rows = {policy: (n, g) for policy, n, g in cost.describe(model, policies)}
    per_input = cost.macs_per_forward(model) / 1e9
    for n, gmacs in rows.values():
        assert gmacs == pytest.approx(n * per_input)
    if model != "uiqa":  # tiles covering 3840x2160: 10 x 18 of 224, 12 x 20 of 192 (smalliqa)
        assert rows["grid"][0] == (12 * 20 if model == "smalliqa" else 10 * 18)


def test_deformable_convolution_is_counted_like_a_convolution():
    """torch's counter knows no torchvision op: AHIQ's deform_conv2d needs its own formula."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from torchvision.ops import DeformConv2d

    with torch.device("meta"):
        layer = DeformConv2d(16, 32, 3, padding=1)
        x, offsets = torch.empty(2, 16, 10, 12), torch.empty(2, 18, 10, 12)
        counter = FlopCounterMode(display=False, custom_mapping=cost._custom_flops())
        with counter:
            layer(x, offsets)
    assert counter.get_total_flops() == 2 * (2 * 32 * 10 * 12) * (16 * 3 * 3)
    # AHIQ: two backbone passes, the fusion (deformable conv included) and the head per pair
    assert cost.macs_per_forward("ahiq") / 1e9 == pytest.approx(125.2, abs=0.1)

"""LPIPS and DISTS in row bands give the whole image's score: the bands' context rows and
alignment (``perceptual/bands.py``) are checked on odd sizes with the smallest bands, to
float32 rounding (the sums are only added in another order)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torchvision

import iqa4k
from iqa4k.perceptual.bands import plan
from iqa4k.perceptual.table import BAND_PIXELS

NETS = {
    "lpips": torchvision.models.alexnet,
    "lpips_vgg": torchvision.models.vgg16,
    "dists": torchvision.models.vgg16,
}
SIZES = ((131, 77), (200, 64), (300, 33))


@pytest.fixture(scope="module", params=sorted(NETS))
def model(request, tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "backbone.pth"
    torch.save(NETS[request.param](weights=None).state_dict(), path)
    model = iqa4k.create_metric(request.param, backbone=str(path)).model
    path.unlink()  # read already; 0.5 GB for VGG16
    return model


def _pair(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(h * w)
    x = torch.rand(2, 3, h, w, generator=g)
    return x, (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_bands_give_the_whole_image_score(model, h, w):
    x, y = _pair(h, w)
    with torch.no_grad():
        whole = model(x, y, 0)
        for pixels in (1, 40 * w, 100 * w):  # 1: bands of the network's stride (16 rows)
            assert len(plan(h, w, model.taps, pixels)) > 1
            torch.testing.assert_close(model(x, y, pixels), whole, rtol=2e-7, atol=0)


def test_one_band_of_context_less_changes_the_score(model):
    """The test above can fail: with the context 16 rows short, kept rows see zero padding
    (5e-6 to 1.4e-4 relative with these random backbones, against 7e-8 for exact bands)."""
    x, y = _pair(200, 64)
    right = model.taps
    with torch.no_grad():
        whole = model(x, y, 0)
        model.taps = [dataclasses.replace(t, before=max(t.before - 16, 0)) for t in right]
        try:
            short = model(x, y, 1)
        finally:
            model.taps = right
    assert ((short - whole) / whole).abs().max() > 1e-6


def test_gradients_in_bands_equal_the_whole_image_gradients(model):
    x, y = _pair(131, 77)
    grads = []
    for pixels in (0, 1):
        d = y.clone().requires_grad_(True)
        model(x, d, pixels).sum().backward()
        grads.append(d.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=1e-6)


def test_the_default_bands_a_4k_image_and_keeps_1080p_whole(model):
    bands = plan(2160, 3840, model.taps, BAND_PIXELS)
    assert len(bands) > 1 and all((b.stop - b.start) * 3840 <= 1.2 * BAND_PIXELS for b in bands)
    assert len(plan(1080, 1920, model.taps, BAND_PIXELS)) == 1

"""The spectral-residual salient window finds the one detailed region of a flat image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iqa4k.models.saliency import MAP_WIDTH, salient_window, spectral_residual


@pytest.mark.parametrize("where", [(600, 1100), (50, 80), (650, 40)])
def test_window_covers_the_only_textured_region(where):
    top, left = where
    g = torch.Generator().manual_seed(0)
    x = torch.full((3, 1000, 1600), 0.5)
    x[:, top : top + 300, left : left + 300] = torch.rand(3, 300, 300, generator=g)
    t, lft = salient_window(x, 480)
    assert 0 <= t <= 1000 - 480 and 0 <= lft <= 1600 - 480
    assert t <= top and top + 300 <= t + 480  # the whole region is inside the window
    assert lft <= left and left + 300 <= lft + 480


def test_map_is_a_small_distribution_whatever_the_image_size():
    x = torch.rand(3, 2160, 3840, generator=torch.Generator().manual_seed(1))
    saliency = spectral_residual(x)
    assert saliency.shape == (36, MAP_WIDTH)
    assert np.isclose(saliency.sum(), 1.0) and (saliency >= 0).all()


def test_small_images_give_the_origin():
    assert salient_window(torch.rand(3, 300, 400), 480) == (0, 0)

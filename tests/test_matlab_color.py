"""MATLAB building blocks checked against values derived by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from iqa4k.classic.matlab import box_downsample, fspecial_gaussian_1d
from iqa4k.color import RGB2GRAY, RGB2Y_BT601, Y_OFFSET, rgb_to_gray, rgb_to_y, round_to_uint8_grid


def test_fspecial_gaussian_is_the_normalised_sampled_gaussian():
    g = fspecial_gaussian_1d(11, 1.5)
    assert g.sum().item() == pytest.approx(1.0, abs=1e-15)
    # Ratio of the centre tap to its neighbour is exp(1 / (2 sigma^2)).
    assert (g[5] / g[4]).item() == pytest.approx(math.exp(1 / 4.5), rel=1e-12)
    # MATLAB: max(max(fspecial('gaussian', 11, 1.5))) = 0.070747...; equals g[5]^2.
    assert (g[5] ** 2).item() == pytest.approx(0.0707, abs=1e-4)


def test_box_downsample_matches_imfilter_same_symmetric_then_subsample():
    x = torch.arange(1.0, 6.0).view(1, 1, 1, 5).expand(1, 1, 3, 5)  # columns 1..5, 3 rows
    # f = 2: centre at element 1, so output k averages columns 2k, 2k+1; the last (odd) column
    # mirrors itself: [1.5, 3.5, 5].
    out = box_downsample(x, 2)
    assert out.shape == (1, 1, 2, 3)
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([1.5, 3.5, 5.0]))
    # f = 3: centre at element 2, blocks start one before: [mirror 1, 1, 2], [3, 4, 5] -> 4/3, 4.
    out3 = box_downsample(x, 3)
    torch.testing.assert_close(out3[0, 0, 0], torch.tensor([4 / 3, 4.0]))


def test_rgb2gray_and_rgb2ycbcr_coefficients():
    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    assert rgb_to_gray(white).item() == pytest.approx(1.0, abs=1e-12)
    assert rgb_to_y(white).item() == pytest.approx(235 / 255)
    assert rgb_to_y(black).item() == pytest.approx(16 / 255)
    red = torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1).double()
    # MATLAB: rgb2gray(uint8([255 0 0])) = 76 (0.298936 * 255 = 76.23).
    assert rgb_to_gray(red).item() * 255 == pytest.approx(76)
    assert rgb_to_gray(red, quantize=False).item() == pytest.approx(0.298936021293775)


def test_rounding_is_half_away_from_zero_with_straight_through_gradient():
    x = torch.tensor([0.5 / 255, 2.5 / 255, 1.49 / 255], dtype=torch.float64, requires_grad=True)
    q = round_to_uint8_grid(x)
    torch.testing.assert_close(q.detach() * 255, torch.tensor([1.0, 3.0, 1.0], dtype=torch.float64))
    q.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_luma_rounds_each_product_and_sum_on_its_own(dtype):
    """The same bits on CPUs with and without fused multiply-add: NumPy never fuses, and the
    luma must equal its plain ``(w0 r + w1 g) + w2 b``, contiguous or channels-last."""
    x = torch.rand(2, 3, 67, 301, generator=torch.Generator().manual_seed(0), dtype=dtype)
    a = x.numpy()
    for weights, offset, convert in (
        (tuple(255.0 * c for c in RGB2GRAY), 0.0, rgb_to_gray),
        (RGB2Y_BT601, Y_OFFSET, rgb_to_y),
    ):
        w = [a.dtype.type(c) for c in weights]
        expected = (a[:, 0] * w[0] + a[:, 1] * w[1]) + a[:, 2] * w[2] + a.dtype.type(offset)
        expected = expected / a.dtype.type(255.0)
        cl = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
        for layout in (x, cl):
            got = convert(layout, quantize=False)[:, 0].numpy()
            np.testing.assert_array_equal(got, expected)


def test_imresize_in_blocks_changes_no_bit(monkeypatch):
    # the sparse passes run blocks of columns or rows; any block size gives the same bits
    from iqa4k.classic import matlab

    x = torch.rand(2, 3, 53, 70, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    scales = (0.5, 2.0)
    whole = [matlab.imresize(x, scale=s) for s in scales]
    monkeypatch.setattr(matlab, "_TEMP_BYTES", 7 * 8 * 140)
    banded = [matlab.imresize(x, scale=s) for s in scales]
    assert all(torch.equal(a, b) for a, b in zip(banded, whole, strict=True))

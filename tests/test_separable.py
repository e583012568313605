"""The plain IEEE separable filter: a 'valid' Gaussian filter, the same bits from NumPy and
torch, whatever the block of rows it works in."""

from __future__ import annotations

import numpy as np
import scipy.signal
import torch

from iqa4k.classic import separable
from iqa4k.classic.matlab import fspecial_gaussian_1d


def test_valid_filter_is_the_separable_convolution(rng):
    x = rng.random((40, 57))
    taps = fspecial_gaussian_1d(11, 1.5).numpy()
    expected = scipy.signal.convolve2d(x, np.outer(taps, taps), mode="valid")
    np.testing.assert_allclose(separable.valid_filter(x, taps), expected, rtol=0, atol=1e-15)


def test_numpy_torch_and_any_block_give_the_same_bits(rng, monkeypatch):
    taps = fspecial_gaussian_1d(7, 7 / 6).numpy()
    for dtype in (np.float32, np.float64):
        x = rng.random((33, 45)).astype(dtype)
        whole = separable.valid_filter(x, taps)
        assert whole.dtype == dtype and whole.shape == (27, 39)
        assert np.array_equal(separable.valid_filter(torch.from_numpy(x), taps).numpy(), whole)
        monkeypatch.setattr(separable, "_BLOCK_BYTES", 5 * x.itemsize * x.shape[1])
        assert np.array_equal(separable.valid_filter(x, taps), whole)  # blocks of 5 rows
        monkeypatch.undo()

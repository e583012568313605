"""Crop policies: seeded, covering, and independent of anything but the image size."""

from __future__ import annotations

import pytest
import torch

from iqa4k.errors import InputError
from iqa4k.models.sampling import centre_position, crop, grid_positions, positions, random_positions


def test_random_positions_are_seeded_and_reach_every_edge():
    a = random_positions(300, 260, 224, 200, seed=3)
    assert a == random_positions(300, 260, 224, 200, seed=3)
    assert a != random_positions(300, 260, 224, 200, seed=4)
    tops, lefts = zip(*a, strict=True)
    assert min(tops) == 0 and max(tops) == 300 - 224  # the last row is reachable
    assert min(lefts) == 0 and max(lefts) == 260 - 224
    assert random_positions(224, 224, 224, 3, seed=0) == [(0, 0)] * 3  # exact fit works


@pytest.mark.parametrize("overlap", [0, 32, 100])
def test_grid_covers_every_pixel_with_the_stated_overlap(overlap):
    height, width, size = 2160, 3840, 224
    where = grid_positions(height, width, size, overlap)
    covered = torch.zeros(height, width, dtype=torch.int32)
    for top, left in where:
        covered[top : top + size, left : left + size] += 1
    assert covered.min() >= 1
    tops = sorted({t for t, _ in where})
    assert tops[-1] == height - size
    steps = {b - a for a, b in zip(tops[:-2], tops[1:-1], strict=True)}
    assert steps <= {size - overlap}
    assert len(where) == len(set(where))


def test_centre_matches_torchvision_rounding():
    assert centre_position(481, 640, 224) == (128, 208)  # round(128.5) = 128 (banker's)
    assert centre_position(224, 225, 224) == (0, 0)


def test_crop_cuts_the_named_windows():
    x = torch.arange(3 * 6 * 7, dtype=torch.float32).view(3, 6, 7)
    out = crop(x, [(0, 0), (2, 3)], 4)
    assert out.shape == (2, 3, 4, 4)
    assert torch.equal(out[1], x[:, 2:6, 3:7])


def test_too_small_images_and_bad_options_are_refused():
    with pytest.raises(InputError, match="smaller than the model's 224x224"):
        positions("official", 200, 500, 224, 5, 0, 0)
    with pytest.raises(InputError, match="overlap"):
        grid_positions(500, 500, 224, 224)
    with pytest.raises(InputError, match="unknown sampling policy"):
        positions("random", 500, 500, 224, 5, 0, 0)

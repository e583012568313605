"""Where the crops of a deep model come from: seeded random crops, full-coverage tiles, centre.

Every policy is a pure function of the image size and its arguments, so the same image gives
the same crops (and score) whatever else is in the batch, on any machine.
"""

from __future__ import annotations

import torch

from ..errors import InputError

Position = tuple[int, int]  # (top, left) of a square crop

POLICIES = ("official", "grid", "centre")


def random_positions(height: int, width: int, size: int, n: int, seed: int) -> list[Position]:
    """``n`` crops drawn uniformly from every valid position (both ends included), seeded.

    The official scripts draw ``randint(0, H - size)`` with an exclusive upper bound, which
    never reaches the last row or column and fails on an image exactly ``size`` tall; here
    every position, the last included, can be drawn.
    """
    _check_fits(height, width, size)
    g = torch.Generator().manual_seed(seed)
    tops = torch.randint(0, height - size + 1, (n,), generator=g)
    lefts = torch.randint(0, width - size + 1, (n,), generator=g)
    return list(zip(tops.tolist(), lefts.tolist(), strict=True))


def random_position(height: int, width: int, size: int, generator: torch.Generator) -> Position:
    """One crop drawn uniformly from every valid position (training samples)."""
    _check_fits(height, width, size)
    top = int(torch.randint(0, height - size + 1, (), generator=generator))
    left = int(torch.randint(0, width - size + 1, (), generator=generator))
    return top, left


def grid_positions(height: int, width: int, size: int, overlap: int = 0) -> list[Position]:
    """Tiles covering every pixel: stride ``size - overlap``, the last row/column flush."""
    _check_fits(height, width, size)
    if not 0 <= overlap < size:
        raise InputError(f"tile overlap must be in [0, {size}), got {overlap}")
    return [
        (t, left) for t in _starts(height, size, overlap) for left in _starts(width, size, overlap)
    ]


def centre_position(height: int, width: int, size: int) -> Position:
    """The centre crop, rounded as torchvision's ``CenterCrop``."""
    _check_fits(height, width, size)
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0))


def positions(
    policy: str, height: int, width: int, size: int, n: int, seed: int, overlap: int
) -> list[Position]:
    """The crops of ``policy`` (``official``: ``n`` seeded random crops)."""
    if policy == "official":
        return random_positions(height, width, size, n, seed)
    if policy == "grid":
        return grid_positions(height, width, size, overlap)
    if policy == "centre":
        return [centre_position(height, width, size)]
    raise InputError(f"unknown sampling policy {policy!r}; choose one of {POLICIES}")


def crop(x: torch.Tensor, where: list[Position], size: int) -> torch.Tensor:
    """``[C,H,W]`` -> ``[N,C,size,size]``, one crop per position."""
    return torch.stack([x[:, t : t + size, left : left + size] for t, left in where])


def _starts(length: int, size: int, overlap: int) -> list[int]:
    starts = list(range(0, length - size + 1, size - overlap))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def _check_fits(height: int, width: int, size: int) -> None:
    if height < size or width < size:
        raise InputError(
            f"image is {width}x{height}, smaller than the model's {size}x{size} input; "
            f"upscale it first or use a sampling policy that resizes"
        )

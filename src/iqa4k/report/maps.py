"""Quality maps as pictures: a heat map blended over the image, with its value range."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..io import save_image

__all__ = ["overlay_writer", "save_overlay"]

MAX_SIDE = 1280  # overlays of 4K images are shown, not measured: keep the files small
ALPHA = 0.55  # weight of the heat map over the image


def save_overlay(image: torch.Tensor, quality: torch.Tensor, path: str | Path) -> Path:
    """Write ``[3,H,W]`` ``image`` with its ``[H,W]`` ``quality`` map blended over it.

    Colours run over the map's own range (matplotlib's viridis: dark = its lowest score,
    yellow = its highest); where the map is NaN (no crop fell there) the image shows alone.
    """
    from matplotlib import colormaps

    image, quality = image.detach().float().cpu(), quality.detach().float().cpu()
    scale = min(1.0, MAX_SIDE / max(image.shape[-2:]))
    if scale < 1.0:
        size = [max(1, round(s * scale)) for s in image.shape[-2:]]
        image = F.interpolate(image[None], size=size, mode="area")[0]
        quality = F.interpolate(quality[None, None], size=size, mode="nearest")[0, 0]
    known = torch.isfinite(quality)
    lo, hi = (quality[known].min().item(), quality[known].max().item()) if known.any() else (0, 1)
    level = ((quality - lo) / (hi - lo if hi > lo else 1.0)).nan_to_num(0.0).clamp(0, 1)
    colours = torch.from_numpy(colormaps["viridis"](level.numpy())[..., :3]).permute(2, 0, 1)
    alpha = ALPHA * known.float()
    blended = image * (1 - alpha) + colours.float() * alpha
    path = Path(path)
    save_image(blended, path)
    return path


def overlay_writer(folder: str | Path):
    """A sink for :func:`iqa4k.scoring.score_files`'s ``on_map``: each map saved as an overlay,
    ``folder/<image stem>.<metric>.png``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def write(path: Path, metric: str, image: torch.Tensor, quality: torch.Tensor) -> None:
        save_overlay(image, quality, folder / f"{path.stem}.{metric}.png")

    return write

"""What each metric of a benchmark costs at 4K: parameters, GMACs and seconds per image.

Parameters and GMACs of the deep models are counted by :mod:`iqa4k.models.cost` (nothing
run); the classical metrics have neither (they are not networks: shown as empty). Seconds are
measured here, on the run's device: one call on a 3840x2160 image (the bundled sample enlarged,
and for FR metrics its x4 bicubic copy against it) after a warm-up call on a 1024x1024 crop.
Measured rows are kept in ``cost.json`` and reused by a rerun on the same device.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["UHD", "measure_costs"]

UHD = (2160, 3840)  # height, width of the image the cost table is measured on


def measure_costs(
    metrics: Sequence[str],
    out: Path,
    *,
    weights: Mapping[str, str],
    device: str | None = None,
) -> list[dict[str, Any]]:
    """One row per metric: ``metric, parameters, gmacs, seconds, device`` (``parameters`` and
    ``gmacs`` None for classical metrics), measured or read back from ``out/cost.json``."""
    from ..metric import create_metric

    where = str(torch.device(device)) if device else "cpu"
    path = out / "cost.json"
    kept = json.loads(path.read_text()) if path.is_file() else {}
    rows = []
    dist = ref = None
    for name in metrics:
        key = f"{name}|{weights.get(name, '')}|{where}"
        if key not in kept:
            if dist is None:
                dist, ref = _uhd_pair()
            options = {"weights": weights[name]} if weights.get(name) else {}
            metric = create_metric(name, device=device, **options)
            kept[key] = {
                "metric": name,
                **_counted(metric),
                "seconds": _seconds(metric, dist, ref),
                "device": where,
            }
            path.write_text(json.dumps(kept, indent=1))  # a later failure keeps this row
        rows.append(kept[key])
    return rows


def _counted(metric) -> dict[str, Any]:
    spec, options = metric.info, metric.options
    if spec.model is None:  # a classical metric: none; LPIPS: its network's parameters
        params = sum(p.numel() for p in metric.parameters()) or None
        return {"parameters": params, "gmacs": None, "crops": None}
    from ..models import cost, get_entry

    model, release = spec.model
    build = get_entry(model).releases[release].options
    policy = options.get("sampling", "official")
    ((_, crops, gmacs),) = cost.describe(model, (policy,), **build)
    return {"parameters": cost.parameters(model, **build), "gmacs": gmacs, "crops": crops}


def _uhd_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A 3840x2160 photo-like reference and its x4 bicubic copy, ``[1,3,H,W]`` in [0, 1]."""
    from ..degrade import resample
    from ..demo import sample_image

    big = torch.nn.functional.interpolate(
        sample_image()[None], size=UHD, mode="bicubic", align_corners=False
    ).clamp(0, 1)
    return resample(big[0], 4, "bicubic")[None].contiguous(), big.contiguous()


def _seconds(metric, dist: torch.Tensor, ref: torch.Tensor) -> float:
    fr = metric.info.kind == "FR"
    small = (dist[..., :1024, :1024], ref[..., :1024, :1024])
    with torch.inference_mode():
        metric(*small) if fr else metric(small[0])  # warm-up: allocations, kernels, caches
        start = time.perf_counter()
        metric(dist, ref) if fr else metric(dist)
        if metric.device is not None and metric.device.type == "cuda":
            torch.cuda.synchronize(metric.device)
        return time.perf_counter() - start

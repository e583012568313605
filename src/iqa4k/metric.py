"""The :class:`Metric` module every metric is used through."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .errors import InputError, OptionError
from .io import to_batch
from .metric_spec import MetricSpec, Setup
from .registry import get_spec

ImageInput = Any  # tensor, array, PIL image, path, or a list of those; see iqa4k.io.to_batch


class Metric(torch.nn.Module):
    """A configured metric: ``metric(dist)`` (NR) or ``metric(dist, ref)`` (FR) -> ``[B]``.

    Inputs are ``[B,3,H,W]`` float tensors in [0, data_range], or anything
    :func:`iqa4k.io.to_batch` accepts (paths, PIL images, arrays). Gradients flow through
    tensor inputs when ``info.differentiable``.
    """

    def __init__(self, spec: MetricSpec, device: str | torch.device | None = None, **options):
        super().__init__()
        self.info = spec  # the registry entry: name, kind, direction, range, options, citation
        self.options = spec.resolve(options)
        call = {k: v for k, v in self.options.items() if k != spec.range_option}
        # Metrics with a parameter file load it now, once (spec.setup): a missing file fails here.
        prepared = spec.setup(call) if spec.setup is not None else Setup(call)
        self._call_options = prepared.call
        for key, module in prepared.modules.items():  # a deep metric's network follows .to()
            self.add_module(key, module)
        # None keeps inputs where they are (tensors) or on the CPU (decoded files).
        self.device = checked_device(device) if device is not None else None
        if self.device is not None:
            self.to(self.device)

    def extra_repr(self) -> str:
        return f"{self.info.name!r}, " + ", ".join(f"{k}={v!r}" for k, v in self.options.items())

    def forward(self, dist: ImageInput, ref: ImageInput | None = None) -> torch.Tensor:
        return self._evaluate(dist, ref, self._call_options)

    def as_loss(self, dist: ImageInput, ref: ImageInput | None = None) -> torch.Tensor:
        """The batch's score as a loss to minimise (a scalar with gradients): the mean score
        for lower-is-better metrics; for higher-is-better ones, the upper end of the range
        minus the mean (``1 - ssim``), or minus the mean when unbounded (``-psnr``)."""
        if not self.info.differentiable:
            raise OptionError(f"{self.info.name} is not differentiable: it cannot be a loss")
        score = self(dist, ref).mean()
        if not self.info.higher_is_better:
            return score
        top = self.info.score_range[1]
        return top - score if np.isfinite(top) else -score

    def with_maps(
        self, dist: ImageInput, ref: ImageInput | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Scores ``[B]`` and one quality map ``[H,W]`` per image (deep crop-based metrics:
        per-patch scores where the model has them, else per crop; NaN where no crop fell)."""
        if not self.info.has_maps:
            raise OptionError(f"{self.info.name} has no quality maps (deep crop-based models do)")
        maps: list[torch.Tensor] = []
        scores = self._evaluate(dist, ref, {**self._call_options, "maps": maps})
        return scores, maps

    def _evaluate(self, dist: ImageInput, ref: ImageInput | None, options: dict) -> torch.Tensor:
        x = self._to_batch(dist)
        if self.info.kind == "NR":
            if ref is not None:
                raise InputError(f"{self.info.name} is a no-reference metric: do not pass ref")
            return self.info.function(x, **options)
        if ref is None:
            raise InputError(f"{self.info.name} is a full-reference metric: pass ref")
        y = self._to_batch(ref).to(x.device)
        if y.shape[0] == 1 and x.shape[0] > 1:  # one reference for a batch of versions of it
            y = y.expand(x.shape[0], -1, -1, -1)
        if x.shape != y.shape:
            raise InputError(
                f"{self.info.name}: distorted and reference images differ in size: "
                f"{_describe(x)} vs {_describe(y)}"
            )
        return self.info.function(x, y, **options)

    def _to_batch(self, images: ImageInput) -> torch.Tensor:
        scale = self.options[self.info.range_option] if self.info.range_option else 1.0
        if scale != 1.0:
            if isinstance(images, torch.Tensor) and images.is_floating_point():
                images = images / scale
            elif isinstance(images, np.ndarray) and images.dtype.kind == "f":
                images = images / scale
        batch = to_batch(images)
        return batch if self.device is None else batch.to(self.device)


def checked_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device that exists on this machine, or a one-line OptionError."""
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError):
        raise OptionError(
            f"device {str(device)!r} is not a torch device (e.g. cpu, cuda:0)"
        ) from None
    if d.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise OptionError(f"device {str(device)!r}: this machine has no CUDA GPU; use cpu")
        if d.index is not None and d.index >= count:
            raise OptionError(f"device {str(device)!r}: this machine has {count} CUDA GPU(s)")
        return d
    try:
        torch.empty(0, device=d)
    except (RuntimeError, AssertionError) as e:  # mps, xpu, ... without the hardware
        raise OptionError(
            f"device {str(device)!r} is not usable here: {e}".splitlines()[0]
        ) from None
    return d


def _describe(x: torch.Tensor) -> str:
    return f"{x.shape[0]} x {x.shape[-1]}x{x.shape[-2]}"


def create_metric(name: str, device: str | torch.device | None = None, **options) -> Metric:
    """Build the metric ``name`` with ``options`` (see ``list_metrics`` / ``iqa4k info``)."""
    return Metric(get_spec(name), device=device, **options)

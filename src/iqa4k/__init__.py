"""iqa4k: image quality assessment for 4K/UHD and super-resolved images."""

from __future__ import annotations

from ._version import __version__
from .errors import ImageReadError, InputError, IQAError, OptionError, WeightsNotFoundError
from .io import load_image
from .metric import Metric, create_metric
from .registry import METRICS, MetricSpec


def list_metrics(kind: str | None = None) -> list[str]:
    """Names of the available metrics, optionally only ``'FR'`` or ``'NR'`` ones."""
    if kind is not None and kind.upper() not in ("FR", "NR"):
        raise OptionError(f"kind must be 'FR', 'NR' or None, got {kind!r}")
    return [n for n, s in METRICS.items() if kind is None or s.kind == kind.upper()]


__all__ = [
    "IQAError",
    "ImageReadError",
    "InputError",
    "OptionError",
    "WeightsNotFoundError",
    "Metric",
    "MetricSpec",
    "create_metric",
    "list_metrics",
    "load_image",
    "__version__",
]

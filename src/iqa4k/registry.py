"""The metric table: one :class:`MetricSpec` per metric or variant.

This table is the single source of truth for names, kinds, score ranges, defaults and
citations; the API (:func:`create_metric`), the command line, the docs and the parametrised
tests all read it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType

from .classic.table import SPECS as _CLASSIC
from .errors import OptionError
from .metric_spec import MetricSpec, Option
from .models.table import SPECS as _DEEP
from .perceptual.table import SPECS as _PERCEPTUAL

__all__ = ["METRICS", "MetricSpec", "Option", "get_spec"]

METRICS: Mapping[str, MetricSpec] = MappingProxyType(
    {s.name: s for s in [*_CLASSIC, *_PERCEPTUAL, *_DEEP]}
)


def get_spec(name: str) -> MetricSpec:
    """The spec called ``name`` (case-insensitive), or an error listing the valid names."""
    key = name.lower().strip()
    spec = METRICS.get(key) or METRICS.get(key.replace("-", "_"))
    if spec is None:
        close = difflib.get_close_matches(key, list(METRICS), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise OptionError(f"unknown metric {name!r}; {hint}available: {', '.join(METRICS)}")
    return spec

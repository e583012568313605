"""How numbers and directions read in every output: tables, the HTML page and plots."""

from __future__ import annotations

import math
from typing import Any

from ..registry import METRICS

__all__ = ["MISSING", "as_float", "direction", "format_number", "format_score"]

MISSING = "\u2013"  # en dash: no score (failed image, or a metric not run on it)


def format_number(v: float, *, symbols: bool = False) -> str:
    """``v`` in short form (``%g``); infinities as ``inf``/``-inf``, or ``∞``/``−∞`` if
    ``symbols``. For exact values such as range bounds and option values.
    """
    if math.isinf(v):
        if symbols:
            return "\u221e" if v > 0 else "\u2212\u221e"
        return "inf" if v > 0 else "-inf"
    return f"{v:g}"


def as_float(value: Any) -> float | None:
    """A score from a float, a tensor item or a CSV cell; None when there is none."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def format_score(value: Any, metric: str) -> str:
    """A measured score as text: precision from the metric's score range, infinities as ``∞``.

    Metrics on a wide or open range (PSNR in dB) read best with 2 decimals; bounded ones such
    as SSIM in [-1, 1] need 4 to tell close results apart.
    """
    v = as_float(value)
    if v is None:
        return MISSING
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return format_number(v, symbols=True)
    spec = METRICS.get(metric)
    if spec is None:
        return f"{v:.4g}"
    lo, hi = spec.score_range
    decimals = 4 if math.isfinite(hi - lo) and hi - lo <= 10 else 2
    return f"{v:.{decimals}f}"


def direction(higher_is_better: bool | None) -> str:
    """``'higher is better'``, ``'lower is better'``, or ``'direction unknown'`` for None."""
    if higher_is_better is None:
        return "direction unknown"
    return "higher is better" if higher_is_better else "lower is better"

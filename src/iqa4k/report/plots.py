"""Scatter plots of score vs MOS with the fitted logistic curve and SRCC/PLCC with their CIs:
one figure per metric, or all metrics as the panels of one figure (PNG, and PDF/SVG for papers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .formatting import direction

if TYPE_CHECKING:
    from ..evaluation import EvaluationRun, MetricEvaluation

__all__ = ["plot_evaluation", "plot_panels", "plot_each", "safe_name"]


def safe_name(name: str) -> str:
    """``name`` as a file name: anything but letters, digits, ``_.-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "metric"


def _figure_text(value: float, ci: Sequence[float] | None) -> str:
    text = f"{value:.3f}" if math.isfinite(value) else "nan"
    if ci and all(math.isfinite(v) for v in ci):
        text += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    return text


def _draw(ax, e: MetricEvaluation, mos_label: str, fit: str, small: bool = False) -> None:
    """One metric's panel: the points, the fitted map, and its figures in the title."""
    import numpy as np

    r = e.result
    ax.scatter(e.scores, e.mos, s=8 if small else 14, alpha=0.7, color="#1f77b4", edgecolors="none")
    if r.fit is not None:
        xs = np.linspace(min(e.scores), max(e.scores), 256)
        # evaluate() fitted the map on negated scores when the metric runs against the MOS
        ys = r.fit.predict(-xs if r.negated else xs)
        label = f"{fit} logistic" if r.fit.converged else "line (fit failed)"
        ax.plot(xs, ys, color="#d62728", lw=1.5 if small else 2, label=label)
        ax.legend(loc="best", frameon=False, fontsize=7 if small else None)
    ax.set_xlabel(f"{e.name} ({direction(e.higher_is_better)})", fontsize=8 if small else None)
    ax.set_ylabel(mos_label, fontsize=8 if small else None)
    title = (
        f"{e.name}, n={r.n}\nSRCC {_figure_text(r.srcc, r.ci.get('srcc'))}\n"
        f"PLCC {_figure_text(r.plcc, r.ci.get('plcc'))}"
    )
    ax.set_title(title, fontsize=8 if small else 10)
    ax.tick_params(labelsize=7 if small else None)
    ax.grid(True, alpha=0.3)


def plot_each(
    evaluations: Sequence[MetricEvaluation], mos_label: str, fit: str, out_dir: str | Path
) -> list[Path]:
    """``<metric>.png`` in ``out_dir`` for each evaluated metric; returns the paths."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for e in evaluations:
        if e.result is None:
            continue
        fig = Figure(figsize=(5.5, 4.4), dpi=120, layout="constrained")
        _draw(fig.subplots(), e, mos_label, fit)
        path = out_dir / f"{safe_name(e.name)}.png"
        fig.savefig(path)
        written.append(path)
    return written


def plot_panels(
    evaluations: Sequence[MetricEvaluation],
    mos_label: str,
    fit: str,
    stem: str | Path,
    formats: Sequence[str] = ("png", "pdf", "svg"),
) -> list[Path]:
    """All evaluated metrics as panels of one figure, saved as ``stem.<format>``."""
    from matplotlib.figure import Figure

    done = [e for e in evaluations if e.result is not None]
    if not done:
        return []
    cols = min(4, len(done))
    rows = math.ceil(len(done) / cols)
    fig = Figure(figsize=(3.2 * cols, 3.0 * rows), dpi=150, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, e in zip(axes.flat, done, strict=False):
        _draw(ax, e, mos_label, fit, small=True)
    for ax in list(axes.flat)[len(done) :]:
        ax.set_visible(False)
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(path)
        written.append(path)
    return written


def plot_evaluation(run: EvaluationRun, out_dir: str | Path) -> list[Path]:
    """``iqa4k evaluate --plot``: one PNG per evaluated metric of ``run``."""
    return plot_each(run.metrics, str(run.mos_column), run.fit, out_dir)

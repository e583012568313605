"""Scatter plots of score vs MOS with the fitted logistic curve, one PNG per metric."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from .formatting import direction

if TYPE_CHECKING:
    from ..evaluation import EvaluationRun

__all__ = ["plot_evaluation"]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "metric"


def plot_evaluation(run: EvaluationRun, out_dir: str | Path) -> list[Path]:
    """Write ``<metric>.png`` into ``out_dir`` for each evaluated metric; returns the paths."""
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for e in run.metrics:
        if e.result is None:
            continue
        r = e.result
        fig = Figure(figsize=(5.5, 4.2), dpi=120, layout="constrained")
        ax = fig.subplots()
        ax.scatter(e.scores, e.mos, s=14, alpha=0.7, color="#1f77b4", edgecolors="none")
        if r.fit is not None:
            xs = np.linspace(min(e.scores), max(e.scores), 256)
            # evaluate() fitted the map on negated scores for lower-is-better metrics
            ys = r.fit.predict(-xs if r.negated else xs)
            label = f"{run.fit} logistic" if r.fit.converged else "linear (fit failed)"
            ax.plot(xs, ys, color="#d62728", lw=2, label=label)
            ax.legend(loc="best", frameon=False)
        ax.set_xlabel(f"{e.name} ({direction(e.higher_is_better)})")
        ax.set_ylabel(str(run.mos_column))
        ax.set_title(f"{e.name}: SRCC {r.srcc:.3f}, PLCC {r.plcc:.3f}, n={r.n}")
        ax.grid(True, alpha=0.3)
        path = out_dir / f"{_safe_name(e.name)}.png"
        fig.savefig(path)
        written.append(path)
    return written

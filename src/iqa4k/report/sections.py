"""The tables of a report, as :class:`~.cells.Table` data: agreement with MOS (with the test
against the best metric), what each metric is, cost at 4K, and cross-validation folds. The
Markdown file, the terminal and the HTML page render these same tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..evaluation import best_metric
from ..registry import METRICS, get_spec
from .cells import Cell, Table
from .formatting import direction

if TYPE_CHECKING:
    from ..evaluation import MetricEvaluation
    from ..stats import Comparison

__all__ = [
    "agreement_notes",
    "agreement_table",
    "cost_table",
    "crossval_table",
    "metrics_table",
]

ALPHA = 0.05  # the significance level the tables mark with *


def _num(value: float | None, digits: int = 4) -> Cell:
    if value is None or not math.isfinite(value):
        return Cell("\u2013")
    return Cell(f"{value:.{digits}f}", value)


def _with_ci(value: float, ci: tuple[float, float] | None) -> Cell:
    cell = _num(value)
    if ci and all(math.isfinite(v) for v in ci):
        return Cell(f"{cell.text} [{ci[0]:.3f}, {ci[1]:.3f}]", cell.key)
    return cell


def _p(value: float | None) -> Cell:
    if value is None or not math.isfinite(value):
        return Cell("\u2013")
    text = "<0.001" if value < 0.001 else f"{value:.3f}"
    return Cell(text + (" *" if value < ALPHA else ""), value)


def agreement_table(
    evaluations: Sequence[MetricEvaluation],
    tests: Mapping[str, Mapping[str, Comparison]],
    notes: list[str],
    labels: Mapping[str, str] | None = None,
) -> Table:
    """Agreement with MOS per metric, best SRCC first, with each metric's test against the
    best (``tests``, from :func:`iqa4k.evaluation.versus_best`); ``labels`` rename rows."""
    level = next((round(e.result.level * 100) for e in evaluations if e.result), 95)
    best = best_metric(evaluations)
    header = (
        "metric", "direction", "n", f"SRCC [{level}% CI]", f"PLCC [{level}% CI]", "KRCC", "RMSE",
        "fit", "\u0394SRCC vs best", "p SRCC (bootstrap)", "p PLCC (Williams)",
    )  # fmt: skip
    order = sorted(
        evaluations,
        key=lambda e: -e.result.srcc if e.result and math.isfinite(e.result.srcc) else math.inf,
    )
    rows = []
    for e in order:
        r = e.result
        first = (Cell((labels or {}).get(e.name, e.name)), Cell(direction(e.higher_is_better)))
        if r is None:
            rows.append(
                (*first, Cell(str(len(e.scores)), len(e.scores)), Cell(e.error), *[Cell("")] * 7)
            )
            continue
        test = tests.get(e.name, {})
        srcc, plcc = test.get("srcc"), test.get("plcc")
        rows.append(
            (
                *first,
                Cell(str(r.n), r.n),
                _with_ci(r.srcc, r.ci.get("srcc")),
                _with_ci(r.plcc, r.ci.get("plcc")),
                _num(r.krcc),
                _num(r.rmse),
                Cell(r.fit_status),
                Cell("best") if e.name == best else _num(srcc.diff if srcc else None),
                _p(srcc.p_value if srcc else None),
                _p(plcc.p_williams if plcc else None),
            )
        )
    return Table("Agreement with MOS", header, rows, notes)


def cost_table(costs: Sequence[Mapping[str, Any]]) -> Table:
    """Parameters, GMACs and seconds per 3840x2160 image for each metric that ran."""
    rows = []
    for c in costs:
        params = c["parameters"]
        rows.append(
            (
                Cell(c["metric"]),
                Cell(get_spec(c["metric"]).kind),
                Cell(f"{params / 1e6:.2f} M", params) if params is not None else Cell("\u2013"),
                _num(c["gmacs"], 1),
                Cell(str(c["crops"]), c["crops"]) if c["crops"] is not None else Cell("\u2013"),
                _num(c["seconds"], 3),
            )
        )
    device = costs[0]["device"] if costs else "cpu"
    notes = [
        f"Seconds: one call on a 3840x2160 image on {device}, after a warm-up call. "
        "GMACs: counted by torch's FLOP counter for the metric's sampling (crops per image); "
        "classical metrics are not networks and have no parameters or GMACs."
    ]
    header = ("metric", "kind", "parameters", "GMACs", "crops", "seconds / image")
    return Table("Cost at 3840x2160", header, rows, notes)


def crossval_table(table: dict[str, Any]) -> Table:
    """One cross-validation folder: per-fold SRCC and mean \u00b1 std of SRCC and PLCC."""
    k = table["folds"]
    folds = [f"fold {i}" for i in range(k)]
    header = ("method", *folds, "SRCC mean \u00b1 std", "PLCC mean \u00b1 std")
    rows = []
    for row in table["rows"]:
        by_fold = {f["fold"]: f for f in row["folds"]}
        cells = [Cell(row["name"] + (" (trained)" if row["trained"] else ""))]
        cells += [_num(by_fold.get(i, {}).get("srcc"), 3) for i in range(k)]
        for figure in ("srcc", "plcc"):
            mean, std = row["mean"].get(figure), row["std"].get(figure)
            cell = _num(mean, 3)
            cells.append(Cell(f"{cell.text} \u00b1 {std:.3f}", mean) if std is not None else cell)
        rows.append(tuple(cells))
    notes = [
        f"{table['folder']}: the trained model's test figures (epoch selected on validation), and "
        "every metric (but those scored with a checkpoint, which may have been trained on these "
        "images) on the same test folds; mean \u00b1 sample std over folds."
    ]
    return Table(f"Cross-validation: {table['preset']}", header, rows, notes)


def agreement_notes(
    evaluations: Sequence[MetricEvaluation],
    *,
    mos_higher_is_better: bool,
    mos_direction: str,
    fit: str,
    n_boot: int,
    tested: bool,
) -> list[str]:
    """How to read the agreement table: the MOS direction and where it came from, the
    orientation, the fit, the CIs, the test against the best, and every metric's warnings."""
    better = "higher" if mos_higher_is_better else "lower"
    notes = [
        f"MOS: {better} is better ({mos_direction}). Every figure is oriented so that a good "
        "metric has positive SRCC and PLCC: a metric that runs against the MOS is negated "
        "first ("
        + (", ".join(e.name for e in evaluations if e.result and e.result.negated) or "none here")
        + ")."
    ]
    done = [e for e in evaluations if e.result is not None]
    fitted = [e.name for e in done if e.result.fit_status == fit]
    if fit == "none":
        notes.append("PLCC and RMSE are of the scores themselves (no logistic map).")
    elif fitted:  # never claim the logistic map where its fit failed (the warnings say why)
        which = f" for {', '.join(fitted)}" if len(fitted) < len(done) else ""
        notes.append(f"PLCC and RMSE are after the {fit} logistic map to MOS{which}.")
    if n_boot:
        notes.append(f"CIs: percentile bootstrap over images, {n_boot} resamples.")
    if tested:
        notes.append(
            f"Against the best metric ({best_metric(evaluations)}), on the images both scored: "
            f"a paired bootstrap of the SRCC difference ({max(n_boot, 200)} resamples, "
            "two-sided) and Williams' t-test of the raw Pearson correlations (Steiger 1980); "
            f"* marks p < {ALPHA}."
        )
    shared: dict[str, list[str]] = {}  # one line per warning, naming every metric it concerns
    for e in evaluations:
        for w in e.warnings:
            shared.setdefault(w, []).append(e.name)
    notes += [f"{', '.join(names)}: {w}" for w, names in shared.items()]
    return notes


def metrics_table(metrics: Sequence[str], skipped: Mapping[str, str]) -> Table:
    """What each metric is: kind, direction, a one-line description, and whether it ran."""
    rows = []
    for name in [*metrics, *[m for m in skipped if m not in metrics]]:
        spec = METRICS.get(name)
        kind, better, summary = (
            (spec.kind, direction(spec.higher_is_better), spec.summary) if spec else ("", "", "")
        )
        status = f"skipped: {skipped[name]}" if name in skipped else "scored"
        rows.append(tuple(Cell(t) for t in (name, kind, better, summary, status)))
    header = ("metric", "kind", "direction", "description", "status")
    return Table("Metrics", header, rows, [])

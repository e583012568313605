"""The report pages: ``iqa4k report`` (any scores CSV, with or without MOS), the demo's page and
the benchmark's ``report.html``, built from the same sections."""

from __future__ import annotations

import html
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .cells import Table
from .html import figure_uri, per_image_html, table_html, thumbnail_uri, write_page
from .plots import plot_panels
from .sections import agreement_notes, agreement_table, metrics_table

if TYPE_CHECKING:
    from ..evaluation import MetricEvaluation

__all__ = ["agreement_sections", "predictions_html", "scores_page"]

_SHOWN = 3  # best and worst predictions shown per metric


def predictions_html(evaluations: Sequence[MetricEvaluation], shown: int = _SHOWN) -> str:
    """For each metric, the images it ranks most and least like the MOS does (by the gap
    between the image's rank by score and its rank by MOS), as thumbnails with captions."""
    import numpy as np
    from scipy.stats import rankdata

    parts = [
        "<h2>Best and worst predictions</h2>",
        '<ul class="notes"><li>Per metric: the images whose rank by score (oriented like the '
        "MOS) is closest to and farthest from their rank by MOS.</li></ul>",
    ]
    for e in evaluations:
        if e.result is None or len(e.images) != len(e.scores) or len(e.scores) < 2 * shown:
            continue
        sign = -1.0 if e.result.negated else 1.0
        by_score = rankdata(sign * np.asarray(e.scores))
        by_mos = rankdata(e.mos)
        gap = np.abs(by_score - by_mos)
        order = np.argsort(gap, kind="stable")
        row = []
        for label, picks in (("best", order[:shown]), ("worst", order[::-1][:shown])):
            row.append(f'<span class="label">{label}</span>')
            for i in picks:
                name = Path(e.images[i]).name
                uri = thumbnail_uri(e.images[i], 180)
                img = f'<img src="{uri}" alt="{html.escape(name)}">' if uri else "<p>no preview</p>"
                caption = (
                    f"{html.escape(name)}<br>MOS {e.mos[i]:.3g}, {html.escape(e.name)} "
                    f"{e.scores[i]:.4g}<br>rank {by_score[i]:.0f} by score, {by_mos[i]:.0f} by MOS"
                )
                row.append(f"<figure>{img}<figcaption>{caption}</figcaption></figure>")
            row.append('<span class="gap"></span>')
        parts.append(f"<h3>{html.escape(e.name)}</h3>")
        parts.append('<div class="gallery">' + "".join(row[:-1]) + "</div>")
    return "\n".join(parts)


def agreement_sections(
    evaluations: Sequence[MetricEvaluation],
    table: Table,
    mos_label: str,
    fit: str,
    figure: Path | None = None,
) -> list[str]:
    """The agreement ``table``, the all-metrics figure (``figure``, or drawn here) and the best
    and worst predictions."""
    sections = [table_html(table)]
    with tempfile.TemporaryDirectory() as tmp:
        if figure is None:
            drawn = plot_panels(evaluations, mos_label, fit, Path(tmp) / "all", formats=("png",))
            figure = drawn[0] if drawn else None
        if figure is not None:
            sections.append(
                "<h2>Scores against MOS</h2><figure>"
                f'<img class="plot" src="{figure_uri(figure)}" alt="score against MOS, per metric">'
                "</figure>"
            )
    sections.append(predictions_html(evaluations))
    return sections


def scores_page(
    scores: str | Path,
    out: str | Path,
    *,
    mos: str | Path | None = None,
    mos_column: str | None = None,
    image_column: str | None = None,
    mos_direction: str | None = None,
    fit: str = "5pl",
    n_boot: int = 1000,
    title: str = "",
    skipped: Mapping[str, str] | None = None,
) -> Path:
    """``iqa4k report``: the page of a scores CSV; with MOS (``mos``, or the file's own
    ``mos``/``dmos`` column), its agreement with MOS first. ``skipped`` names metrics that
    were not run, and why (shown in the metrics table)."""
    from ..evaluation import OWN_MOS_COLUMNS, evaluate_csv, versus_best
    from ..results_file import ERROR, IMAGE, REF, read_scores

    scores = Path(scores)
    header, rows = read_scores(scores)
    metrics = [c for c in header if c not in (IMAGE, REF, ERROR, *OWN_MOS_COLUMNS)]
    for row in rows:  # paths as scored: relative to where `score` ran, else to the CSV
        for key in (IMAGE, REF):
            if row.get(key) and not Path(row[key]).exists():
                row[key] = str(scores.parent / row[key])
    sections = []
    meta = f"{scores.name}: {len(rows)} image(s)"
    if mos is not None or any(c in header for c in OWN_MOS_COLUMNS):
        run = evaluate_csv(
            scores,
            mos,
            mos_column=mos_column,
            image_column=image_column,
            fit=fit,
            n_boot=n_boot,
            mos_direction=mos_direction,
        )
        for e in run.metrics:  # the images as the page can open them
            e.images = [_resolve(i, scores.parent) for i in e.images]
        tests = versus_best(
            run.metrics, mos_higher_is_better=run.mos_higher_is_better, n_boot=n_boot
        )
        notes = agreement_notes(
            run.metrics,
            mos_higher_is_better=run.mos_higher_is_better,
            mos_direction=run.mos_direction,
            fit=fit,
            n_boot=n_boot,
            tested=bool(tests),
        )
        if run.unmatched:
            notes.append(f"{run.unmatched} scored image(s) have no MOS and are left out")
        table = agreement_table(run.metrics, tests, notes)
        sections += agreement_sections(run.metrics, table, run.mos_column, fit)
        meta += f" \u00b7 MOS from {Path(run.mos).name} ({run.matched} matched)"
    sections.insert(0, table_html(metrics_table(metrics, skipped or {})))
    sections.append("<h2>Every image</h2>" + per_image_html(rows, metrics))
    return write_page(out, title or f"iqa4k report: {scores.name}", meta, sections)


def _resolve(path: str, base: Path) -> str:
    return path if Path(path).exists() else str(base / path)

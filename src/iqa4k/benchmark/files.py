"""The benchmark's files: ``results.csv`` (numbers in full precision, for programs),
``results.md`` (the report's tables, for papers and READMEs), ``scores.csv`` (every image's
MOS and scores), ``plots/`` and the self-contained ``report.html``."""

from __future__ import annotations

import csv
import math
from datetime import date
from pathlib import Path

from ..report.cells import Table, markdown
from ..report.html import table_html, write_page
from ..report.pages import agreement_sections
from ..report.plots import plot_each, plot_panels
from ..report.sections import (
    agreement_notes,
    agreement_table,
    cost_table,
    crossval_table,
    metrics_table,
)
from .run import Benchmark

__all__ = ["CSV_COLUMNS", "agreement_notes_of", "write_all", "write_csv", "write_markdown"]

CSV_COLUMNS = (
    "metric", "n", "srcc", "srcc_lo", "srcc_hi", "plcc", "plcc_lo", "plcc_hi", "krcc", "rmse", "fit"
)  # fmt: skip


def write_csv(bench: Benchmark, path: Path) -> Path:
    """``results.csv``: one row per evaluated metric, numbers in full precision."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, CSV_COLUMNS)
        writer.writeheader()
        for e in bench.evaluations:
            r = e.result
            if r is None:
                writer.writerow({"metric": e.name, "n": len(e.scores), "fit": e.error})
                continue
            lo_hi = {
                f"{k}_{side}": r.ci[k][i]
                for k in ("srcc", "plcc")
                if k in r.ci
                for i, side in enumerate(("lo", "hi"))
            }
            writer.writerow(
                {
                    "metric": e.name,
                    "n": r.n,
                    **{k: getattr(r, k) for k in ("srcc", "plcc", "krcc", "rmse")},
                    **lo_hi,
                    "fit": r.fit_status,
                }
            )
    return path


def write_markdown(tables: list[Table], title: str, path: Path) -> Path:
    path.write_text(f"# {title}\n\n" + "\n".join(markdown(t) for t in tables), encoding="utf-8")
    return path


def agreement_notes_of(bench: Benchmark) -> list[str]:
    """The notes under the agreement table: how to read it, warnings, failed images."""
    notes = agreement_notes(
        bench.evaluations,
        mos_higher_is_better=bench.mos_higher_is_better,
        mos_direction=bench.mos_direction,
        fit=bench.fit,
        n_boot=bench.n_boot,
        tested=bool(bench.versus_best),
    )
    notes += [
        f"{m}: {n} image(s) could not be scored (reasons in scores/{m}.csv)"
        for m, n in bench.failures.items()
        if n
    ]
    return notes


def _labels(bench: Benchmark) -> dict[str, str]:
    """Metrics scored with a checkpoint show its file name."""
    return {m: f"{m} ({Path(w).name})" for m, w in bench.weights.items() if w}


def _write_scores(bench: Benchmark, path: Path) -> Path:
    # surrogateescape: a file name that is not UTF-8 is written back as its own bytes
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
        writer = csv.writer(f)
        # The label column is named by its direction, so that `iqa4k evaluate` and
        # `iqa4k report` read this file back with the MOS the right way up.
        label = "mos" if bench.mos_higher_is_better else "dmos"
        writer.writerow(["image", "ref", label, *bench.scores])
        for i, s in enumerate(bench.dataset.samples):
            values = ["" if math.isnan(v[i]) else repr(v[i]) for v in bench.scores.values()]
            writer.writerow([s.image, s.ref or "", repr(s.mos), *values])
    return path


def write_all(bench: Benchmark) -> list[Path]:
    """Every file of the benchmark into ``bench.out``; returns their paths."""
    out = bench.out
    mos_label = "MOS" if bench.mos_higher_is_better else "DMOS"
    agreement = agreement_table(
        bench.evaluations, bench.versus_best, agreement_notes_of(bench), _labels(bench)
    )
    tables = [metrics_table(list(bench.scores), bench.skipped), agreement]
    if bench.costs:
        tables.append(cost_table(bench.costs))
    tables += [crossval_table(t) for t in bench.crossval]
    title = f"iqa4k benchmark: {bench.dataset.adapter}:{bench.dataset.root.name}"
    written = [
        write_csv(bench, out / "results.csv"),
        write_markdown(tables, title, out / "results.md"),
        _write_scores(bench, out / "scores.csv"),
    ]
    figures = plot_panels(bench.evaluations, mos_label, bench.fit, out / "plots" / "all")
    written += figures + plot_each(bench.evaluations, mos_label, bench.fit, out / "plots")
    sections = [table_html(tables[0])]
    figure = figures[0] if figures else None
    sections += agreement_sections(bench.evaluations, agreement, mos_label, bench.fit, figure)
    sections += [table_html(t) for t in tables[2:]]
    meta = f"{len(bench.dataset)} images of {bench.dataset.spec} \u00b7 {date.today()}"
    written.append(write_page(out / "report.html", title, meta, sections))
    return written

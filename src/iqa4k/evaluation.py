"""Agreement of a scores CSV with a MOS CSV: the data behind ``iqa4k evaluate``.

Rows are joined by file name (or stem, when extensions differ), then every numeric column of
the scores file goes through :func:`iqa4k.stats.evaluate`, oriented by the metric's direction
and the MOS direction so that a good metric always shows positive SRCC and PLCC. A scores
file's own ``mos``/``dmos`` column (``iqa4k benchmark`` writes one) is never a metric: it is
the MOS when no MOS file is given. Nothing is printed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, OptionError
from .registry import METRICS
from .results_file import ERROR, REF, is_number, read_csv, read_scores

__all__ = [
    "IMAGE_COLUMNS",
    "MOS_COLUMNS",
    "OWN_MOS_COLUMNS",
    "EvaluationRun",
    "MetricEvaluation",
    "best_metric",
    "evaluate_columns",
    "evaluate_csv",
    "mos_higher_is_better",
    "versus_best",
]

# Columns tried, in order, when the image or MOS column is not named.
IMAGE_COLUMNS = ("image", "dist", "dist_name", "image_name", "filename", "name", "dist_img")
MOS_COLUMNS = ("mos", "dmos", "score", "MOS", "quality_mos", "elo")
# A scores file's own MOS (``iqa4k benchmark`` writes one): never a metric.
OWN_MOS_COLUMNS = ("mos", "dmos")


@dataclass
class MetricEvaluation:
    """One score column: the matched (score, MOS) pairs and its ``stats.Agreement``, or
    the reason it has none in ``error``.
    """

    name: str
    scores: list[float]
    mos: list[float]
    result: Any = None  # stats.Agreement; scipy is imported only when evaluating
    error: str = ""
    left_out: int = 0  # matched rows with an empty or non-finite score
    higher_is_better: bool | None = None  # None: not a registered metric, taken as higher
    images: list[str] = field(default_factory=list)  # the image of each pair, when known

    @property
    def warnings(self) -> list[str]:
        """Everything that makes these figures less than they seem, for the reader."""
        out = list(self.result.warnings) if self.result is not None else []
        if self.left_out:
            out.append(f"{self.left_out} image(s) with an empty or non-finite score left out")
        return out


@dataclass
class EvaluationRun:
    """The whole join: the files and columns used, the counts, and one entry per metric."""

    scores: str
    mos: str
    mos_column: str
    image_column: str
    matched: int
    unmatched: int
    fit: str
    n_boot: int
    mos_higher_is_better: bool = True
    mos_direction: str = ""  # where the MOS direction came from
    metrics: list[MetricEvaluation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document printed by ``iqa4k evaluate --json``."""
        doc: dict[str, Any] = {
            "scores": self.scores,
            "mos": self.mos,
            "mos_column": self.mos_column,
            "image_column": self.image_column,
            "matched": self.matched,
            "unmatched": self.unmatched,
            "fit": self.fit,
            "n_boot": self.n_boot,
            "mos_higher_is_better": self.mos_higher_is_better,
            "mos_direction": self.mos_direction,
        }
        doc["metrics"] = {
            e.name: (
                {**e.result.to_dict(), "higher_is_better": e.higher_is_better}
                if e.result is not None
                else {"error": e.error}
            )
            | {"left_out": e.left_out, "warnings": e.warnings}
            for e in self.metrics
        }
        return doc


def evaluate_csv(
    scores: str | Path,
    mos: str | Path | None = None,
    *,
    mos_column: str | None = None,
    image_column: str | None = None,
    fit: str = "5pl",
    n_boot: int = 1000,
    mos_direction: str | None = None,
) -> EvaluationRun:
    """Join the scores CSV with the MOS CSV by image name and evaluate each score column.

    Without ``mos``, the MOS is the scores file's own ``mos`` or ``dmos`` column. ``mos_column``
    / ``image_column`` name the MOS file's columns (default: the first of :data:`MOS_COLUMNS`
    / :data:`IMAGE_COLUMNS` present). ``mos_direction`` is ``higher`` or ``lower`` (default:
    from the column name, ``dmos`` is lower). A metric that cannot be evaluated gets ``error``
    set; a bad file or a join with fewer than 3 images raises.
    """
    scores_path = Path(scores)
    mos_path = scores_path if mos is None else Path(mos)
    for p in (scores_path, mos_path):
        if not p.is_file():
            raise InputError(f"{p}: no such file")
    header, rows = read_scores(scores_path)
    if not header:
        raise InputError(f"{scores_path} is empty")
    icol = _pick(header, None, IMAGE_COLUMNS, "image", scores_path)
    if mos is None:  # the scores file's own MOS column
        own = mos_column or next((c for c in OWN_MOS_COLUMNS if c in header), None)
        if own is None:
            raise InputError(
                f"{scores_path} has no mos or dmos column: give the MOS file (--mos FILE)"
            )
        labels = (header, rows, icol, own)
    else:
        own = None
        labels = (*read_csv(mos_path, sniff=True), image_column, mos_column)
    metrics = _numeric_columns(
        scores_path, header, rows, {icol, REF, ERROR, own or "", *OWN_MOS_COLUMNS}
    )
    if not metrics:
        raise InputError(
            f"{scores_path} has no numeric score column; its columns: {', '.join(header)}"
        )
    by_name, by_stem, mos_icol, mos_col = _mos_table(mos_path, *labels)

    matched: list[tuple[Mapping[str, str], float]] = []
    seen: set[str] = set()
    by_stem_for: dict[str, str] = {}  # stem -> the scored image it already matched
    for row in rows:
        name = _base(row.get(icol) or "")
        if name in seen:
            raise InputError(f"{scores_path}: image {name} appears twice; the join is by file name")
        seen.add(name)
        value, stem = by_name.get(name), _stem(name)
        if value is None and stem in by_stem:
            if stem in by_stem_for:  # two scored files, one MOS entry: which one is it?
                raise InputError(
                    f"{scores_path}: {by_stem_for[stem]} and {name} both match the MOS of "
                    f"{stem}.* in {mos_path} only by stem; name the images exactly"
                )
            by_stem_for[stem] = name
            value = by_stem[stem]
        if value is not None:
            matched.append((row, value))
    if not matched:
        ex_s = ", ".join(_base(r.get(icol) or "") for r in rows[:3])
        ex_m = ", ".join(list(by_name)[:3])
        raise InputError(
            f"no image of {scores_path} is in {mos_path} (matched on file name or stem): "
            f"e.g. {ex_s} vs {ex_m}"
        )
    if len(matched) < 3:
        raise InputError(f"only {len(matched)} image(s) have both a score and a MOS; need >= 3")

    if mos_direction is None:
        higher = mos_higher_is_better(mos_col)
        why = f"from the column name {mos_col!r}"
    else:
        higher = _direction_option(mos_direction)
        why = "given"
    run = EvaluationRun(
        scores=str(scores_path),
        mos=str(mos_path),
        mos_column=mos_col,
        image_column=mos_icol,
        matched=len(matched),
        unmatched=len(rows) - len(matched),
        fit=fit,
        n_boot=n_boot,
        mos_higher_is_better=higher,
        mos_direction=why,
    )
    columns = {m: [_number(row.get(m)) for row, _ in matched] for m in metrics}
    run.metrics = evaluate_columns(
        columns,
        [value for _, value in matched],
        directions={m: METRICS[m].higher_is_better for m in metrics if m in METRICS},
        mos_higher_is_better=higher,
        fit=fit,
        n_boot=n_boot,
        images=[row.get(icol) or "" for row, _ in matched],
    )
    return run


def evaluate_columns(
    columns: Mapping[str, Sequence[float]],
    mos: Sequence[float],
    *,
    directions: Mapping[str, bool | None],
    mos_higher_is_better: bool = True,
    fit: str = "5pl",
    n_boot: int = 1000,
    images: Sequence[str] = (),
) -> list[MetricEvaluation]:
    """One :class:`MetricEvaluation` per score column (aligned with ``mos``; NaN = no score).

    ``directions`` holds each metric's higher_is_better (absent or None: taken as higher);
    ``images`` (aligned with ``mos``) names the image of each pair for the report.
    """
    from . import stats  # scipy is only needed here

    out = []
    for name, values in columns.items():
        ev = MetricEvaluation(name, [], [], higher_is_better=directions.get(name))
        for i, (v, m) in enumerate(zip(values, mos, strict=True)):
            if math.isfinite(v):
                ev.scores.append(v)
                ev.mos.append(m)
                if images:
                    ev.images.append(images[i])
            else:
                ev.left_out += 1  # empty (failed) or inf (a perfect copy: PSNR of identical)
        try:
            ev.result = stats.evaluate(
                ev.scores,
                ev.mos,
                fit=fit,
                n_boot=n_boot,
                higher_is_better=ev.higher_is_better,
                mos_higher_is_better=mos_higher_is_better,
            )
        except InputError as e:
            ev.error = str(e)
        out.append(ev)
    return out


def best_metric(evaluations: Sequence[MetricEvaluation]) -> str | None:
    """The evaluated metric with the highest SRCC (None when none was evaluated)."""
    done = [e for e in evaluations if e.result is not None and math.isfinite(e.result.srcc)]
    return max(done, key=lambda e: e.result.srcc).name if done else None


def versus_best(
    evaluations: Sequence[MetricEvaluation], *, mos_higher_is_better: bool, n_boot: int = 1000
) -> dict[str, dict[str, Any]]:
    """Each metric tested against the best one, on the images both scored: ``{"srcc":
    Comparison (paired bootstrap), "plcc": Comparison (raw Pearson; Williams' p too)}``."""
    from . import stats

    best = best_metric(evaluations)
    if best is None:
        return {}
    top = next(e for e in evaluations if e.name == best)
    top_scores = dict(zip(top.images, top.scores, strict=True))
    out = {}
    for e in evaluations:
        if e.name == best or e.result is None:
            continue
        common = [(top_scores[i], v, m) for i, v, m in zip(e.images, e.scores, e.mos, strict=True)
                  if i in top_scores]  # fmt: skip
        if len(common) < 4:
            continue
        a, b, mos = (list(c) for c in zip(*common, strict=True))
        kwargs = {
            "higher_is_better_a": top.higher_is_better,
            "higher_is_better_b": e.higher_is_better,
            "mos_higher_is_better": mos_higher_is_better,
            "n_boot": max(n_boot, 200),  # a test needs resamples even when the CIs were off
        }
        out[e.name] = {s: stats.compare(a, b, mos, statistic=s, **kwargs) for s in ("srcc", "plcc")}
    return out


def mos_higher_is_better(column: str) -> bool:
    """The direction a label column's name implies: DMOS (difference scores) is lower."""
    return "dmos" not in column.lower()


def _direction_option(text: str) -> bool:
    if text not in ("higher", "lower"):
        raise OptionError(f"the MOS direction is higher or lower, got {text!r}")
    return text == "higher"


def _number(cell: str | None) -> float:
    cell = (cell or "").strip()
    return float(cell) if cell else math.nan


def _base(name: str) -> str:
    return name.strip().replace("\\", "/").rsplit("/", 1)[-1]


def _stem(name: str) -> str:
    base = _base(name)
    return base.rsplit(".", 1)[0] if "." in base else base


def _pick(
    header: Sequence[str],
    wanted: str | None,
    defaults: Sequence[str],
    what: str,
    path: Path,
    flag: str = "",
) -> str:
    """The column ``wanted``, else the first of ``defaults`` present; errors list the columns."""
    if wanted is not None:
        if wanted not in header:
            raise OptionError(f"{path} has no column {wanted!r}; its columns: {', '.join(header)}")
        return wanted
    for name in defaults:
        if name in header:
            return name
    raise InputError(
        f"{path}: no {what} column (looked for {', '.join(defaults)}); its columns: "
        f"{', '.join(header)}" + (f"; pick one with {flag}" if flag else "")
    )


def _mos_table(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Mapping[str, str]],
    image_col: str | None,
    mos_col: str | None,
) -> tuple[dict[str, float], dict[str, float], str, str]:
    """MOS by file name and by stem (ambiguous stems left out) and the columns used, from
    the ``header`` and ``rows`` of the file at ``path``."""
    icol = _pick(header, image_col, IMAGE_COLUMNS, "image", path, "--image-column")
    mcol = _pick(header, mos_col, MOS_COLUMNS, "MOS", path, "--mos-column")
    by_name: dict[str, float] = {}
    by_stem: dict[str, float | None] = {}
    for line, row in enumerate(rows, start=2):
        name = _base(row.get(icol) or "")
        if not name:
            continue
        try:
            mos = float(row.get(mcol) or "")
        except ValueError:
            mos = math.nan
        if not math.isfinite(mos):
            raise InputError(
                f"{path}, line {line}: {mcol} {row.get(mcol)!r} of {name} is not a finite number"
            )
        if name in by_name:
            raise InputError(f"{path}: image {name} is listed twice; the join is by file name")
        by_name[name] = mos
        stem = _stem(name)
        by_stem[stem] = None if stem in by_stem else mos  # None marks a stem shared by 2 files
    stems = {k: v for k, v in by_stem.items() if v is not None}
    return by_name, stems, icol, mcol


def _numeric_columns(
    path: Path, header: Sequence[str], rows: Sequence[Mapping[str, str]], skip: set[str]
) -> list[str]:
    """The score columns: those with a number in them. Text among the numbers (``N/A``) is
    an error, not a reason to drop the whole column; an empty cell is an image not scored."""
    cols = []
    for c in header:
        if c in skip:
            continue
        cells = [(line, (r.get(c) or "").strip()) for line, r in enumerate(rows, start=2)]
        bad = [(line, v) for line, v in cells if v and not is_number(v)]
        if len(bad) == sum(1 for _, v in cells if v):
            continue  # no number at all: a text column
        if bad:
            line, value = bad[0]
            raise InputError(
                f"{path}, line {line}: {c} {value!r} is not a number (leave the cell empty "
                f"for an image without a score; {len(bad)} such cell(s) in {c})"
            )
        cols.append(c)
    return cols

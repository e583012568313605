"""Plain-text output for the terminal: aligned tables of metrics, scores and evaluations.

Each function returns the text; the command line and the demo print it.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import weights
from ..registry import MetricSpec, get_spec
from .cells import format_table
from .formatting import direction, format_number, format_score
from .sections import agreement_notes

if TYPE_CHECKING:
    from ..data import Dataset
    from ..evaluation import EvaluationRun
    from ..scoring import ScoreRun

__all__ = [
    "evaluation_table",
    "format_table",
    "metric_info",
    "crossval_table",
    "dataset_summary",
    "metric_table",
    "score_summary",
    "score_table",
]


# ------------------------------------------------------------------------------ metrics


def _range(spec: MetricSpec) -> str:
    lo, hi = spec.score_range
    return f"[{format_number(lo)}, {format_number(hi)}]"


def _show(value: Any) -> str:
    """An option value as it would be typed after ``--opt name=``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(_show(v) for v in value)
    return format_number(value) if isinstance(value, float) else str(value)


def metric_table(specs: Sequence[MetricSpec]) -> str:
    """One line per metric: name, kind, direction, score range, whether its parameter files
    are in the cache, and summary (``iqa4k list``)."""
    rows = [("name", "kind", "direction", "range", "ready", "summary")]
    rows += [
        (s.name, s.kind, direction(s.higher_is_better), _range(s), _ready(s.name), s.summary)
        for s in specs
    ]
    return format_table(rows)


def _ready(metric: str) -> str:
    """``yes``, or ``no`` when a parameter file it reads is not in the cache (``iqa4k info``
    names it; a file passed with --opt would do too)."""
    files = [n for n, f in weights.REGISTRY.items() if metric in f.metrics]
    return "no" if any(not weights.cache_path(n).is_file() for n in files) else "yes"


def metric_info(spec: MetricSpec) -> str:
    """Everything about one metric: direction, range, options, citation (``iqa4k info``)."""
    kind = "full-reference" if spec.kind == "FR" else "no-reference"
    lines = [
        f"{spec.name} ({kind}, {spec.kind})",
        f"  {spec.summary}",
        f"  better:         {direction(spec.higher_is_better)}",
        f"  score range:    {_range(spec)}",
        f"  differentiable: {'yes' if spec.differentiable else 'no'}",
        "options:" if spec.options else "options: none",
    ]
    for name, opt in spec.options.items():
        extra = []
        if opt.choices is not None:
            extra.append("choices: " + ", ".join(str(c) for c in opt.choices))
        if opt.minimum is not None:
            extra.append(f"minimum: {format_number(opt.minimum)}")
        shown = f"  {name} = {_show(opt.default)}"
        lines.append(shown + (f"   ({'; '.join(extra)})" if extra else ""))
        lines.append(f"      {opt.doc}")
    lines += [
        "citation:",
        textwrap.fill(spec.citation, 96, initial_indent="  ", subsequent_indent="  "),
    ]
    if spec.model is not None:
        lines += _model_cost(spec)
    else:
        lines += _weights_status(n for n, f in weights.REGISTRY.items() if spec.name in f.metrics)
    inputs = "--ref REF_DIR DIST_DIR" if spec.kind == "FR" else "DIST_DIR"
    opt = f" --opt {next(iter(spec.options))}=VALUE" if spec.options else ""
    lines += ["usage:", f"  iqa4k score -m {spec.name}{opt} {inputs} -o scores.csv"]
    return "\n".join(lines)


def _model_cost(spec: MetricSpec) -> list[str]:
    """Parameters, GMACs per 3840x2160 image under each sampling policy, weights' status."""
    from ..models import cost, get_entry

    model, release = spec.model
    options = get_entry(model).releases[release].options
    policies = spec.options["sampling"].choices if "sampling" in spec.options else ("official",)
    lines = [
        f"model: {model}, release {release}",
        f"  parameters: {cost.parameters(model, **options) / 1e6:.2f} M",
        "  cost per 3840x2160 image (torch FLOP counter; MACs = FLOPs / 2):",
    ]
    for policy, crops, gmacs in cost.describe(model, policies, **options):
        lines.append(f"    {policy:<9} {crops:>4} network input(s)  {gmacs:10.1f} GMACs")
    entry = get_entry(model)
    return lines + _weights_status(
        entry.file_name(key) for key in (release, *entry.releases[release].needs)
    )


def _weights_status(names: Iterable[str]) -> list[str]:
    """The status of each parameter file in ``names`` and its cache path."""
    lines = [f"  {n}: {weights.status(n)} ({weights.cache_path(n)})" for n in names]
    return ["weights (iqa4k weights list|fetch|import):", *lines] if lines else []


# ------------------------------------------------------------------------------ datasets


def dataset_summary(dataset: Dataset) -> str:
    """What ``iqa4k datasets NAME:ROOT`` prints: counts, scale, direction, splits, notes."""
    groups = {s.group for s in dataset.samples}
    lo, hi = dataset.score_range
    splits = dataset.official_splits()
    lines = [
        f"{dataset.spec}: {len(dataset)} images in {len(groups)} content group(s)",
        f"  kind:        {'full-reference' if dataset.full_reference else 'no-reference'}",
        f"  scores:      {format_number(lo)} to {format_number(hi)}, "
        f"{direction(dataset.higher_is_better)}",
        "  official:    "
        + (", ".join(f"{k} {len(v)}" for k, v in splits.items()) if splits else "no split"),
    ]
    lines += [f"  note:        {note}" for note in dataset.notes]
    return "\n".join(lines)


def crossval_table(summary: Mapping[str, Any]) -> str:
    """Per-fold and mean +- std test figures of a cross-validation, and of the metrics it was
    compared with on the same folds."""
    rows = [("", "fold", "n_test", "SRCC", "PLCC", "KRCC", "RMSE")]

    def add(label: str, block: Mapping[str, Any]) -> None:
        for r in block["folds"]:
            rows.append(
                (
                    label,
                    str(r["fold"]),
                    str(r.get("n_test", "")),
                    *(_num(r.get(k)) for k in ("srcc", "plcc", "krcc", "rmse")),
                )
            )
        mean, std = block["mean"], block["std"]
        rows.append(
            (
                label,
                "mean",
                "",
                *(
                    f"{_num(mean.get(k))} +- {_num(std.get(k))}"
                    for k in ("srcc", "plcc", "krcc", "rmse")
                ),
            )
        )

    add(summary.get("config", {}).get("model", "model"), summary)
    add("(last epoch)", summary["last_epoch"])
    for metric, block in summary.get("compare", {}).items():
        add(metric, block)
    return format_table(rows, right=(False, True, True, True, True, True, True))


def _num(value: Any) -> str:
    return "" if value is None else f"{value:.3f}"


# ------------------------------------------------------------------------------- scores


def score_summary(run: ScoreRun) -> str:
    """How many images were scored, and each metric's mean (``iqa4k score``)."""
    table = [("metric", "mean", "images", "")]
    for m in run.metrics:
        values = [float(r[m]) for r in run.rows if (r.get(m) or "").strip()]
        finite = [v for v in values if math.isfinite(v)]
        mean = f"{sum(finite) / len(finite):.4f}" if finite else "-"
        left_out = len(values) - len(finite)
        note = f"({left_out} non-finite left out)" if left_out else ""
        table.append((m, mean, str(len(finite)), note))
    done = len(run.rows) - len(run.failures)
    head = f"{done} of {len(run.rows)} image(s) scored by every metric"
    if run.resumed:
        head += f" ({run.resumed} from the earlier run)"
    return f"{head} -> {run.out}\n" + format_table(table, right=(False, True, True, False))


def score_table(run: ScoreRun) -> str:
    """Every score of every image, then how to read each metric (``iqa4k demo``)."""
    header = ["image", *run.metrics]
    body = [
        [Path(r["image"]).stem, *(format_score(r.get(m), m) for m in run.metrics)] for r in run.rows
    ]
    table = format_table([header, *body], right=[False] + [True] * len(run.metrics))
    first, *rest = table.split("\n")
    rule = "-" * len(first)
    lines = [first, rule, *rest, rule]
    for m in run.metrics:
        spec = get_spec(m)
        lo, hi = spec.score_range
        ideal = hi if spec.higher_is_better else lo
        lo_s, hi_s, ideal_s = (format_number(v, symbols=True) for v in (lo, hi, ideal))
        lines.append(
            f"{m}: {direction(spec.higher_is_better)} "
            f"({spec.kind}, range {lo_s} to {hi_s}, ideal {ideal_s})"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- evaluation


def _ci(value: float, ci: Mapping[str, Sequence[float]], key: str) -> str:
    text = f"{value:.4f}" if math.isfinite(value) else "nan"
    lo, hi = ci.get(key, (math.nan, math.nan))
    if math.isfinite(lo) and math.isfinite(hi):
        text += f" [{lo:.3f}, {hi:.3f}]"
    return text


def evaluation_table(run: EvaluationRun) -> str:
    """What was matched, SRCC/PLCC (with CIs), KRCC, RMSE per metric, and notes
    (``iqa4k evaluate``).
    """
    evals = run.metrics
    level = next((round(e.result.level * 100) for e in evals if e.result), 95)
    lines = [
        f"{run.matched} image(s) matched between {run.scores} and {run.mos} "
        f"({run.mos_column!r} by {run.image_column!r})"
    ]
    table = [("metric", "n", f"SRCC [{level}% CI]", f"PLCC [{level}% CI]", "KRCC", "RMSE", "fit")]
    for e in evals:
        r = e.result
        if r is None:
            table.append((e.name, str(len(e.scores)), e.error, "", "", "", ""))
            continue
        table.append(
            (
                e.name,
                str(r.n),
                _ci(r.srcc, r.ci, "srcc"),
                _ci(r.plcc, r.ci, "plcc"),
                f"{r.krcc:.4f}",
                f"{r.rmse:.4f}",
                r.fit_status,
            )
        )
    lines.append(format_table(table, right=(False, True, False, False, True, True, False)))
    notes = agreement_notes(
        evals,
        mos_higher_is_better=run.mos_higher_is_better,
        mos_direction=run.mos_direction + "; --mos-direction to change",
        fit=run.fit,
        n_boot=run.n_boot,
        tested=False,
    )
    if run.unmatched:
        notes.append(f"{run.unmatched} scored image(s) have no MOS and are left out")
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)

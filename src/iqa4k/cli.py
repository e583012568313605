"""The ``iqa4k`` command: ``list``, ``info``, ``score``, ``evaluate`` and ``demo``.

Everything shown about metrics comes from the registry, so new metrics appear here without
touching this file. User mistakes end in one ``error:`` line and exit 2 (usage) or 1 (bad
input or failed images); tracebacks are left for bugs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import re
import sys
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from . import io as iqa_io
from .errors import ImageReadError, InputError, IQAError, OptionError
from .metric import Metric, create_metric
from .registry import METRICS, MetricSpec, get_spec

__all__ = ["ScoreRun", "main", "parse_value", "score"]

IMAGE, REF, ERROR = "image", "ref", "error"
IMAGE_COLUMNS = ("image", "dist", "dist_name", "image_name", "filename", "name")
MOS_COLUMNS = ("mos", "dmos", "score", "MOS")


# ------------------------------------------------------------------------------ formatting


def _num(v: float) -> str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:g}"


def _show(value: Any) -> str:
    """An option value as it would be typed after ``--opt name=``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(_show(v) for v in value)
    return _num(value) if isinstance(value, float) else str(value)


def _range(spec: MetricSpec) -> str:
    lo, hi = spec.score_range
    return f"[{_num(lo)}, {_num(hi)}]"


def _direction(spec: MetricSpec) -> str:
    return "higher" if spec.higher_is_better else "lower"


def _table(rows: Sequence[Sequence[str]], right: Sequence[bool] = ()) -> str:
    """Rows of text as aligned columns; ``right[i]`` right-aligns column i (numbers)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            c.rjust(w) if i < len(right) and right[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


# ------------------------------------------------------------------------------ list / info


def _cmd_list(args: argparse.Namespace) -> int:
    specs = [s for s in METRICS.values() if args.kind is None or s.kind == args.kind]
    if not specs:
        print(f"no {args.kind} metrics are registered yet")
        return 0
    rows = [("name", "kind", "direction", "range", "summary")]
    rows += [(s.name, s.kind, f"{_direction(s)} is better", _range(s), s.summary) for s in specs]
    print(_table(rows))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    spec = get_spec(args.metric)
    kind = "full-reference" if spec.kind == "FR" else "no-reference"
    lines = [
        f"{spec.name} ({kind}, {spec.kind})",
        f"  {spec.summary}",
        f"  better:         {_direction(spec)} is better",
        f"  score range:    {_range(spec)}",
        f"  differentiable: {'yes' if spec.differentiable else 'no'}",
        "options:" if spec.options else "options: none",
    ]
    for name, opt in spec.options.items():
        extra = []
        if opt.choices is not None:
            extra.append("choices: " + ", ".join(str(c) for c in opt.choices))
        if opt.minimum is not None:
            extra.append(f"minimum: {_num(opt.minimum)}")
        shown = f"  {name} = {_show(opt.default)}"
        lines.append(shown + (f"   ({'; '.join(extra)})" if extra else ""))
        lines.append(f"      {opt.doc}")
    lines += [
        "citation:",
        textwrap.fill(spec.citation, 96, initial_indent="  ", subsequent_indent="  "),
    ]
    if spec.options:
        first = next(iter(spec.options))
        lines += ["usage:", f"  iqa4k score -m {spec.name} --opt {first}=VALUE ..."]
    print("\n".join(lines))
    return 0


# --------------------------------------------------------------------------------- options


def parse_value(text: str) -> Any:
    """``--opt`` text as bool, int, float, a comma-separated tuple, or else the string."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if "," in t:
        return tuple(parse_value(p) for p in t.split(","))
    for kind in (int, float):
        try:
            return kind(t)
        except ValueError:
            pass
    return t


def _parse_opts(pairs: Sequence[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise OptionError(f"--opt expects name=value, got {pair!r}")
        out[name.strip()] = parse_value(value)
    return out


def _split_options(specs: Sequence[MetricSpec], options: Mapping[str, Any]) -> dict[str, dict]:
    """Give each metric the options it has; an option that no selected metric has is an error
    (a typo would otherwise be silently ignored).
    """
    per_metric: dict[str, dict] = {s.name: {} for s in specs}
    for key, value in options.items():
        owners = [s for s in specs if key in s.options]
        if not owners:
            known = sorted({o for s in specs for o in s.options})
            raise OptionError(
                f"no selected metric has option {key!r}; their options: {', '.join(known)}"
            )
        for s in owners:
            per_metric[s.name][key] = value
    return per_metric


def _metric_names(metrics: str | Sequence[str]) -> list[str]:
    parts = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    names: list[str] = []
    for part in parts:
        if part.strip():
            name = get_spec(part).name  # canonical spelling; unknown names raise here
            if name not in names:
                names.append(name)
    if not names:
        raise OptionError("no metric given; see `iqa4k list`")
    return names


# ---------------------------------------------------------------------------------- score


@dataclass
class ScoreRun:
    """What ``score`` did: every row of the output file and this run's failures."""

    out: Path
    metrics: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    resumed: int = 0


@dataclass
class _Item:
    dist: Path
    ref: Path | None
    x: torch.Tensor
    y: torch.Tensor | None


def _key(path: str | Path) -> str:
    # Resume compares files, not spellings: "a/./x.png" and "/abs/a/x.png" are the same image.
    return os.path.normcase(os.path.abspath(str(path)))


def _read_csv(path: Path, sniff: bool = False) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file (a BOM from spreadsheet exports is dropped). ``sniff``
    also accepts ';' and tab separators, for label files made by other tools.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        dialect: Any = csv.excel
        if sniff:
            sample = f.read(8192)
            f.seek(0)
            with contextlib.suppress(csv.Error):  # one column, or nothing to go by: commas
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        reader = csv.DictReader(f, dialect=dialect)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        return header, list(reader)


def _write_rows(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> None:
    # Write beside and rename: a crash while rewriting must not lose the rows already done.
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _is_done(row: Mapping[str, str | None], metrics: Sequence[str]) -> bool:
    if (row.get(ERROR) or "").strip() or not (row.get(IMAGE) or "").strip():
        return False
    for m in metrics:
        try:
            float(row.get(m) or "")
        except ValueError:  # empty or cut short by a killed run
            return False
    return True


def _prepare_output(
    out: Path, columns: list[str], metrics: list[str], resume: bool, overwrite: bool
) -> tuple[list[str], list[dict[str, str]]]:
    """Columns to write and the finished rows kept from an earlier run (``resume``)."""
    if out.exists() and out.stat().st_size > 0:
        if resume:
            header, rows = _read_csv(out)
            if set(header) != set(columns):
                raise OptionError(
                    f"cannot resume {out}: it has columns {','.join(header)} but this run "
                    f"writes {','.join(columns)} (use the same -m, or --overwrite)"
                )
            # Keep the file's column order; drop failed and half-written rows so they are
            # scored again and every image ends up with exactly one row.
            kept = [r for r in rows if _is_done(r, metrics)]
            _write_rows(out, header, kept)
            return header, kept
        if not overwrite:
            raise OptionError(f"{out} exists: pass --resume to continue it or --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_rows(out, columns, [])
    return columns, []


def _size(t: torch.Tensor) -> str:
    return f"{t.shape[-1]}x{t.shape[-2]}"


class _Loader:
    """Decodes images; keeps the last reference, since many distorted images share one."""

    def __init__(self) -> None:
        self._ref_path: Path | None = None
        self._ref: torch.Tensor | IQAError | None = None

    def ref(self, path: Path) -> torch.Tensor:
        if path != self._ref_path:
            self._ref_path = path
            try:
                self._ref = iqa_io.load_image(path).contiguous()
            except IQAError as e:  # remember the failure too: do not decode a bad file 1000x
                self._ref = e
        if isinstance(self._ref, IQAError):
            raise InputError(f"reference {self._ref}")
        return self._ref

    def item(self, dist: Path, ref: Path | None) -> _Item:
        # load_image may return a channels-last view; metrics run several times faster on
        # contiguous memory, and torch.stack would copy anyway.
        x = iqa_io.load_image(dist).contiguous()
        y = self.ref(ref) if ref is not None else None
        if y is not None and x.shape != y.shape:
            raise InputError(f"size {_size(x)} differs from its reference {ref} ({_size(y)})")
        return _Item(dist, ref, x, y)


def _reason(e: Exception, path: Path | None = None) -> str:
    """The message of ``e``, without the path when it is the row's own image (no repeats)."""
    if isinstance(e, ImageReadError) and path is not None and Path(e.path) == path:
        return e.reason
    return str(e)


# Errors that belong to one image (or one batch) and must not stop a long run. A batch too big
# for the GPU is retried image by image like any other batch failure.
_ITEM_ERRORS = (IQAError, torch.cuda.OutOfMemoryError)


def _describe_error(e: Exception) -> str:
    if isinstance(e, torch.cuda.OutOfMemoryError):
        return "out of GPU memory (try a smaller --batch-size or --device cpu)"
    return str(e)


def _score_one(model: Metric, x: torch.Tensor, y: torch.Tensor | None) -> list[float]:
    with torch.inference_mode():
        s = model(x, y) if model.info.kind == "FR" else model(x)
    return [float(v) for v in s.detach().cpu().tolist()]


def _score_batch(items: list[_Item], models: Mapping[str, Metric]) -> list[dict[str, str]]:
    """One row per item; a metric failing on the batch is retried image by image, so one bad
    image costs only its own cell and the numbers never depend on the batch size.
    """
    rows = [_row(it.dist, it.ref) for it in items]
    errors: list[list[str]] = [[] for _ in items]
    x = torch.stack([it.x for it in items])
    y = torch.stack([it.y for it in items]) if items[0].y is not None else None
    for name, model in models.items():
        try:
            for row, v in zip(rows, _score_one(model, x, y), strict=True):
                row[name] = repr(v)
            continue
        except _ITEM_ERRORS as e:
            if len(items) == 1:
                errors[0].append(f"{name}: {_describe_error(e)}")
                continue
        for i, it in enumerate(items):
            try:
                yi = None if it.y is None else it.y[None]
                rows[i][name] = repr(_score_one(model, it.x[None], yi)[0])
            except _ITEM_ERRORS as e:
                errors[i].append(f"{name}: {_describe_error(e)}")
    for row, errs in zip(rows, errors, strict=True):
        row[ERROR] = "; ".join(errs)
    return rows


def _row(dist: Path, ref: Path | None, error: str = "") -> dict[str, str]:
    return {IMAGE: str(dist), REF: "" if ref is None else str(ref), ERROR: error}


def _batches(
    pairs: Sequence[tuple[Path, Path | None, str]], models: Mapping[str, Metric], batch_size: int
) -> Iterator[list[dict[str, str]]]:
    """Rows in input order, a batch at a time. Only consecutive same-size images share a batch:
    that keeps the file order and holds at most one batch of decoded images in memory.
    """
    loader = _Loader()
    pending: list[_Item] = []
    for dist, ref, unpaired in pairs:
        try:
            if unpaired:
                raise InputError(unpaired)
            item = loader.item(dist, ref)
        except IQAError as e:
            if pending:  # flush first: rows stay in input order
                yield _score_batch(pending, models)
                pending = []
            yield [_row(dist, ref, _reason(e, dist))]
            continue
        if pending and (len(pending) >= batch_size or item.x.shape != pending[0].x.shape):
            yield _score_batch(pending, models)
            pending = []
        pending.append(item)
    if pending:
        yield _score_batch(pending, models)


def _pairs(
    images: list[Path], ref: str | Path | None, fr: bool
) -> list[tuple[Path, Path | None, str]]:
    """(dist, ref, why it has no ref) for each image; NR-only runs need no reference."""
    if not fr:
        return [(p, None, "") for p in images]
    if ref is None:
        raise OptionError("full-reference metrics need --ref (a reference file or folder)")
    try:
        return [(d, r, "") for d, r in iqa_io.pair_by_name(images, ref)]
    except InputError as whole:
        # Some images have no (or several) references. Pair them one by one so only those get
        # an error row; if none pairs, --ref is simply wrong and one message says so.
        out: list[tuple[Path, Path | None, str]] = []
        for d in images:
            try:
                out.append((d, iqa_io.pair_by_name([d], ref)[0][1], ""))
            except InputError as e:
                out.append((d, None, str(e)))
        if all(why for _, _, why in out):
            raise whole from None
        return out


def score(
    dist: str | Path | Sequence[str | Path],
    metrics: str | Sequence[str],
    out: str | Path,
    *,
    ref: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    device: str | None = None,
    batch_size: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> ScoreRun:
    """Score files or folders ``dist`` with ``metrics`` into the CSV ``out``, row by row.

    Rows are flushed as they are computed, so an interrupted run keeps its work and ``resume``
    finishes it. Unreadable or mismatched images get a row with the reason in ``error``.
    """
    if batch_size < 1:
        raise OptionError(f"batch size must be >= 1, got {batch_size}")
    names = _metric_names(metrics)
    specs = [get_spec(n) for n in names]
    per_metric = _split_options(specs, options or {})
    models = {s.name: create_metric(s.name, device=device, **per_metric[s.name]) for s in specs}
    sources = [dist] if isinstance(dist, (str, Path)) else list(dist)
    images = iqa_io.list_images(sources)
    if not images:
        raise InputError("no images found in " + ", ".join(str(s) for s in sources))
    pairs = _pairs(images, ref, any(s.kind == "FR" for s in specs))

    out = Path(out)
    columns, kept = _prepare_output(out, [IMAGE, REF, *names, ERROR], names, resume, overwrite)
    done = {_key(r[IMAGE]) for r in kept}
    todo = [p for p in pairs if _key(p[0]) not in done]
    run = ScoreRun(out=out, metrics=names, rows=list(kept), resumed=len(pairs) - len(todo))

    bar = tqdm(
        total=len(pairs),
        initial=run.resumed,
        unit="img",
        desc="scoring",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        with open(out, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, columns, extrasaction="ignore")
            for rows in _batches(todo, models, batch_size):
                writer.writerows(rows)
                f.flush()  # a killed run keeps every finished row
                run.rows.extend(rows)
                run.failures += [(r[IMAGE], r[ERROR]) for r in rows if r[ERROR]]
                bar.update(len(rows))
    finally:
        bar.close()
    return run


def _summary(run: ScoreRun) -> str:
    table = [("metric", "mean", "images", "")]
    for m in run.metrics:
        values = [float(r[m]) for r in run.rows if (r.get(m) or "").strip()]
        finite = [v for v in values if math.isfinite(v)]
        mean = f"{sum(finite) / len(finite):.4f}" if finite else "-"
        left_out = len(values) - len(finite)
        note = f"({left_out} non-finite left out)" if left_out else ""
        table.append((m, mean, str(len(finite)), note))
    done = len(run.rows) - len(run.failures)
    head = f"{done} of {len(run.rows)} image(s) scored"
    if run.resumed:
        head += f" ({run.resumed} from the earlier run)"
    return f"{head} -> {run.out}\n" + _table(table, right=(False, True, True, False))


def _cmd_score(args: argparse.Namespace) -> int:
    if args.ref and all(get_spec(m).kind == "NR" for m in _metric_names(args.metrics)):
        print("note: --ref is ignored: no full-reference metric is selected", file=sys.stderr)
    run = score(
        args.dist,
        args.metrics,
        args.output,
        ref=args.ref,
        options=_parse_opts(args.opt),
        device=args.device,
        batch_size=args.batch_size,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    for image, reason in run.failures:
        print(f"error: {image}: {reason}", file=sys.stderr)
    print(_summary(run))
    return 1 if run.failures else 0


# ------------------------------------------------------------------------------- evaluate


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
    path: Path, image_col: str | None, mos_col: str | None
) -> tuple[dict[str, float], dict[str, float], str, str]:
    """MOS by file name and by stem (ambiguous stems left out) and the columns used."""
    header, rows = _read_csv(path, sniff=True)
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
            raise InputError(
                f"{path}, line {line}: {mcol} {row.get(mcol)!r} of {name} is not a number"
            ) from None
        if name in by_name:
            raise InputError(f"{path}: image {name} is listed twice; the join is by file name")
        by_name[name] = mos
        stem = _stem(name)
        by_stem[stem] = None if stem in by_stem else mos  # None marks a stem shared by 2 files
    stems = {k: v for k, v in by_stem.items() if v is not None}
    return by_name, stems, icol, mcol


def _numeric_columns(
    header: Sequence[str], rows: Sequence[Mapping[str, str]], skip: set[str]
) -> list[str]:
    cols = []
    for c in header:
        if c in skip:
            continue
        cells = [(r.get(c) or "").strip() for r in rows]
        cells = [v for v in cells if v]
        try:
            [float(v) for v in cells]
        except ValueError:
            continue
        if cells:
            cols.append(c)
    return cols


@dataclass
class _MetricEval:
    name: str
    scores: list[float]
    mos: list[float]
    result: Any = None  # stats.Evaluation
    error: str = ""
    left_out: int = 0
    higher_is_better: bool | None = None


def _evaluate(args: argparse.Namespace) -> tuple[list[_MetricEval], dict[str, Any]]:
    from . import stats  # scipy is only needed here

    scores_path, mos_path = Path(args.scores), Path(args.mos)
    for p in (scores_path, mos_path):
        if not p.is_file():
            raise InputError(f"{p}: no such file")
    header, rows = _read_csv(scores_path)
    if not header:
        raise InputError(f"{scores_path} is empty")
    icol = _pick(header, None, IMAGE_COLUMNS, "image", scores_path)
    metrics = _numeric_columns(header, rows, {icol, REF, ERROR})
    if not metrics:
        raise InputError(
            f"{scores_path} has no numeric score column; its columns: {', '.join(header)}"
        )
    by_name, by_stem, mos_icol, mos_col = _mos_table(mos_path, args.image_column, args.mos_column)

    matched: list[tuple[Mapping[str, str], float]] = []
    seen: set[str] = set()
    for row in rows:
        name = _base(row.get(icol) or "")
        if name in seen:
            raise InputError(f"{scores_path}: image {name} appears twice; the join is by file name")
        seen.add(name)
        mos = by_name.get(name, by_stem.get(_stem(name)))
        if mos is not None:
            matched.append((row, mos))
    if not matched:
        ex_s = ", ".join(_base(r.get(icol) or "") for r in rows[:3])
        ex_m = ", ".join(list(by_name)[:3])
        raise InputError(
            f"no image of {scores_path} is in {mos_path} (matched on file name or stem): "
            f"e.g. {ex_s} vs {ex_m}"
        )
    if len(matched) < 3:
        raise InputError(f"only {len(matched)} image(s) have both a score and a MOS; need >= 3")

    evals = []
    for m in metrics:
        spec = METRICS.get(m)
        ev = _MetricEval(m, [], [], higher_is_better=spec.higher_is_better if spec else None)
        for row, mos in matched:
            cell = (row.get(m) or "").strip()
            v = float(cell) if cell else math.nan
            if math.isfinite(v):
                ev.scores.append(v)
                ev.mos.append(mos)
            else:
                ev.left_out += 1  # empty (failed) or inf (a perfect copy: PSNR of identical)
        try:
            ev.result = stats.evaluate(
                ev.scores,
                ev.mos,
                fit=args.fit,
                n_boot=args.boot,
                higher_is_better=ev.higher_is_better,
            )
        except InputError as e:
            ev.error = str(e)
        evals.append(ev)
    meta = {
        "scores": str(scores_path),
        "mos": str(mos_path),
        "mos_column": mos_col,
        "image_column": mos_icol,
        "matched": len(matched),
        "unmatched": len(rows) - len(matched),
        "fit": args.fit,
        "n_boot": args.boot,
    }
    return evals, meta


def _ci(value: float, ci: Mapping[str, Sequence[float]], key: str) -> str:
    text = f"{value:.4f}" if math.isfinite(value) else "nan"
    lo, hi = ci.get(key, (math.nan, math.nan))
    if math.isfinite(lo) and math.isfinite(hi):
        text += f" [{lo:.3f}, {hi:.3f}]"
    return text


def _fit_status(fit_name: str, result: Any) -> str:
    if result.fit is None:
        return "none"
    return fit_name if result.fit.converged else f"{fit_name} failed, linear"


def _print_evaluation(evals: list[_MetricEval], meta: Mapping[str, Any]) -> None:
    level = next((round(e.result.level * 100) for e in evals if e.result), 95)
    print(
        f"{meta['matched']} image(s) matched between {meta['scores']} and {meta['mos']} "
        f"({meta['mos_column']!r} by {meta['image_column']!r})"
    )
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
                _fit_status(meta["fit"], r),
            )
        )
    print(_table(table, right=(False, True, False, False, True, True, False)))
    notes = [
        f"{e.name}: {e.left_out} empty or non-finite score(s) left out" for e in evals if e.left_out
    ]
    if any(e.result is not None and e.result.negated for e in evals):
        notes.append("lower-is-better metrics are negated first, so a good metric shows SRCC > 0")
    if meta["fit"] != "none":
        notes.append(f"PLCC and RMSE are after the {meta['fit']} logistic map to MOS")
    if meta["unmatched"]:
        notes.append(f"{meta['unmatched']} scored image(s) have no MOS and are left out")
    for n in notes:
        print(f"note: {n}")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "metric"


def _plot(evals: list[_MetricEval], out_dir: Path, meta: Mapping[str, Any]) -> list[Path]:
    """One scatter of score vs MOS per metric, with the fitted curve; returns the PNG paths."""
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for e in evals:
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
            label = f"{meta['fit']} logistic" if r.fit.converged else "linear (fit failed)"
            ax.plot(xs, ys, color="#d62728", lw=2, label=label)
            ax.legend(loc="best", frameon=False)
        direction = {True: "higher is better", False: "lower is better"}.get(
            e.higher_is_better, "direction unknown"
        )
        ax.set_xlabel(f"{e.name} ({direction})")
        ax.set_ylabel(str(meta["mos_column"]))
        ax.set_title(f"{e.name}: SRCC {r.srcc:.3f}, PLCC {r.plcc:.3f}, n={r.n}")
        ax.grid(True, alpha=0.3)
        path = out_dir / f"{_safe_name(e.name)}.png"
        fig.savefig(path)
        written.append(path)
    return written


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if args.boot < 0:
        raise OptionError(f"--boot must be >= 0, got {args.boot}")
    evals, meta = _evaluate(args)
    if args.json:
        doc = dict(meta)
        doc["metrics"] = {
            e.name: (
                {
                    **e.result.to_dict(),
                    "higher_is_better": e.higher_is_better,
                    "left_out": e.left_out,
                }
                if e.result is not None
                else {"error": e.error, "left_out": e.left_out}
            )
            for e in evals
        }
        print(json.dumps(doc, indent=2))
    else:
        _print_evaluation(evals, meta)
    if args.plot:
        paths = _plot(evals, Path(args.plot), meta)
        print(f"wrote {len(paths)} plot(s) to {args.plot}", file=sys.stderr)
    return 1 if any(e.result is None for e in evals) else 0


# ----------------------------------------------------------------------------------- demo


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo_main  # demo imports this module: import it only when run

    return demo_main(args.out)


# --------------------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of the ``iqa4k`` command."""
    from . import __version__

    p = argparse.ArgumentParser(
        prog="iqa4k", description="Image quality assessment for 4K/UHD and super-resolved images."
    )
    p.add_argument("--version", action="version", version=f"iqa4k {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("list", help="list the metrics")
    s.add_argument("--kind", type=str.upper, choices=("FR", "NR"), help="only FR or NR metrics")
    s.set_defaults(func=_cmd_list)

    s = sub.add_parser("info", help="everything about one metric: options, range, citation")
    s.add_argument("metric")
    s.set_defaults(func=_cmd_info)

    s = sub.add_parser("score", help="score images into a CSV file")
    s.add_argument("dist", nargs="+", metavar="DIST", help="image files or folders")
    s.add_argument("-m", "--metrics", required=True, help="comma-separated metric names")
    s.add_argument("--ref", help="reference file or folder (paired by file name; FR metrics)")
    s.add_argument("-o", "--output", required=True, help="output CSV")
    s.add_argument("--device", help="torch device, e.g. cpu or cuda:0")
    s.add_argument(
        "--batch-size",
        type=_positive_int,
        default=1,
        help="same-size images scored together (default 1)",
    )
    mode = s.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume", action="store_true", help="keep the finished rows of OUTPUT and score the rest"
    )
    mode.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    s.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="metric option, repeatable (see `iqa4k info METRIC`)",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_score)

    s = sub.add_parser("evaluate", help="agreement of scores with MOS (SRCC, PLCC, ...)")
    s.add_argument("scores", help="CSV from `iqa4k score`")
    s.add_argument("--mos", required=True, help="CSV with an image column and a MOS column")
    s.add_argument("--mos-column", help="MOS column (default: first of mos, dmos, score, MOS)")
    s.add_argument(
        "--image-column",
        help="image column of the MOS file (default: first of " + ", ".join(IMAGE_COLUMNS) + ")",
    )
    s.add_argument(
        "--fit",
        choices=("5pl", "4pl", "none"),
        default="5pl",
        help="logistic map before PLCC/RMSE (default 5pl)",
    )
    s.add_argument("--boot", type=int, default=1000, help="bootstrap resamples for CIs (0: none)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument("--plot", metavar="DIR", help="write one scatter plot PNG per metric")
    s.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser("demo", help="degrade a sample photo, score it with every metric")
    s.add_argument("--out", default="demo-out", help="output folder (default demo-out)")
    s.set_defaults(func=_cmd_demo)
    return p


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failures, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed its message (or --help/--version)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    try:
        return args.func(args)
    except OptionError as e:
        return _fail(str(e), 2)
    except IQAError as e:
        return _fail(str(e), 1)
    except OSError as e:  # e.g. the output folder is read-only
        return _fail(f"{e.filename or ''}: {e.strerror or e}".lstrip(": "), 1)
    except KeyboardInterrupt:
        out = getattr(args, "output", None)
        hint = f"; finished rows are in {out}, continue with --resume" if out else ""
        return _fail("interrupted" + hint, 130)


if __name__ == "__main__":
    sys.exit(main())

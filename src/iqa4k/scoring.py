"""Batch scoring of image files: the engine behind ``iqa4k score``, the demo and benchmarks.

Images are paired with references, batched by size, scored, and written row by row (CSV or
JSON lines, :mod:`iqa4k.results_file`) so that ``resume`` can finish an interrupted run. A bad
image costs its own row (reason in ``error``), never the run.
"""

from __future__ import annotations

import collections
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from . import io as iqa_io
from .engine import ENGINES
from .errors import ImageReadError, InputError, IQAError, OptionError
from .evaluation import IMAGE_COLUMNS
from .metric import Metric, create_metric
from .registry import MetricSpec, get_spec
from .results_file import ERROR, IMAGE, REF, ResultsFile, read_csv

__all__ = [
    "ScoreRun",
    "metric_names",
    "read_manifest",
    "score_chunk",
    "score_files",
    "score_pairs",
]

# Receives each quality map: (image path, metric name, image [3,H,W], map [H,W]).
MapSink = Callable[[Path, str, torch.Tensor, torch.Tensor], None]


@dataclass
class ScoreRun:
    """What ``score`` did: every row of the output file and this run's failures."""

    out: Path
    metrics: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    resumed: int = 0


def score_files(
    dist: str | Path | Sequence[str | Path],
    metrics: str | Sequence[str],
    out: str | Path,
    *,
    ref: str | Path | None = None,
    **kwargs: Any,
) -> ScoreRun:
    """Score ``dist`` (files, folders, quoted globs, or one manifest CSV) with ``metrics`` into
    ``out``, row by row. References of FR metrics are paired by file name from ``ref`` (a file
    or folder) unless the manifest has a ``ref`` column; the other keywords are those of
    :func:`score_pairs`.
    """
    names = metric_names(metrics)
    fr = any(get_spec(n).kind == "FR" for n in names)
    sources = [dist] if isinstance(dist, (str, Path)) else list(dist)
    if len(sources) == 1 and str(sources[0]).lower().endswith(".csv"):
        return score_pairs(read_manifest(Path(sources[0]), ref, fr), names, out, **kwargs)
    images = iqa_io.list_images(sources)
    if not images:
        raise InputError(
            "no images found in "
            + ", ".join(str(s) for s in sources)
            + " (folders are read without their subfolders: name those too, or quote a glob"
            " such as 'photos/**/*.jpg')"
        )
    return score_pairs(_pairs(images, ref, fr), names, out, **kwargs)


def read_manifest(
    path: Path, ref: str | Path | None, fr: bool
) -> list[tuple[Path, Path | None, str]]:
    """The pairs a manifest CSV lists: an ``image`` column and, optionally, a ``ref`` column
    (else references come from ``ref`` by name); relative paths are from the CSV's folder."""
    if not path.is_file():
        raise InputError(f"{path}: no such manifest file")
    header, rows = read_csv(path, sniff=True)
    column = next((c for c in IMAGE_COLUMNS if c in header), None)
    if column is None:
        raise InputError(
            f"{path}: a manifest needs an image column ({', '.join(IMAGE_COLUMNS)}); "
            f"its columns: {', '.join(header)}"
        )
    here = path.parent
    rows = [r for r in rows if (r.get(column) or "").strip()]
    if not rows:
        raise InputError(f"{path} lists no image")
    images = [here / r[column].strip() for r in rows]
    if REF not in header:
        return _pairs(images, ref, fr)
    refs = [here / r[REF].strip() if (r.get(REF) or "").strip() else None for r in rows]
    why = "no reference in the manifest's ref column"
    return [(d, r, why if fr and r is None else "") for d, r in zip(images, refs, strict=True)]


def score_pairs(
    pairs: Sequence[tuple[Path, Path | None, str]],
    metrics: str | Sequence[str],
    out: str | Path,
    *,
    options: Mapping[str, Any] | None = None,
    device: str | None = None,
    batch_size: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_map: MapSink | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    gpus_per_worker: float = 0.0,
    fmt: str | None = None,
) -> ScoreRun:
    """Score ``(image, reference or None, why it has no reference)`` triples into ``out``
    (a file: CSV, or JSON lines for ``.jsonl`` or ``fmt="jsonl"``; ``"-"``: standard output).

    Rows are flushed as they are computed, so an interrupted run keeps its work and ``resume``
    finishes it. Unreadable or mismatched images get a row with the reason in ``error``.
    With ``on_map``, metrics that have quality maps (deep crop-based models) also hand each
    image's map to ``on_map(path, metric, image, map)``, from the same forward passes.
    ``engine="ray"`` scores on ``workers`` Ray actors (a local runtime, or the cluster at
    ``address``; ``gpus_per_worker`` for GPUs) with the same rows as the local engine.
    """
    if batch_size < 1:
        raise OptionError(f"batch size must be >= 1, got {batch_size}")
    if engine not in ENGINES:
        raise OptionError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    target = ResultsFile(out, fmt)
    iqa_io.pixel_limit()  # a bad IQA4K_MAX_PIXELS is one error now, not one per image
    names = metric_names(metrics)
    specs = [get_spec(n) for n in names]
    per_metric = _split_options(specs, options or {})
    # Built here for both engines: a wrong option or a missing file fails before any work.
    models = {s.name: create_metric(s.name, device=device, **per_metric[s.name]) for s in specs}
    if on_map is not None and not any(m.info.has_maps for m in models.values()):
        raise OptionError("none of " + ", ".join(names) + " has quality maps")
    if engine == "ray":
        if on_map is not None:
            raise OptionError("quality maps (--maps) are written by the local engine only")
        from .engine.ray_engine import ray_row_batches

        def produce(todo):
            return ray_row_batches(
                todo,
                names,
                per_metric,
                score_chunk,
                device=device,
                batch_size=batch_size,
                address=address,
                workers=workers,
                gpus_per_worker=gpus_per_worker,
            )
    else:

        def produce(todo):
            return _batches(todo, models, batch_size, on_map)

    pairs = _unique(pairs)
    with target.lock():
        options = {name: model.options for name, model in models.items()}
        return _score_into(target, pairs, names, produce, resume, overwrite, progress, options)


def score_chunk(
    chunk: Sequence[tuple[Path, Path | None, str]], models: Mapping[str, Metric], batch_size: int
) -> list[dict[str, str]]:
    """The rows of a chunk of pairs, in order: what every engine runs on its images."""
    return [row for rows in _batches(chunk, models, batch_size) for row in rows]


def _score_into(
    target: ResultsFile,
    pairs: Sequence[tuple[Path, Path | None, str]],
    names: list[str],
    produce: Callable,
    resume: bool,
    overwrite: bool,
    progress: bool,
    options: Mapping[str, Mapping[str, Any]],
) -> ScoreRun:
    """score_pairs once the output is ours: keep finished rows, score the others."""
    columns, kept = target.prepare([IMAGE, REF, *names, ERROR], names, resume, overwrite, options)
    refs = {_key(dist): "" if ref is None else _key(ref) for dist, ref, _ in pairs}
    for r in kept:  # a finished row stands only for the same pairing
        key = _key(r[IMAGE])
        if key in refs and (_key(r[REF]) if r[REF] else "") != refs[key]:
            raise OptionError(
                f"cannot resume {target.path}: {r[IMAGE]} was scored against "
                f"{r[REF] or 'no reference'}, this run pairs it with another one (--overwrite)"
            )
    done = {_key(r[IMAGE]) for r in kept}
    todo = [p for p in pairs if _key(p[0]) not in done]
    run = ScoreRun(out=target.path, metrics=names, rows=list(kept), resumed=len(pairs) - len(todo))
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
        with target.appender(columns) as write:
            for rows in produce(todo):
                write(rows)  # flushed: a killed run keeps every finished row
                run.rows.extend(rows)
                run.failures += [(r[IMAGE], r[ERROR]) for r in rows if r[ERROR]]
                bar.update(len(rows))
    finally:
        bar.close()
    return run


def _unique(pairs: Sequence[tuple[Path, Path | None, str]]) -> list[tuple[Path, Path | None, str]]:
    """Each image once, in first-seen order; a repeat is named on stderr."""
    seen: set[str] = set()
    out = []
    for pair in pairs:
        key = _key(pair[0])
        if key in seen:
            print(f"note: {pair[0]} is listed more than once; it is scored once", file=sys.stderr)
            continue
        seen.add(key)
        out.append(pair)
    return out


# ------------------------------------------------------------------------ metrics, options


def metric_names(metrics: str | Sequence[str]) -> list[str]:
    """Canonical names of ``metrics`` (comma-separated text or a list), without repeats."""
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


def _split_options(specs: Sequence[MetricSpec], options: Mapping[str, Any]) -> dict[str, dict]:
    """Give each metric the options it has; ``metric.option`` names one metric's option (e.g.
    ``maniqa.weights``). An option that no selected metric has is an error (a typo would
    otherwise be silently ignored), and so is the value range of tensor inputs: files are
    decoded to [0, 1] whatever their bit depth.
    """
    per_metric: dict[str, dict] = {s.name: {} for s in specs}
    for name, value in options.items():
        scope, _, key = name.rpartition(".")
        if any(key == s.range_option for s in specs):
            raise OptionError(
                f"{key} is the value range of tensor inputs; image files are decoded to [0, 1] "
                "whatever their bit depth, so it has no use here"
            )
        chosen = [s for s in specs if s.name == scope] if scope else specs
        if scope and not chosen:
            raise OptionError(f"option {name!r} names {scope!r}, which is not a selected metric")
        owners = [s for s in chosen if key in s.options]
        if not owners:
            known = sorted({o for s in specs for o in s.options})
            raise OptionError(
                f"no selected metric has option {key!r}; their options: {', '.join(known)}"
            )
        for s in owners:
            per_metric[s.name][key] = value
    return per_metric


# --------------------------------------------------------------------------------- pairing


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


# ------------------------------------------------------------------- the CSV file, resume


def _key(path: str | Path) -> str:
    # Resume compares files, not spellings: "a/./x.png" and "/abs/a/x.png" are the same image.
    return os.path.normcase(os.path.abspath(str(path)))


def _row(dist: Path, ref: Path | None, error: str = "") -> dict[str, str]:
    return {IMAGE: str(dist), REF: "" if ref is None else str(ref), ERROR: error}


# ---------------------------------------------------------------------- loading, batching


@dataclass
class _Item:
    dist: Path
    ref: Path | None
    x: torch.Tensor
    y: torch.Tensor | None
    no_ref: str = ""  # why the image has no usable reference: only FR metrics miss it


def _batchable(a: _Item, b: _Item) -> bool:
    """Whether ``b`` may join ``a``'s batch: the same shapes and dtypes, image and reference."""
    kind = [(t.shape, t.dtype) if t is not None else None for t in (a.x, a.y, b.x, b.y)]
    return kind[:2] == kind[2:]


def _size(t: torch.Tensor) -> str:
    return f"{t.shape[-1]}x{t.shape[-2]}"


class _Loader:
    """Decodes images; keeps the last references, since many distorted images share one.
    Thread-safe: the decode threads of :func:`_decoded` share one loader."""

    _KEPT = 4  # references held at once (decode threads may work on neighbouring groups)

    def __init__(self, no_reference_metrics: bool = True) -> None:
        self._refs: dict[Path, torch.Tensor | IQAError] = {}
        self._lock = threading.Lock()
        # An image without a reference is decoded only when some metric can score it alone.
        self._alone = no_reference_metrics

    def ref(self, path: Path) -> torch.Tensor:
        with self._lock:  # one decode per reference, even when two threads ask at once
            if path not in self._refs:
                try:
                    self._refs[path] = iqa_io.load_image(path).contiguous()
                except IQAError as e:  # remember the failure: do not decode a bad file 1000x
                    self._refs[path] = e
                while len(self._refs) > self._KEPT:
                    del self._refs[next(iter(self._refs))]  # the oldest
            ref = self._refs[path]
        if isinstance(ref, IQAError):
            raise InputError(f"reference {ref}")
        return ref

    def item(self, dist: Path, ref: Path | None, unpaired: str = "") -> _Item:
        if unpaired and not self._alone:
            raise InputError(unpaired)
        # load_image may return a channels-last view; metrics run several times faster on
        # contiguous memory, and torch.stack would copy anyway.
        x = iqa_io.load_image(dist).contiguous()
        if unpaired:
            return _Item(dist, None, x, None, unpaired)
        try:
            y = self.ref(ref) if ref is not None else None
        except InputError as e:
            return _Item(dist, ref, x, None, str(e))
        if y is not None and x.shape != y.shape:
            why = f"size {_size(x)} differs from its reference {ref} ({_size(y)})"
            return _Item(dist, ref, x, None, why)
        return _Item(dist, ref, x, y)


_DECODERS = 2  # decode threads: Pillow and NumPy release the GIL while they work
_AHEAD = 2  # images decoded ahead of the one being scored (memory: that many images more)


def _decoded(
    pairs: Sequence[tuple[Path, Path | None, str]], ahead: int, loader: _Loader
) -> Iterator[tuple[tuple[Path, Path | None, str], _Item | IQAError]]:
    """Each pair with its decoded item (or why it has none), in input order, decoded by a
    few threads ``ahead`` of the consumer, so decoding overlaps scoring."""
    queue: collections.deque = collections.deque()
    todo = iter(pairs)

    def submit(pool: ThreadPoolExecutor) -> None:
        pair = next(todo, None)
        if pair is not None:
            queue.append((pair, pool.submit(loader.item, *pair)))

    with ThreadPoolExecutor(_DECODERS, thread_name_prefix="iqa4k-decode") as pool:
        for _ in range(ahead + 1):
            submit(pool)
        while queue:
            pair, future = queue.popleft()
            submit(pool)
            try:
                yield pair, future.result()
            except IQAError as e:
                yield pair, e


def _reason(e: Exception, path: Path | None = None) -> str:
    """The message of ``e``, without the path when it is the row's own image (no repeats)."""
    if isinstance(e, ImageReadError) and path is not None and Path(e.path) == path:
        return e.reason
    return str(e)


def _batches(
    pairs: Sequence[tuple[Path, Path | None, str]],
    models: Mapping[str, Metric],
    batch_size: int,
    on_map: MapSink | None = None,
) -> Iterator[list[dict[str, str]]]:
    """Rows in input order, a batch at a time. Only consecutive images of the same size and
    precision share a batch (a float64 image would promote its neighbours): that keeps the
    file order and holds one batch of decoded images in memory, plus the few decoded ahead
    while it is scored.
    """
    pending: list[_Item] = []
    loader = _Loader(any(m.info.kind == "NR" for m in models.values()))
    for (dist, ref, _), item in _decoded(pairs, max(_AHEAD, batch_size), loader):
        if isinstance(item, IQAError):
            if pending:  # flush first: rows stay in input order
                yield _score_batch(pending, models, on_map)
                pending = []
            yield [_row(dist, ref, _reason(item, dist))]
            continue
        if pending and (len(pending) >= batch_size or not _batchable(pending[0], item)):
            yield _score_batch(pending, models, on_map)
            pending = []
        pending.append(item)
    if pending:
        yield _score_batch(pending, models, on_map)


# ----------------------------------------------------------------------------- scoring


# Errors that belong to one image (or one batch) and must not stop a long run. A batch too big
# for the GPU is retried image by image like any other batch failure.
_ITEM_ERRORS = (IQAError, torch.cuda.OutOfMemoryError)


def _describe_error(e: Exception) -> str:
    if isinstance(e, torch.cuda.OutOfMemoryError):
        return "out of GPU memory (try a smaller --batch-size or --device cpu)"
    return str(e)


def _score_one(
    model: Metric,
    x: torch.Tensor,
    y: torch.Tensor | None,
    paths: Sequence[Path] = (),
    on_map: MapSink | None = None,
) -> list[float]:
    inputs = (x, y) if model.info.kind == "FR" else (x,)
    with torch.inference_mode():
        if on_map is None or not model.info.has_maps:
            s = model(*inputs)
        else:
            s, maps = model.with_maps(*inputs)
            for path, image, quality in zip(paths, x, maps, strict=True):
                on_map(path, model.info.name, image, quality)
    return [float(v) for v in s.detach().cpu().tolist()]


def _put(row: dict[str, str], errors: list[str], metric: str, value: float) -> None:
    """A score into its cell; NaN is never written as a result but becomes the row's error."""
    if math.isnan(value):
        errors.append(f"{metric}: the score is NaN (undefined for this image)")
    else:
        row[metric] = repr(value)


def _score_batch(
    items: list[_Item], models: Mapping[str, Metric], on_map: MapSink | None = None
) -> list[dict[str, str]]:
    """One row per item; a metric failing on the batch is retried image by image, so one bad
    image costs only its own cell and the numbers never depend on the batch size. Items
    without a usable reference (a batch's items all have one or none) get their no-reference
    metrics' scores and the reason in place of the others'.
    """
    rows = [_row(it.dist, it.ref) for it in items]
    errors: list[list[str]] = [[it.no_ref] if it.no_ref else [] for it in items]
    x = torch.stack([it.x for it in items])
    y = torch.stack([it.y for it in items]) if items[0].y is not None else None
    for name, model in models.items():
        if model.info.kind == "FR" and y is None:
            continue
        try:
            paths = [it.dist for it in items]
            values = _score_one(model, x, y, paths, on_map)
            for row, errs, v in zip(rows, errors, values, strict=True):
                _put(row, errs, name, v)
            continue
        except _ITEM_ERRORS as e:
            if len(items) == 1:
                errors[0].append(f"{name}: {_describe_error(e)}")
                continue
        for i, it in enumerate(items):
            try:
                yi = None if it.y is None else it.y[None]
                value = _score_one(model, it.x[None], yi, [it.dist], on_map)[0]
                _put(rows[i], errors[i], name, value)
            except _ITEM_ERRORS as e:
                errors[i].append(f"{name}: {_describe_error(e)}")
    for row, errs in zip(rows, errors, strict=True):
        row[ERROR] = "; ".join(errs)
    return rows

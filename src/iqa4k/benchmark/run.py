"""``iqa4k benchmark``: score a dataset with several metrics, evaluate them against its MOS,
test each against the best, and hand everything to the writers (files, plots, the page).

Scores are kept per metric in ``scores/<metric>.csv`` (one row per image, flushed as it is
computed), so a rerun reuses every finished row, a metric added later is the only one scored,
and an interrupted run resumes. ``scores/<metric>.json`` records the options a file was scored
with: a metric asked again with other weights is scored again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.dataset import Dataset
from ..errors import IQAError, OptionError
from ..evaluation import MetricEvaluation, best_metric, evaluate_columns, versus_best
from ..registry import get_spec
from ..results_file import IMAGE
from ..scoring import metric_names, score_pairs
from ..stats import Comparison

__all__ = ["Benchmark", "unavailable", "run_benchmark"]


@dataclass
class Benchmark:
    """Everything a benchmark found: scores aligned with the dataset's samples (NaN where an
    image failed), one evaluation per scored metric, tests against the best, and skips."""

    dataset: Dataset
    out: Path
    mos_higher_is_better: bool
    mos_direction: str  # where the MOS direction came from
    fit: str
    n_boot: int
    scores: dict[str, list[float]] = field(default_factory=dict)
    evaluations: list[MetricEvaluation] = field(default_factory=list)
    versus_best: dict[str, dict[str, Comparison]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # metric: why it was not scored
    failures: dict[str, int] = field(default_factory=dict)  # metric: images it could not score
    weights: dict[str, str] = field(default_factory=dict)  # metric: checkpoint it scored with
    costs: list[dict[str, Any]] = field(default_factory=list)
    crossval: list[dict[str, Any]] = field(default_factory=list)

    @property
    def mos(self) -> list[float]:
        return [s.mos for s in self.dataset.samples]

    @property
    def best(self) -> str | None:
        """The evaluated metric with the highest SRCC, which the others are tested against."""
        return best_metric(self.evaluations)


def unavailable(metric: str, dataset: Dataset, weights: str = "") -> str:
    """Why ``metric`` cannot run on ``dataset`` here without a download, or "" when it can."""
    from ..models.loading import missing_weights

    if get_spec(metric).kind == "FR" and not dataset.full_reference:
        return "full-reference, and the dataset has no reference images"
    if weights:
        return "" if Path(weights).is_file() else f"no such checkpoint: {weights}"
    return missing_weights(get_spec(metric))


def run_benchmark(
    dataset: Dataset,
    metrics: str | Sequence[str],
    out: str | Path,
    *,
    weights: Mapping[str, str] | None = None,
    mos_direction: str | None = None,
    fit: str = "5pl",
    n_boot: int = 1000,
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Benchmark:
    """Score ``dataset`` with ``metrics`` into ``out/scores/`` (reusing finished rows),
    evaluate each against the MOS and test each against the best metric.

    ``weights`` maps a deep metric to a checkpoint (ours or an official one); ``mos_direction``
    (``higher``/``lower``) overrides the dataset adapter's.
    """
    names = metric_names(metrics)
    weights = {get_spec(k).name: v for k, v in (weights or {}).items()}
    stray = sorted(set(weights) - set(names))
    if stray:
        raise OptionError(f"--weights names {', '.join(stray)}, which -m does not select")
    if mos_direction not in (None, "higher", "lower"):
        raise OptionError(f"the MOS direction is higher or lower, got {mos_direction!r}")
    higher = dataset.higher_is_better if mos_direction is None else mos_direction == "higher"
    why = "given" if mos_direction else f"from the {dataset.adapter} adapter"
    bench = Benchmark(dataset, Path(out), higher, why, fit, n_boot)

    for name in names:
        reason = unavailable(name, dataset, weights.get(name, ""))
        if reason:
            bench.skipped[name] = reason
            log(f"note: {name} skipped: {reason}")
            continue
        try:
            bench.scores[name] = _scores(bench, name, weights.get(name, ""), device, progress)
        except IQAError as e:  # a checkpoint that does not load, a parameter file missing
            bench.skipped[name] = str(e).splitlines()[0]
            log(f"note: {name} skipped: {bench.skipped[name]}")
            continue
        bench.weights[name] = weights.get(name, "")
        bench.failures[name] = sum(1 for v in bench.scores[name] if math.isnan(v))
    if not bench.scores:
        reasons = "; ".join(f"{m}: {why}" for m, why in bench.skipped.items())
        raise OptionError(f"no selected metric can run on {dataset.spec}: {reasons}")

    directions = {m: get_spec(m).higher_is_better for m in bench.scores}
    bench.evaluations = evaluate_columns(
        bench.scores,
        bench.mos,
        directions=directions,
        mos_higher_is_better=higher,
        fit=fit,
        n_boot=n_boot,
        images=[str(s.image) for s in dataset.samples],
    )
    bench.versus_best = versus_best(bench.evaluations, mos_higher_is_better=higher, n_boot=n_boot)
    return bench


def _scores(
    bench: Benchmark, metric: str, weights: str, device: str | None, progress: bool
) -> list[float]:
    """The metric's score of every sample (NaN when it failed), scored or read back."""
    folder = bench.out / "scores"
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, record = folder / f"{metric}.csv", folder / f"{metric}.json"
    how = {"metric": metric, "weights": str(Path(weights).resolve()) if weights else ""}
    same = record.is_file() and json.loads(record.read_text()) == how
    record.write_text(json.dumps(how))  # first: an interrupted run resumes its own rows
    pairs = [(s.image, s.ref, "") for s in bench.dataset.samples]
    run = score_pairs(
        pairs,
        [metric],
        csv_path,
        options={"weights": weights} if weights else None,
        device=device,
        resume=same,
        overwrite=not same,
        progress=progress,
    )
    by_image = {}
    for row in run.rows:  # the kept rows and the new ones: the whole file, already in memory
        cell = row.get(metric) or ""  # none or empty: the image failed (reason in the CSV)
        by_image[row[IMAGE]] = float(cell) if cell else math.nan
    return [by_image.get(str(s.image), math.nan) for s in bench.dataset.samples]

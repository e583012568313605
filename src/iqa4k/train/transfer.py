"""Cross-dataset testing: a checkpoint trained on one dataset scored on another."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..data.dataset import Dataset
from ..errors import IQAError, OptionError
from ..models.checkpoint import read_meta
from .trainer import STATE, figures, naming


def score_checkpoint(weights: str | Path, dataset: Dataset, out: str | Path) -> dict[str, Any]:
    """Score every image of ``dataset`` with the metric of our checkpoint ``weights`` (its
    official test protocol); write ``out/predictions.csv`` and ``out/figures.json``. A
    checkpoint tested on the dataset it was trained on gets a ``note`` saying so."""
    from ..metric import create_metric
    from ..stats import orientation

    meta = read_meta(weights)
    metric = meta.get("metric")
    if not metric:
        raise IQAError(f"{weights} is not an iqa4k checkpoint (no metric in its metadata)")
    out = Path(out)
    if (out / STATE).exists() or (out / "result.json").exists():
        raise OptionError(f"{out} holds a training run; write the test into a new --out")
    m = create_metric(metric, weights=str(weights))
    full_reference = m.info.kind == "FR"
    if full_reference and not dataset.full_reference:
        raise OptionError(f"{metric} is full-reference; {dataset.spec} has no references")
    sign = orientation(m.info.higher_is_better, dataset.higher_is_better)
    out.mkdir(parents=True, exist_ok=True)
    pred, rows = [], []
    for s in dataset.samples:
        with naming(s):
            value = (m(str(s.image), str(s.ref)) if full_reference else m(str(s.image))).item()
        pred.append(sign * value)
        rows.append((s.image.as_posix(), s.mos, repr(value)))
    with open(out / "predictions.csv", "w", newline="") as f:
        csv.writer(f).writerows([("image", "mos", metric), *rows])
    doc = {
        "weights": str(weights),
        "metric": metric,
        "trained_on": meta.get("dataset", ""),
        "dataset": dataset.spec,
        **figures(pred, [s.mos for s in dataset.samples]),
    }
    if doc["trained_on"] == dataset.spec:
        doc["note"] = "trained on this dataset: these figures include its training images"
    (out / "figures.json").write_text(json.dumps(doc, indent=1))
    return doc

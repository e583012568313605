"""Cross-dataset testing: a checkpoint trained on one dataset scored on another."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..data.dataset import Dataset
from ..errors import IQAError
from ..models.checkpoint import read_checkpoint
from .trainer import figures


def score_checkpoint(weights: str | Path, dataset: Dataset, out: str | Path) -> dict[str, Any]:
    """Score every image of ``dataset`` with the metric of our checkpoint ``weights`` (its
    official test protocol); write ``out/predictions.csv`` and ``out/figures.json``."""
    from ..metric import create_metric
    from ..stats import orientation

    _, meta = read_checkpoint(weights)
    metric = meta.get("metric")
    if not metric:
        raise IQAError(f"{weights} is not an iqa4k checkpoint (no metric in its metadata)")
    m = create_metric(metric, weights=str(weights))
    sign = orientation(m.info.higher_is_better, dataset.higher_is_better)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pred = []
    with open(out / "predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("image", "mos", metric))
        for s in dataset.samples:
            value = (m(str(s.image)) if s.ref is None else m(str(s.image), str(s.ref))).item()
            pred.append(sign * value)
            writer.writerow((s.image.as_posix(), s.mos, repr(value)))
    doc = {
        "weights": str(weights),
        "metric": metric,
        "trained_on": meta.get("dataset", ""),
        "dataset": dataset.spec,
        **figures(pred, [s.mos for s in dataset.samples]),
    }
    (out / "figures.json").write_text(json.dumps(doc, indent=1))
    return doc

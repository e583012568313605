"""Cross-validation runs beside the benchmark's metrics on the same test folds.

An ``iqa4k crossval`` folder holds ``summary.json`` (the test figures of each fold's model
selected on validation) and ``splits.json`` (which images each fold tested on). Every metric of
the benchmark is evaluated on those same test folds, so the rows compare like with like; a
metric scored with a checkpoint is left out (it may have been trained on those test images).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..data.dataset import Dataset
from ..data.splits import Split, load_splits
from ..errors import InputError
from ..registry import get_spec
from ..stats import orientation
from ..train.crossval import FIGURES, mean_std
from ..train.trainer import figures
from .run import Benchmark

__all__ = ["check_folder", "crossval_tables"]


def check_folder(folder: Path, dataset: Dataset) -> tuple[dict[str, Any], list[Split]]:
    """The summary and the splits (as indices into ``dataset``) of a crossval folder, or a
    clear error: a file missing, or an image the dataset does not have."""
    files = folder / "summary.json", folder / "splits.json"
    for p in files:
        if not p.is_file():
            raise InputError(f"{folder} is not an iqa4k crossval folder: {p.name} is missing")
    return json.loads(files[0].read_text()), load_splits(files[1], dataset)


def crossval_tables(bench: Benchmark, folders: list[str | Path]) -> list[dict[str, Any]]:
    """One table per folder: ``{"folder", "preset", "folds", "rows"}``, each row ``{"name",
    "trained", "folds": [{"fold", "srcc", ...}], "mean", "std"}``, the trained model first."""
    tables = []
    for folder in map(Path, folders):
        summary, splits = check_folder(folder, bench.dataset)
        name = summary.get("preset") or summary.get("config", {}).get("model", "trained model")
        rows = [
            {
                "name": name,
                "trained": True,
                "folds": [
                    {k: f[k] for k in ("fold", *FIGURES) if k in f} for f in summary["folds"]
                ],
                "mean": summary["mean"],
                "std": summary["std"],
            }
        ]
        for metric, values in bench.scores.items():
            if bench.weights.get(metric):
                continue  # a checkpoint may have been trained on these very test folds
            sign = orientation(get_spec(metric).higher_is_better, bench.mos_higher_is_better)
            folds = []
            for i, split in enumerate(splits):
                kept = [j for j in split.test if math.isfinite(values[j])]
                fig = figures([sign * values[j] for j in kept], [bench.mos[j] for j in kept])
                folds.append({"fold": i, **{k: fig[k] for k in FIGURES if k in fig}})
            rows.append({"name": metric, "trained": False, "folds": folds, **mean_std(folds)})
        tables.append({"folder": str(folder), "preset": name, "folds": len(splits), "rows": rows})
    return tables

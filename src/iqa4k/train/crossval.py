"""k-fold cross-validation of a recipe, with classical metrics scored on the same folds.

Each fold trains on the other folds' content groups less a validation part, selects its epoch
on that validation part (never on the test fold) and reports the test fold's figures of the
selected model and of the last epoch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..data.dataset import Dataset
from ..data.splits import Split, kfold, load_splits, save_splits
from ..errors import OptionError
from .config import TrainConfig
from .trainer import _world, figures, train

if TYPE_CHECKING:
    from ..metric import Metric

FIGURES = ("srcc", "plcc", "krcc", "rmse")


def crossval(
    config: TrainConfig,
    dataset: Dataset,
    folds: int,
    out: str | Path,
    *,
    preset: str = "",
    compare: Sequence[str] = (),
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every fold into ``out/fold<i>`` and write ``out/summary.json`` and
    ``out/splits.json`` (reused when present, so a rerun repeats the same folds and resumes
    the unfinished ones). ``compare`` names metrics scored on the same test folds."""
    out = Path(out)
    rank, _ = _world()
    compared = {m: _comparable(m, dataset) for m in compare}  # before hours of training
    how = {"folds": folds, "seed": config.seed, "val_fraction": config.val_fraction}
    path = out / "splits.json"
    if path.is_file():
        splits = load_splits(path, dataset, expect=how)
    else:
        splits = kfold(dataset.groups(), folds, config.seed, config.val_fraction)
        if rank == 0:
            save_splits(path, dataset, splits, **how)
    rows, last_rows = [], []
    for i, split in enumerate(splits):
        if rank == 0:
            log(
                f"fold {i + 1}/{len(splits)}: {len(split.train)} train, "
                f"{len(split.val)} validation, {len(split.test)} test images"
            )
        result = train(
            config, dataset, split, out / split.name, device=device, progress=progress, log=log
        )
        common = {"fold": i, "n_train": len(split.train), "n_test": len(split.test)}
        rows.append({**common, **_pick(result.test["best"]), "epoch": result.best_epoch})
        last_rows.append({**common, **_pick(result.test["last"]), "epoch": result.epochs})
    summary: dict[str, Any] = {
        "preset": preset,
        "config": config.to_dict(),
        "dataset": dataset.spec,
        "selection": "best validation SRCC (validation carved from the training folds)",
        "threads": torch.get_num_threads(),  # the figures repeat exactly with the same count
        "folds": rows,
        **mean_std(rows),
        "last_epoch": {"folds": last_rows, **mean_std(last_rows)},
    }
    if compared:
        summary["compare"] = {name: _compare(m, dataset, splits) for name, m in compared.items()}
    if rank == 0:
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _pick(values: dict[str, float]) -> dict[str, float]:
    return {k: values[k] for k in FIGURES if k in values}


def mean_std(rows: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation (ddof 1) of each figure over the folds."""
    mean, std = {}, {}
    for k in FIGURES:
        values = np.array([r[k] for r in rows if k in r], dtype=float)
        if values.size:
            mean[k] = float(values.mean())
            std[k] = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return {"mean": mean, "std": std}


def _comparable(name: str, dataset: Dataset) -> Metric:
    """The metric ``name``, built (its parameter file found), if it can score ``dataset``."""
    from ..metric import create_metric

    m = create_metric(name)
    if m.info.kind == "FR" and not dataset.full_reference:
        raise OptionError(f"--compare {name}: full-reference, and {dataset.spec} has no references")
    return m


def _compare(m: Metric, dataset: Dataset, splits: Sequence[Split]) -> dict[str, Any]:
    """A metric's figures on each test fold, its scores oriented like the dataset's (so that
    a good metric has positive SRCC whatever the two directions)."""
    from ..stats import orientation

    sign = orientation(m.info.higher_is_better, dataset.higher_is_better)
    scores = {}
    for split in splits:
        for i in split.test:
            s = dataset.samples[i]
            value = m(str(s.image)) if s.ref is None else m(str(s.image), str(s.ref))
            scores[i] = sign * value.item()
    rows = []
    for n, split in enumerate(splits):
        fig = figures([scores[i] for i in split.test], [dataset.samples[i].mos for i in split.test])
        rows.append({"fold": n, **_pick(fig)})
    return {"folds": rows, **mean_std(rows)}

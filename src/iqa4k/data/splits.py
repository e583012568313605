"""Content-disjoint splits: seeded k-fold, a validation part carved from the training folds,
the official splits, and ``splits.json`` so that a run can be repeated exactly.

A content group (a reference image, a scene) is never on two sides of a split: the images of
one reference differ only by their distortion, and testing on them after training on their
siblings overstates a model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OptionError
from .dataset import Dataset

_PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Sample indices of one fold (or the official split): train, validation, test."""

    name: str
    train: list[int]
    val: list[int]
    test: list[int]


def kfold(
    groups: Sequence[str], k: int = 5, seed: int = 0, val_fraction: float = 0.1
) -> list[Split]:
    """``k`` content-disjoint folds: fold ``i`` tests on part ``i`` and trains on the rest,
    less a validation part of about ``val_fraction`` of the training groups (at least one).

    Groups are shuffled with ``seed`` and dealt largest first to the part with the fewest
    images, so parts are balanced in images, not only in groups.
    """
    unique = sorted(set(groups))
    if k < 2:
        raise OptionError(f"folds must be at least 2, got {k}")
    if k > len(unique):
        raise OptionError(
            f"{k} folds need at least {k} content groups; the dataset has {len(unique)}"
        )
    rng = np.random.default_rng(seed)
    members: dict[str, list[int]] = {g: [] for g in unique}
    for i, g in enumerate(groups):
        members[g].append(i)
    order = [unique[i] for i in rng.permutation(len(unique))]
    order.sort(key=lambda g: -len(members[g]))  # stable: ties keep the seeded order
    parts: list[list[str]] = [[] for _ in range(k)]
    sizes = [0] * k
    for g in order:
        smallest = int(np.argmin(sizes))
        parts[smallest].append(g)
        sizes[smallest] += len(members[g])
    splits = []
    for i in range(k):
        train_groups = [g for j, part in enumerate(parts) if j != i for g in part]
        val_groups = _validation_groups(train_groups, val_fraction, rng)
        splits.append(
            Split(
                name=f"fold{i}",
                train=_indices(members, [g for g in train_groups if g not in val_groups]),
                val=_indices(members, sorted(val_groups)),
                test=_indices(members, parts[i]),
            )
        )
    return splits


def train_on_all(groups: Sequence[str], seed: int = 0, val_fraction: float = 0.1) -> Split:
    """Every image trains except a validation part of about ``val_fraction`` of the groups;
    nothing is tested (for a final model after cross-validation)."""
    unique = sorted(set(groups))
    rng = np.random.default_rng(seed)
    val_groups = _validation_groups(
        [unique[i] for i in rng.permutation(len(unique))], val_fraction, rng
    )
    train = [i for i, g in enumerate(groups) if g not in val_groups]
    return Split("all", train, [i for i, g in enumerate(groups) if g in val_groups], [])


def _validation_groups(train: list[str], fraction: float, rng: np.random.Generator) -> set[str]:
    if fraction <= 0 or len(train) < 2:
        return set()
    n = min(len(train) - 1, max(1, round(fraction * len(train))))
    return {train[i] for i in rng.choice(len(train), size=n, replace=False)}


def _indices(members: dict[str, list[int]], groups: Sequence[str]) -> list[int]:
    return sorted(i for g in groups for i in members[g])


def official(dataset: Dataset) -> Split:
    """The dataset's published split (train / val / test), or an error if it has none."""
    parts = dataset.official_splits()
    if not parts:
        raise OptionError(
            f"{dataset.spec} has no official split: train on a k-fold part (--split fold0) "
            "or on everything (--split all), or cross-validate (iqa4k crossval)"
        )
    return Split("official", parts.get("train", []), parts.get("val", []), parts.get("test", []))


def save_splits(path: str | Path, dataset: Dataset, splits: Sequence[Split], **how) -> Path:
    """Write ``splits.json``: the dataset, how the splits were made, and each split's images
    by name (relative to the root), so the run can be repeated on another machine."""
    names = [dataset.key(s) for s in dataset.samples]
    doc = {
        "dataset": dataset.spec,
        **how,
        "splits": [
            {"name": s.name, **{part: [names[i] for i in getattr(s, part)] for part in _PARTS}}
            for s in splits
        ],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))
    return path


def load_splits(
    path: str | Path, dataset: Dataset, expect: Mapping[str, Any] | None = None
) -> list[Split]:
    """The splits of a ``splits.json`` as indices into ``dataset`` (every name must exist);
    ``expect``: how they must have been made (an error names what differs)."""
    doc = json.loads(Path(path).read_text())
    differ = {k: (doc.get(k), v) for k, v in (expect or {}).items() if doc.get(k) != v}
    if differ:
        shown = ", ".join(f"{k}={was!r} (now {now!r})" for k, (was, now) in differ.items())
        raise OptionError(f"{path} was made with {shown}; use another output folder")
    index = {dataset.key(s): i for i, s in enumerate(dataset.samples)}
    splits = []
    for entry in doc["splits"]:
        parts = {}
        for part in _PARTS:
            unknown = [n for n in entry[part] if n not in index]
            if unknown:
                raise OptionError(
                    f"{path}: {len(unknown)} image(s) not in {dataset.spec}, e.g. {unknown[0]}"
                )
            parts[part] = [index[n] for n in entry[part]]
        splits.append(Split(entry["name"], **parts))
    return splits

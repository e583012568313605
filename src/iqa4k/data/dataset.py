"""A human-scored image set as iqa4k sees it: samples, the MOS direction and range, content
groups, official splits, and one report of everything wrong with the files on disk."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import IQAError


class DatasetError(IQAError):
    """A dataset whose files or labels are wrong; the message lists every problem found."""


@dataclass(frozen=True)
class Sample:
    """One scored image: its file, its human score, its reference (FR sets) and its content
    group (the reference or scene: a split never puts one group on both sides)."""

    image: Path
    mos: float
    group: str
    ref: Path | None = None
    split: str = ""  # the official split ("train", "val", "test"), "" when there is none


@dataclass(frozen=True)
class Dataset:
    """The samples of a dataset read from ``root`` by adapter ``adapter``."""

    adapter: str
    root: Path
    samples: list[Sample]
    higher_is_better: bool  # False for DMOS-style labels
    score_range: tuple[float, float]  # the label scale, as published
    full_reference: bool = False
    notes: list[str] = field(default_factory=list)  # what the adapter assumed or skipped

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def spec(self) -> str:
        """``NAME:ROOT``, as given to ``--dataset``."""
        return f"{self.adapter}:{self.root}"

    def key(self, sample: Sample) -> str:
        """A sample's name relative to the root (how splits.json records it)."""
        try:
            return sample.image.relative_to(self.root).as_posix()
        except ValueError:
            return sample.image.as_posix()

    def groups(self) -> list[str]:
        return [s.group for s in self.samples]

    def official_splits(self) -> dict[str, list[int]]:
        """Sample indices per official split name (empty when the dataset has none)."""
        out: dict[str, list[int]] = {}
        for i, sample in enumerate(self.samples):
            if sample.split:
                out.setdefault(sample.split, []).append(i)
        return out


class Problems:
    """Collects what is wrong with a dataset, then raises them all at once."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def raise_if_any(self, shown: int = 20) -> None:
        if not self.items:
            return
        lines = [f"{self.what}: {len(self.items)} problem(s)"]
        lines += [f"  - {item}" for item in self.items[:shown]]
        if len(self.items) > shown:
            lines.append(f"  ... and {len(self.items) - shown} more")
        raise DatasetError("\n".join(lines))


def parse_score(text: str, where: str, problems: Problems) -> float | None:
    """A finite number from a label file, or a problem naming the file and line."""
    try:
        value = float(text)
    except ValueError:
        problems.add(f"{where}: score {text.strip()!r} is not a number")
        return None
    if not math.isfinite(value):
        problems.add(f"{where}: score {text.strip()!r} is not finite")
        return None
    return value


def check_samples(samples: Sequence[Sample], problems: Problems) -> None:
    """Missing images and references, and images listed more than once."""
    missing_refs: set[Path] = set()
    for sample in samples:
        if not sample.image.is_file():
            problems.add(f"{sample.image}: listed but missing")
        if sample.ref is not None and not sample.ref.is_file() and sample.ref not in missing_refs:
            missing_refs.add(sample.ref)
            problems.add(f"{sample.ref}: reference listed but missing")
    counts = Counter(s.image for s in samples)
    for image, n in counts.items():
        if n > 1:
            problems.add(f"{image}: listed {n} times")
    if not samples:
        problems.add("no images listed")

"""Human-scored datasets: adapters for real layouts, content-disjoint splits, MOS scaling.

``open_dataset("NAME:ROOT")`` reads a dataset (``iqa4k datasets`` lists the adapters and the
files each expects); :mod:`.splits` makes the folds; :mod:`.scaling` fits MOS normalisation
on a training part only.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import OptionError
from .adapters import ADAPTERS, Adapter
from .dataset import Dataset, DatasetError, Problems, Sample

__all__ = ["ADAPTERS", "Adapter", "Dataset", "DatasetError", "Sample", "open_dataset"]


def open_dataset(spec: str) -> Dataset:
    """The dataset ``NAME:ROOT`` (e.g. ``csv:labels.csv``, ``koniq:/data/koniq10k``), checked:
    every problem with its files is reported at once as a :class:`DatasetError`."""
    name, sep, root = spec.partition(":")
    if not sep or not root:
        raise OptionError(
            f"dataset must be NAME:ROOT, got {spec!r}; adapters: {', '.join(ADAPTERS)}"
        )
    adapter = ADAPTERS.get(name.lower())
    if adapter is None:
        raise OptionError(f"unknown dataset adapter {name!r}; adapters: {', '.join(ADAPTERS)}")
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetError(f"{spec}: {path} does not exist")
    return adapter.open(path, Problems(spec))

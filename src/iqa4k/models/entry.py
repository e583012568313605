"""The model contract: what every deep model declares once, in its own module.

A model module ends with one :class:`ModelEntry` called ``ENTRY``: how to build the network,
how images become its inputs (:mod:`.inputs`), its releases, its citation, and what official
training starts from (:class:`Pretrained`). The model list,
the metric table rows, ``iqa4k info`` and the weights registry are all derived from the
entries (see :mod:`iqa4k.models` and docs/architecture.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch

from ..weights import WeightsFile
from .inputs import Crops, Views

# Loads a checkpoint that is not one state_dict of the whole network (AHIQ's official file holds
# only the heads): (network, state, fetch) where fetch(release) reads a release beside it.
Loader = Callable[[torch.nn.Module, Mapping[str, Any], Callable[[str], Mapping]], None]


@dataclass(frozen=True)
class Release:
    """A published checkpoint of a model: its file, the build options it needs, and, when it
    is scored on its own, the metric it becomes (with that metric's direction and range)."""

    file: WeightsFile  # registered as "<model>-<release>" when the package is imported
    metric: str = ""  # the metric name; "" for a file another release needs (a backbone)
    summary: str = ""  # one line for `iqa4k list`
    options: dict[str, Any] = field(default_factory=dict)  # build options of this release
    higher_is_better: bool = True  # direction of the scores this release predicts
    score_range: tuple[float, float] = (-math.inf, math.inf)
    needs: tuple[str, ...] = ()  # releases of the same model loaded beside it (AHIQ)


@dataclass(frozen=True)
class Pretrained:
    """Where training initialises a part of the network from, as the official code does (an
    ImageNet backbone): submodule ``part`` from the registered weights file ``file``. Keys of
    the file that start with one of ``drop`` (a classifier) are left out and ``rename``
    (regex, replacement) maps the others onto the part's names; every remaining key must fit
    the part, which may have layers of its own besides."""

    part: str
    file: str
    drop: tuple[str, ...] = ()
    rename: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ModelEntry:
    """Everything iqa4k knows about a deep model, declared once beside its network."""

    name: str
    build: Callable[..., torch.nn.Module]  # options -> network with random weights, no download
    inputs: Crops | Views  # how images become network inputs, and how outputs pool to a score
    releases: Mapping[str, Release]
    citation: str
    kind: Literal["NR", "FR"] = "NR"  # FR models take (dist, ref) crops at the same windows
    load: Loader | None = None  # for official files that are not one whole state_dict
    pretrained: tuple[Pretrained, ...] = ()  # what official training starts from
    channels_last: bool = False  # scored with channels-last memory (faster convolutions)
    # submodules that turn features into the score: kept in float32 when the metric's
    # ``precision`` option runs the rest in bfloat16 (scores are not rounded to 8 bits)
    head: tuple[str, ...] = ()

    @property
    def n_images(self) -> int:
        """Images one forward pass takes: views (UIQA 3), a pair (FR 2) or one crop."""
        return self.inputs.images_per_forward(self.kind)

    def file_name(self, release: str) -> str:
        """The weights-registry name of a release's file."""
        return f"{self.name}-{release}"

    def files(self) -> list[WeightsFile]:
        """The release files some metric reads, named and with those metrics, for the weights
        registry (a release no metric scores with, such as TReS's LIVE one, is data only)."""
        files = []
        for key, release in self.releases.items():
            readers = tuple(
                r.metric
                for k, r in self.releases.items()
                if r.metric and (k == key or key in r.needs)
            )
            if readers:
                files.append(replace(release.file, name=self.file_name(key), metrics=readers))
        return files

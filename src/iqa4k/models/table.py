"""The deep models' rows of the metric table, derived from their entries: one per release
that names a metric (see :mod:`iqa4k.registry`)."""

from __future__ import annotations

from ..metric_spec import MetricSpec, Option
from . import ENTRIES
from .entry import ModelEntry
from .inference import PRECISIONS
from .loading import setup

WEIGHTS_OPTION = Option(
    "",
    "checkpoint file (official format or ours); empty: this release from the iqa4k cache, "
    "downloaded on first use when it has a direct link",
)

PRECISION_OPTION = Option(
    "float32",
    "arithmetic of the network: float32 (the official numbers), or bfloat16: autocast to "
    "bfloat16 with the head in float32, faster where the CPU or GPU has bfloat16 matrix "
    "units; scores move (docs/models.md, Reduced precision)",
    choices=tuple(PRECISIONS),
)


def metric_spec(entry: ModelEntry, release: str) -> MetricSpec:
    """The metric of one release: the release's name, direction and range, the entry's rest."""
    rel = entry.releases[release]
    return MetricSpec(
        name=rel.metric,
        kind=entry.kind,
        higher_is_better=rel.higher_is_better,
        score_range=rel.score_range,
        differentiable=False,
        summary=rel.summary,
        citation=entry.citation,
        function=entry.inputs.score,
        options={"weights": WEIGHTS_OPTION, "precision": PRECISION_OPTION, **entry.inputs.options},
        setup=setup(entry, release),
        has_maps=entry.inputs.has_maps,
        model=(entry.name, release),
    )


SPECS = [
    metric_spec(entry, key)
    for entry in ENTRIES.values()
    for key, release in entry.releases.items()
    if release.metric
]

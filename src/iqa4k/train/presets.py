"""Training presets: every recipe as one :class:`TrainConfig`, with where it comes from.

``cpu-small`` is iqa4k's own, meant to learn on a laptop CPU in minutes. The official recipes
of the papers' models are declared with the values of their training scripts (see
docs/training.md for the sources and the fixes applied).
"""

from __future__ import annotations

from ..errors import OptionError
from .config import TrainConfig

PRESETS: dict[str, TrainConfig] = {
    "cpu-small": TrainConfig(
        model="smalliqa",
        release="trained",
        loss="mse",
        optimizer="adamw",
        lr=2e-3,
        weight_decay=1e-4,
        schedule="cosine",
        schedule_unit="iteration",
        epochs=30,
        batch_size=16,
        flip="horizontal",
        description=(
            "SmallIQA from scratch: AdamW 2e-3, cosine over the run, 30 epochs of one random "
            "192 crop per image, left-right flips; minutes on a laptop CPU."
        ),
    ),
}


def get_preset(name: str) -> TrainConfig:
    """The preset ``name``, or an error listing them."""
    if name not in PRESETS:
        raise OptionError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]

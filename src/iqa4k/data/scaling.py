"""MOS normalisation: fitted on the training part only, stored with a checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..errors import InputError


@dataclass(frozen=True)
class MosScale:
    """Maps a dataset's scores to [0, 1] over the training range, higher always better:
    ``(mos - low) / (high - low)``, flipped for lower-is-better labels (DMOS)."""

    low: float
    high: float
    higher_is_better: bool = True

    @classmethod
    def fit(cls, mos: Sequence[float], higher_is_better: bool = True) -> MosScale:
        """The scale of the training scores ``mos``."""
        if len(mos) < 2 or max(mos) == min(mos):
            raise InputError("MOS normalisation needs at least two distinct training scores")
        return cls(float(min(mos)), float(max(mos)), higher_is_better)

    def forward(self, mos: float) -> float:
        """A dataset score -> the training target."""
        t = (mos - self.low) / (self.high - self.low)
        return t if self.higher_is_better else 1.0 - t

    def inverse(self, target: float) -> float:
        """A prediction on the target scale -> the dataset's scale."""
        t = target if self.higher_is_better else 1.0 - target
        return self.low + t * (self.high - self.low)

    def to_dict(self) -> dict:
        return asdict(self)

"""Where scoring runs: ``local`` (this process, the default) or ``ray`` (actors on a Ray
cluster or a local Ray runtime, :mod:`.ray_engine`). Both score a chunk of images with the same
code (:func:`iqa4k.scoring.score_chunk`) and hand rows back in input order; the caller writes
them, so output files, resume and error rows do not depend on the engine."""

from __future__ import annotations

ENGINES = ("local", "ray")

__all__ = ["ENGINES"]

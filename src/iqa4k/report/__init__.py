"""Scores for people: terminal tables (:mod:`.tables`), a self-contained HTML page
(:mod:`.html`), score-vs-MOS plots (:mod:`.plots`), and the number formats they share
(:mod:`.formatting`).
"""

from __future__ import annotations

from .formatting import format_score
from .html import thumbnail_uri, write_html

__all__ = ["format_score", "thumbnail_uri", "write_html"]

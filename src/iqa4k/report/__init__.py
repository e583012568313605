"""Reports of scores for people: a self-contained HTML page."""

from __future__ import annotations

from .html import format_score, thumbnail_uri, write_html

__all__ = ["format_score", "thumbnail_uri", "write_html"]

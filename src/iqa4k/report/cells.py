"""A table as data: cells with their text and sort key, a title and notes. The Markdown file,
the terminal and the HTML page all render the same :class:`Table`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Cell", "Table", "as_text", "format_table", "markdown"]


def format_table(rows: Sequence[Sequence[str]], right: Sequence[bool] = ()) -> str:
    """Rows of text as aligned columns; ``right[i]`` right-aligns column i (numbers)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            c.rjust(w) if i < len(right) and right[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


@dataclass(frozen=True)
class Cell:
    """Text as shown, and the number a column is sorted by (None: sort by the text)."""

    text: str
    key: float | None = None


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: list[tuple[Cell, ...]]
    notes: list[str]


def markdown(table: Table) -> str:
    """A table as GitHub Markdown, its notes below."""
    lines = [f"## {table.title}", "", "| " + " | ".join(table.header) + " |"]
    lines.append("|" + "|".join("---" for _ in table.header) + "|")
    lines += [
        "| " + " | ".join(c.text.replace("|", "\\|") for c in row) + " |" for row in table.rows
    ]
    lines.append("")
    lines += [f"- {n}" for n in table.notes]
    return "\n".join(lines) + "\n"


def as_text(table: Table) -> str:
    """A table as aligned plain text for the terminal, its notes below."""
    rows = [table.header, *[tuple(c.text for c in row) for row in table.rows]]
    return "\n".join([format_table(rows), *[f"note: {n}" for n in table.notes]])

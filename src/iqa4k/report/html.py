"""Self-contained HTML pages: sortable tables, figures, thumbnails, all inside one file.

Nothing is linked: images are base64 data URIs, the CSS and the few lines of JavaScript (column
sorting) are inline, so the single file can be mailed or attached to a ticket and still render.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from .._version import __version__
from ..errors import InputError
from ..registry import METRICS
from ..weights import is_html
from .cells import Table
from .formatting import MISSING, as_float, direction, format_score

__all__ = ["figure_uri", "page", "table_html", "thumbnail_uri", "write_html", "write_page"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:2rem;color:#1f2328;background:#fff}
h1{font-size:1.5rem;margin:0 0 .3rem}
p.meta{color:#59636e;margin:0 0 1.2rem;font-size:.9rem}
table{border-collapse:collapse;font-size:.95rem}
th,td{padding:.35rem .8rem;border-bottom:1px solid #e4e7eb;text-align:right;vertical-align:middle}
th{background:#f5f7f9;font-weight:600;white-space:nowrap}
th.l,td.l{text-align:left}
td.pic{padding:.25rem .4rem}
td.pic img{display:block;border:1px solid #d0d7de}
td.num{white-space:nowrap;font-variant-numeric:tabular-nums;font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
td.err{color:#b3261e;text-align:left;max-width:22rem;font-size:.85rem}
tbody tr:nth-child(even) td{background:#fafbfc}
.dir{color:#0969da;margin-left:.2rem}
.sub{display:block;color:#6e7781;font-size:.8rem}
p.legend{color:#59636e;font-size:.85rem;margin-top:1rem}
h2{font-size:1.2rem;margin:2rem 0 .6rem}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
ul.notes{color:#59636e;font-size:.85rem;margin:.6rem 0 0;padding-left:1.2rem;max-width:60rem}
table.sortable th{cursor:pointer}
th[aria-sort=ascending]::after{content:" \\25B2";font-size:.7em}
th[aria-sort=descending]::after{content:" \\25BC";font-size:.7em}
figure{margin:.5rem 0}
figure img.plot{max-width:100%;border:1px solid #e4e7eb}
div.gallery{display:flex;flex-wrap:wrap;gap:.6rem;align-items:flex-start}
div.gallery span.label{writing-mode:vertical-rl;transform:rotate(180deg);color:#59636e;
 font-size:.8rem;align-self:center}
div.gallery span.gap{width:1.2rem}
div.gallery figure{margin:0;width:180px;font-size:.75rem;color:#59636e}
div.gallery img{width:180px;height:auto;display:block;border:1px solid #d0d7de}
"""

# Click a header to sort by that column (again to reverse); numbers by data-sort, then text.
_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      var body = table.tBodies[0];
      var key = function (row) {
        var cell = row.cells[col], k = cell.getAttribute("data-sort");
        return k === null ? cell.textContent.trim() : parseFloat(k);
      };
      Array.prototype.slice.call(body.rows).sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x === "number" && typeof y === "number") { return dir * (x - y); }
        if (typeof x === "number") { return -1; }  /* a missing value sorts last */
        if (typeof y === "number") { return 1; }
        return dir * x.localeCompare(y);
      }).forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def _encode(img: Image.Image, quality: int = 85) -> str:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail_uri(path: str | Path, width: int = 256, crop: int = 0) -> str | None:
    """A JPEG data URI of the image ``width`` px wide (never enlarged), or of a ``crop`` px
    1:1 centre crop when ``crop`` > 0; None if the file cannot be read.
    """
    try:
        with Image.open(path) as im:
            im.load()
            img = im.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    if crop > 0:
        # A 1:1 crop shows what a shrunken thumbnail hides: SR artefacts are pixel-level.
        w, h = img.size
        c = min(crop, w, h)
        left, top = (w - c) // 2, (h - c) // 2
        return _encode(img.crop((left, top, left + c, top + c)))
    if img.width > width:
        height = max(1, round(img.height * width / img.width))
        img = img.resize((width, height), Image.Resampling.LANCZOS)
    return _encode(img)


def figure_uri(path: str | Path) -> str:
    """A figure file (PNG or SVG) as a data URI."""
    path = Path(path)
    kind = "svg+xml" if path.suffix.lower() == ".svg" else "png"
    return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _arrow(metric: str) -> str:
    spec = METRICS.get(metric)
    if spec is None:
        return ""
    arrow = "\u2191" if spec.higher_is_better else "\u2193"
    return f'<span class="dir" title="{direction(spec.higher_is_better)}">{arrow}</span>'


def _img_cell(uri: str | None, alt: str) -> str:
    if uri is None:
        return '<td class="pic l">no preview</td>'
    return f'<td class="pic"><img src="{uri}" alt="{html.escape(alt)}"></td>'


def _sort_attr(key: float | None) -> str:
    return f' data-sort="{key!r}"' if key is not None and math.isfinite(key) else ""


def table_html(table: Table, heading: bool = True) -> str:
    """A :class:`Table` as a sortable HTML table with its title and notes; columns of numbers
    (cells with a sort key) are right-aligned."""
    numeric = [any(row[i].key is not None for row in table.rows) for i in range(len(table.header))]
    head = "".join(
        f'<th class="{"" if numeric[i] else "l"}">{html.escape(h)}</th>'
        for i, h in enumerate(table.header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if numeric[i] else "l"}"{_sort_attr(c.key)}>'
            f"{html.escape(c.text)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in table.rows
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in table.notes)
    return (
        (f"<h2>{html.escape(table.title)}</h2>" if heading else "")
        + f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + '<p class="legend">Click a column header to sort by it.</p>'
    )


def per_image_html(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    *,
    thumb_width: int = 256,
    detail: int = 128,
) -> str:
    """One row per image: thumbnail, 1:1 detail (``detail`` > 0), name, each metric's score
    (sortable), and the error column when a row has one."""
    has_error = any(str(r.get("error") or "").strip() for r in rows)
    head = ['<th class="l">image</th>']
    if detail > 0:
        head.append('<th class="l">1:1 detail</th>')
    head.append('<th class="l">name</th>')
    head += [f"<th>{html.escape(m)}{_arrow(m)}</th>" for m in metrics]
    if has_error:
        head.append('<th class="l">error</th>')

    body = []
    for row in rows:
        image = row.get("image")
        name = str(row.get("name") or (Path(str(image)).name if image else ""))
        cells = [_img_cell(thumbnail_uri(image, thumb_width) if image else None, name)]
        if detail > 0:
            cells.append(_img_cell(thumbnail_uri(image, crop=detail) if image else None, name))
        ref = str(row.get("ref") or "")
        sub = f'<span class="sub">vs {html.escape(Path(ref).name)}</span>' if ref else ""
        cells.append(f'<td class="l">{html.escape(name)}{sub}</td>')
        cells += [
            f'<td class="num"{_sort_attr(as_float(row.get(m)))}>'
            f"{html.escape(format_score(row.get(m), m))}</td>"
            for m in metrics
        ]
        if has_error:
            cells.append(f'<td class="err">{html.escape(str(row.get("error") or ""))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")

    legend = (
        f"\u2191 higher is better, \u2193 lower is better, {MISSING} no score. "
        f"Click a column to sort. Thumbnails are at most {thumb_width} px wide"
    )
    if detail > 0:
        legend += f"; the detail column is a {detail}x{detail} centre crop at full resolution"
    return (
        '<table class="sortable"><thead><tr>' + "".join(head) + "</tr></thead><tbody>"
        + "".join(body)
        + f'</tbody></table><p class="legend">{html.escape(legend)}.</p>'
    )  # fmt: skip


def page(title: str, meta: str, sections: Sequence[str]) -> str:
    """The whole document: title, a line of context, the sections (HTML), the sort script."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f'<p class="meta">{html.escape(meta)} \u00b7 iqa4k {html.escape(__version__)}</p>',
            *sections,
            f"<script>{_SORT_JS}</script>",
            "</body></html>",
            "",
        ]
    )


def write_page(out_path: str | Path, title: str, meta: str, sections: Sequence[str]) -> Path:
    """Write :func:`page` to ``out_path`` (folders made as needed) and return the path. An
    existing file is replaced only when it is an HTML page: ``-o scores.csv`` by mistake must
    not destroy the run's own input."""
    out = Path(out_path)
    if out.is_file() and not is_html(out):
        raise InputError(f"{out} exists and is not an HTML page: not overwritten")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page(title, meta, sections), encoding="utf-8")
    return out


def write_html(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    out_path: str | Path,
    title: str = "iqa4k report",
    *,
    thumb_width: int = 256,
    detail: int = 128,
) -> Path:
    """The page of a scoring run: one row per image (see :func:`per_image_html`).

    Each row maps ``image`` (a file path), optionally ``name``, ``ref`` and ``error``, and each
    metric name to its score (float, or CSV text; empty means no score).
    """
    meta = f"{len(rows)} image(s) \u00b7 metrics: {', '.join(metrics)}"
    table = per_image_html(rows, metrics, thumb_width=thumb_width, detail=detail)
    return write_page(out_path, title, meta, [table])

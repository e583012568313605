"""A self-contained HTML page of scores: one row per image, thumbnails embedded as data URIs.

Nothing is linked: images are base64 JPEGs inside the page, the CSS is inline and there is no
JavaScript, so the single file can be mailed or attached to a ticket and still render.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from .._version import __version__
from ..registry import METRICS
from .formatting import MISSING, direction, format_score

__all__ = ["thumbnail_uri", "write_html"]

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
td.num{font-variant-numeric:tabular-nums;font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
td.err{color:#b3261e;text-align:left;max-width:22rem;font-size:.85rem}
tbody tr:nth-child(even) td{background:#fafbfc}
.dir{color:#0969da;margin-left:.2rem}
.sub{display:block;color:#6e7781;font-size:.8rem}
p.legend{color:#59636e;font-size:.85rem;margin-top:1rem}
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


def write_html(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    out_path: str | Path,
    title: str = "iqa4k report",
    *,
    thumb_width: int = 256,
    detail: int = 128,
) -> Path:
    """Write the report to ``out_path`` and return it.

    Each row maps ``image`` (a file path), optionally ``name``, ``ref`` and ``error``, and each
    metric name to its score (float, or CSV text; empty means no score). ``detail`` > 0 adds a
    1:1 centre crop of that size next to each thumbnail.
    """
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
            f'<td class="num">{html.escape(format_score(row.get(m), m))}</td>' for m in metrics
        ]
        if has_error:
            cells.append(f'<td class="err">{html.escape(str(row.get("error") or ""))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")

    legend = (
        f"\u2191 higher is better, \u2193 lower is better, {MISSING} no score. "
        f"Thumbnails are at most {thumb_width} px wide"
    )
    if detail > 0:
        legend += f"; the detail column is a {detail}x{detail} centre crop at full resolution"
    page = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f'<p class="meta">{len(rows)} image(s) \u00b7 metrics: '
            f"{html.escape(', '.join(metrics))} \u00b7 iqa4k {html.escape(__version__)}</p>",
            "<table><thead><tr>" + "".join(head) + "</tr></thead><tbody>",
            *body,
            "</tbody></table>",
            f'<p class="legend">{html.escape(legend)}.</p>',
            "</body></html>",
            "",
        ]
    )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out

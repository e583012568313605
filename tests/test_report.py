"""The HTML report: parsed back with html.parser, so rows, scores and images are checked as a
browser would see them, not by string search.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
from html.parser import HTMLParser
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from PIL import Image

from iqa4k.registry import METRICS
from iqa4k.report import format_score, write_html
from iqa4k.report import html as report_html


class _Page(HTMLParser):
    """Collects the table (header and body cells as text) and every <img> src."""

    def __init__(self) -> None:
        super().__init__()
        self.header: list[str] = []
        self.rows: list[list[str]] = []
        self.images: list[dict[str, str]] = []
        self.title = ""
        self.tags: list[str] = []
        self._cell: list[str] | None = None
        self._in: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in.append(tag)
        if tag == "tr" and "tbody" in self._in:
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []
        if tag == "img":
            self.images.append(dict(attrs))
            self._in.pop()  # void element: no end tag

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            (self.header if "thead" in self._in else self.rows[-1]).append(text)
            self._cell = None
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in and self._in[-1] == "title":
            self.title += data


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _decode(uri: str) -> Image.Image:
    prefix = "data:image/jpeg;base64,"
    assert uri.startswith(prefix)
    im = Image.open(io.BytesIO(base64.b64decode(uri[len(prefix) :], validate=True)))
    im.load()
    return im


@pytest.fixture
def images(tmp_path: Path, rng: np.random.Generator) -> dict[str, Path]:
    big = rng.integers(0, 256, size=(300, 600, 3), dtype=np.uint8)
    small = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    paths = {"big": tmp_path / "big.png", "small": tmp_path / "small <b>&.png"}
    Image.fromarray(big).save(paths["big"])
    Image.fromarray(small).save(paths["small"])
    return paths


def test_rows_scores_and_embedded_images(images, tmp_path):
    rows = [
        {
            "image": str(images["big"]),
            "ref": "/r/ref.png",
            "psnr": "inf",
            "ssim": "1.0",
            "error": "",
        },
        {
            "image": images["small"],
            "ref": "/r/ref.png",
            "psnr": 31.23456,
            "ssim": 0.912345,
            "error": "",
        },
        {
            "image": tmp_path / "gone.png",
            "ref": "",
            "psnr": "",
            "ssim": "",
            "error": "cannot decode <oops>",
        },
    ]
    out = write_html(rows, ["psnr", "ssim"], tmp_path / "sub" / "r.html", title="T <1> & 2")
    assert out == tmp_path / "sub" / "r.html"
    page = _parse(out)

    assert page.title == "T <1> & 2"
    assert page.header == ["image", "1:1 detail", "name", "psnr\u2191", "ssim\u2191", "error"]
    assert len(page.rows) == 3
    big, small, gone = page.rows
    assert big[2:] == ["big.pngvs ref.png", "\u221e", "1.0000", ""]
    assert small[2:] == ["small <b>&.pngvs ref.png", "31.23", "0.9123", ""]
    assert gone == [
        "no preview",
        "no preview",
        "gone.png",
        "\u2013",
        "\u2013",
        "cannot decode <oops>",
    ]
    assert "b" not in page.tags  # names were escaped
    assert page.tags.count("script") == 1  # only the page's own column sorting

    # 2 pictures per readable row: the thumbnail and the 1:1 crop, all real JPEGs
    assert len(page.images) == 4
    decoded = [_decode(img["src"]) for img in page.images]
    assert all(im.format == "JPEG" for im in decoded)
    assert decoded[0].size == (256, 128)  # 600x300 shrunk to 256 wide, aspect kept
    assert decoded[1].size == (128, 128)  # centre crop at full resolution
    assert decoded[2].size == (40, 30)  # never enlarged
    assert decoded[3].size == (30, 30)  # crop limited by the image
    assert [img["alt"] for img in page.images] == ["big.png", "big.png"] + 2 * ["small <b>&.png"]
    assert "http" not in out.read_text()  # nothing linked: the file travels alone


def test_no_error_column_without_errors_and_no_detail_when_off(images, tmp_path):
    rows = [{"image": images["big"], "psnr": 30.0, "mine": 0.123456}]
    page = _parse(write_html(rows, ["psnr", "mine"], tmp_path / "r.html", detail=0))
    assert page.header == ["image", "name", "psnr\u2191", "mine"]  # unknown metric: no arrow
    assert page.rows == [["", "big.png", "30.00", "0.1235"]]
    assert len(page.images) == 1


def test_direction_arrow_comes_from_the_registry(images, tmp_path, monkeypatch):
    lower = dataclasses.replace(
        METRICS["psnr"], name="lower_m", higher_is_better=False, score_range=(0.0, 100.0)
    )
    monkeypatch.setattr(report_html, "METRICS", MappingProxyType({**METRICS, "lower_m": lower}))
    rows = [{"image": images["big"], "lower_m": 12.3456}]
    page = _parse(write_html(rows, ["lower_m"], tmp_path / "r.html"))
    assert page.header[-1] == "lower_m\u2193"
    assert page.rows[0][-1] == "12.35"  # wide range: 2 decimals


@pytest.mark.parametrize(
    "value, metric, text",
    [
        (27.934567, "psnr", "27.93"),
        ("27.934567", "psnr_y", "27.93"),
        (0.876543, "ssim", "0.8765"),
        (0.9, "ms_ssim", "0.9000"),
        (math.inf, "psnr", "\u221e"),
        (-math.inf, "psnr", "\u2212\u221e"),
        (math.nan, "ssim", "NaN"),
        (None, "ssim", "\u2013"),
        ("", "psnr", "\u2013"),
        ("n/a", "psnr", "\u2013"),
        (1234.5678, "not_a_metric", "1235"),
    ],
)
def test_format_score(value, metric, text):
    assert format_score(value, metric) == text

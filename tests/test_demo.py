"""The demo end to end, the orderings its scores must show, and the degradations it is built on."""

from __future__ import annotations

import contextlib
import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from iqa4k import degrade
from iqa4k.demo import ready_metrics, run_demo, sample_image
from iqa4k.errors import InputError, OptionError
from iqa4k.registry import METRICS

SUITE = [
    *(f"x{f}_{m}" for f in (2, 4, 8) for m in ("nearest", "bilinear", "bicubic")),
    "jpeg_q10",
    "jpeg_q30",
    "blur_s1",
    "blur_s2",
    "noise_s2pct",
    "noise_s5pct",
]
# Metrics whose parameter files are on disk (NRQM's model.mat cannot be bundled).
READY, SKIPPED = ready_metrics()
FR = [name for name in READY if METRICS[name].kind == "FR"]
NR = [name for name in READY if METRICS[name].kind == "NR"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict[str, dict[str, str]], str]:
    """Run the demo once: (output folder, scores by image stem, what it printed)."""
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        report = run_demo(out, progress=False)
    assert report == out / "report.html"
    with open(out / "scores.csv", newline="") as f:
        rows = {Path(r["image"]).stem: r for r in csv.DictReader(f)}
    return out, rows, printed.getvalue()


def _better(metric: str, a: str, b: str, rows) -> bool:
    """Whether image a scores strictly better than image b under metric's direction."""
    x, y = float(rows[a][metric]), float(rows[b][metric])
    return x > y if METRICS[metric].higher_is_better else x < y


def test_demo_writes_images_scores_and_report(demo):
    out, rows, printed = demo
    assert list(rows) == ["reference", *SUITE]
    assert sorted(p.stem for p in (out / "images").glob("*.png")) == sorted(rows)
    for row in rows.values():
        assert row["error"] == ""
        for m in READY:  # every ready metric has a column and a number
            assert not math.isnan(float(row[m]))
        assert bool(row["ref"]) == bool(FR)
    html = (out / "report.html").read_text(encoding="utf-8")
    # the page of `iqa4k report`: the metrics table, then one row per image
    assert html.count("<tr>") == (1 + len(READY) + len(SKIPPED)) + (1 + len(rows))
    assert all(f"skipped: {why}" in html for why in SKIPPED.values())
    assert "data:image/jpeg;base64," in html and "Every image" in html
    # the printed table: one line per image, then one direction line per metric
    lines = printed.splitlines()
    assert lines[0].split() == ["image", *READY]
    for name in rows:
        assert any(ln.split()[:1] == [name] for ln in lines)
    for m in READY:
        word = "higher" if METRICS[m].higher_is_better else "lower"
        assert any(ln.startswith(f"{m}: {word} is better") for ln in lines)


def test_saved_reference_is_the_sample(demo):
    out, _, _ = demo
    with Image.open(out / "images" / "reference.png") as im:
        saved = np.asarray(im.convert("RGB"))
    assert np.array_equal(saved, np.round(sample_image().permute(1, 2, 0).numpy() * 255))


@pytest.mark.parametrize("metric", FR)
def test_reference_against_itself_is_ideal(demo, metric):
    _, rows, _ = demo
    lo, hi = METRICS[metric].score_range
    ideal = hi if METRICS[metric].higher_is_better else lo
    assert float(rows["reference"][metric]) == ideal  # psnr inf, ssim and ms_ssim exactly 1


@pytest.mark.parametrize("metric", FR)
def test_full_reference_orderings(demo, metric):
    _, rows, _ = demo
    for method in ("nearest", "bilinear", "bicubic"):  # a larger factor loses more detail
        assert _better(metric, f"x2_{method}", f"x4_{method}", rows)
        assert _better(metric, f"x4_{method}", f"x8_{method}", rows)
    # Bicubic beats nearest by a wide margin from x4 on. At x2 it does not hold for every
    # metric (MS-SSIM rates x2 nearest slightly above x2 bicubic), so that is not asserted.
    assert _better(metric, "x4_bicubic", "x4_nearest", rows)
    assert _better(metric, "x8_bicubic", "x8_nearest", rows)
    assert _better(metric, "jpeg_q30", "jpeg_q10", rows)
    assert _better(metric, "blur_s1", "blur_s2", rows)
    assert _better(metric, "noise_s2pct", "noise_s5pct", rows)
    for name in SUITE:
        assert _better(metric, "reference", name, rows)


@pytest.mark.skipif(not NR, reason="no no-reference metric is registered yet")
@pytest.mark.parametrize("metric", NR)
def test_no_reference_scores_are_in_range(demo, metric):
    _, rows, _ = demo
    lo, hi = METRICS[metric].score_range
    for row in rows.values():
        assert lo <= float(row[metric]) <= hi


# ---------------------------------------------------------------------------- degradations


@pytest.fixture
def image(rng) -> torch.Tensor:
    return torch.from_numpy(rng.uniform(0, 1, (3, 48, 64)).astype(np.float32))


def test_suite_keeps_shape_range_and_is_deterministic(image):
    first = degrade.sr_suite(image)
    second = degrade.sr_suite(image)
    assert [n for n, _ in first] == SUITE
    for (name, a), (_, b) in zip(first, second, strict=True):
        assert a.shape == image.shape and a.dtype == image.dtype, name
        assert 0 <= float(a.min()) and float(a.max()) <= 1, name
        assert torch.equal(a, b), name
        assert not torch.equal(a, image), name


def test_resample_nearest_repeats_pixels(image):
    # Pixel-centre nearest at an exact factor: each small pixel becomes a k x k block.
    for k in (2, 4):
        up = degrade.resample(image, k, "nearest")
        blocks = up.reshape(3, 48 // k, k, 64 // k, k)
        assert torch.equal(blocks, blocks[:, :, :1, :, :1].expand_as(blocks))


def test_resample_keeps_a_flat_image_flat_and_batches():
    flat = torch.full((2, 3, 40, 56), 0.3)
    for method in ("nearest", "bilinear", "bicubic"):
        out = degrade.resample(flat, 8, method)
        assert out.shape == flat.shape and torch.allclose(out, flat, atol=1e-6)


def test_jpeg_matches_pillow(image):
    array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=30)
    expected = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255
    got = degrade.jpeg(image, 30).permute(1, 2, 0).numpy()
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("sigma", [0.8, 1.0, 2.0])
def test_blur_matches_scipy(image, sigma):
    # scipy's 'mirror' is reflect-101; truncate is set so its support is our +-ceil(3 sigma)
    radius = math.ceil(3 * sigma)
    expected = ndimage.gaussian_filter(
        image.double().numpy(), (0, sigma, sigma), mode="mirror", truncate=radius / sigma
    )
    got = degrade.gaussian_blur(image, sigma).double().numpy()
    assert np.abs(got - expected).max() < 1e-5


def test_noise_is_seeded_and_has_the_asked_strength():
    grey = torch.full((3, 128, 128), 0.5)
    a = degrade.gaussian_noise(grey, 0.05, seed=1)
    assert torch.equal(a, degrade.gaussian_noise(grey, 0.05, seed=1))
    assert not torch.equal(a, degrade.gaussian_noise(grey, 0.05, seed=2))
    assert float((a - grey).std()) == pytest.approx(0.05, rel=0.05)


def test_bad_arguments():
    x = torch.rand(3, 16, 16)
    with pytest.raises(OptionError):
        degrade.resample(x, 3, "lanczos")
    with pytest.raises(OptionError):
        degrade.resample(x, 0)
    with pytest.raises(OptionError):
        degrade.jpeg(x, 0)
    with pytest.raises(OptionError):
        degrade.gaussian_blur(x, 0)
    with pytest.raises(InputError):
        degrade.resample(torch.rand(16, 16), 2)


@pytest.mark.slow
def test_each_degradation_handles_a_4k_frame():
    x = torch.rand(3, 2160, 3840)
    for y in (
        degrade.resample(x, 8, "bicubic"),
        degrade.jpeg(x, 30),
        degrade.gaussian_blur(x, 2),
        degrade.gaussian_noise(x, 0.02),
    ):
        assert y.shape == x.shape and y.dtype == x.dtype

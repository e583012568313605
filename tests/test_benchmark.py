"""``iqa4k benchmark`` and ``iqa4k report``: figures recomputed independently from the scores
files, the MOS direction, reuse of finished rows, skips, the cost table, and every file."""

from __future__ import annotations

import csv
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from scipy import stats as sps

from iqa4k.benchmark import benchmark
from iqa4k.benchmark import cost as cost_module
from iqa4k.benchmark import run as run_module
from iqa4k.benchmark.files import CSV_COLUMNS
from iqa4k.cli import main
from iqa4k.data import open_dataset
from iqa4k.errors import InputError, OptionError
from iqa4k.evaluation import evaluate_csv
from iqa4k.models import ENTRIES
from iqa4k.models.checkpoint import save_checkpoint
from iqa4k.models.loading import checkpoint_meta
from iqa4k.testing import deterministic_init

from .conftest import fixture_path


@pytest.fixture(scope="module")
def dmos_set(tmp_path_factory) -> Path:
    """A full-reference set labelled with a true DMOS (lower is better): 5 references of
    192x192, each blurred at 3 strengths; DMOS grows with the blur, jittered per reference."""
    root = tmp_path_factory.mktemp("dmos_set")
    rng = np.random.default_rng(3)
    rows = ["image,ref,dmos"]
    for r in range(5):
        noise = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        ref = Image.fromarray(noise).resize((192, 192), Image.BICUBIC)
        ref.save(root / f"r{r}.png")
        for level, radius in enumerate((0.6, 1.5, 3.0)):
            ref.filter(ImageFilter.GaussianBlur(radius)).save(root / f"r{r}_{level}.png")
            rows.append(f"r{r}_{level}.png,r{r}.png,{10 * level + 2 * r + 1}")
    (root / "mos.csv").write_text("\n".join(rows) + "\n")
    return root


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _scores(out: Path, metric: str) -> dict[str, float]:
    return {
        Path(r["image"]).name: float(r[metric]) for r in _read(out / "scores" / f"{metric}.csv")
    }


def test_figures_match_an_independent_computation_and_are_oriented(dmos_set, tmp_path):
    out = tmp_path / "b"
    bench = benchmark(
        open_dataset(f"csv:{dmos_set}"), "psnr,ssim,niqe", out, cost=False, n_boot=200,
        progress=False, log=lambda _: None,
    )  # fmt: skip
    assert not bench.mos_higher_is_better and bench.mos_direction == "from the csv adapter"
    dmos = {r["image"]: float(r["dmos"]) for r in _read(dmos_set / "mos.csv")}
    results = {r["metric"]: r for r in _read(out / "results.csv")}
    assert tuple(_read_header(out / "results.csv")) == CSV_COLUMNS
    for metric, sign in (("psnr", -1), ("ssim", -1), ("niqe", 1)):  # oriented against a DMOS
        scores = _scores(out, metric)
        names = sorted(scores)
        expected = sign * sps.spearmanr([scores[n] for n in names], [dmos[n] for n in names])[0]
        row = results[metric]
        assert int(row["n"]) == 15 and float(row["srcc"]) == pytest.approx(expected)
        assert float(row["srcc_lo"]) <= float(row["srcc"]) <= float(row["srcc_hi"])
        assert row["fit"] in ("5pl", "5pl failed, linear")
    assert float(results["psnr"]["srcc"]) > 0.5  # blur lowers PSNR and raises the DMOS

    md = (out / "results.md").read_text()
    assert "MOS: lower is better (from the csv adapter)" in md
    assert "negated first (psnr, ssim)" in md  # niqe runs with a DMOS: not negated
    assert f"Against the best metric ({bench.best})" in md and "Williams" in md
    combined = _read(out / "scores.csv")
    assert len(combined) == 15 and set(combined[0]) == {
        "image",
        "ref",
        "dmos",  # named by its direction: read back the right way up
        "psnr",
        "ssim",
        "niqe",
    }
    # scores.csv alone is enough for `evaluate` and `report`: its dmos column is the MOS,
    # never a metric, with or without a separate MOS file.
    for mos in (None, dmos_set / "mos.csv"):
        again = {e.name: e.result.srcc for e in evaluate_csv(out / "scores.csv", mos).metrics}
        assert again == pytest.approx({m: float(results[m]["srcc"]) for m in again})
        assert sorted(again) == ["niqe", "psnr", "ssim"]
    assert main(["report", str(out / "scores.csv"), "-o", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "Agreement with MOS" in page and "MOS: lower is better (from the column name" in page

    plots = out / "plots"
    with Image.open(plots / "all.png") as im:
        assert im.width > 1000  # three panels side by side
    assert (plots / "all.pdf").read_bytes()[:5] == b"%PDF-"
    assert ET.parse(plots / "all.svg").getroot().tag.endswith("svg")
    assert sorted(p.name for p in plots.glob("*.png")) == [
        "all.png",
        "niqe.png",
        "psnr.png",
        "ssim.png",
    ]
    page = (out / "report.html").read_text()
    for text in ("Agreement with MOS", "Scores against MOS", "Best and worst predictions"):
        assert text in page
    assert "http" not in page.replace("http://www.w3.org", "")  # self-contained


def _read_header(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return next(csv.reader(f))


def test_a_rerun_reuses_finished_rows_and_scores_only_what_is_new(dmos_set, tmp_path, monkeypatch):
    dataset = open_dataset(f"csv:{dmos_set}")
    runs = []
    real = run_module.score_pairs

    def counting(pairs, metrics, out, **kwargs):
        run = real(pairs, metrics, out, **kwargs)
        runs.append((metrics[0], run.resumed))
        return run

    monkeypatch.setattr(run_module, "score_pairs", counting)
    kw = {"cost": False, "n_boot": 0, "progress": False, "log": lambda _: None}
    first = benchmark(dataset, "psnr,ssim", tmp_path, **kw)
    second = benchmark(dataset, "psnr,ssim,piqe", tmp_path, **kw)
    assert runs == [("psnr", 0), ("ssim", 0), ("psnr", 15), ("ssim", 15), ("piqe", 0)]
    assert second.scores["psnr"] == first.scores["psnr"]

    # an interrupted file: its missing rows are scored, the others kept
    rows = (tmp_path / "scores" / "piqe.csv").read_text().splitlines()
    (tmp_path / "scores" / "piqe.csv").write_text("\n".join(rows[:6]) + "\n")
    runs.clear()
    third = benchmark(dataset, "piqe", tmp_path, **kw)
    assert runs == [("piqe", 5)] and third.scores["piqe"] == second.scores["piqe"]


def test_a_first_run_cut_short_is_resumed_not_started_again(dmos_set, tmp_path, monkeypatch):
    dataset = open_dataset(f"csv:{dmos_set}")
    real, calls = run_module.score_pairs, []

    def interrupted(pairs, metrics, out, **kwargs):
        calls.append(kwargs["resume"])
        if len(calls) == 1:  # the first run is stopped after six rows, as by Ctrl-C
            real(pairs[:6], metrics, out, **kwargs)
            raise KeyboardInterrupt
        return real(pairs, metrics, out, **kwargs)

    monkeypatch.setattr(run_module, "score_pairs", interrupted)
    kw = {"cost": False, "n_boot": 0, "progress": False, "log": lambda _: None}
    with pytest.raises(KeyboardInterrupt):
        benchmark(dataset, "piqe", tmp_path, **kw)
    bench = benchmark(dataset, "piqe", tmp_path, **kw)
    assert calls == [False, True] and not any(math.isnan(v) for v in bench.scores["piqe"])


def test_images_that_fail_are_counted_and_all_skipped_is_one_clear_error(tmp_path, capsys):
    root = tmp_path / "set"
    root.mkdir()
    rng = np.random.default_rng(5)
    lines = ["image,mos"]
    for i in range(6):  # the last one is too small for NIQE (two 96x96 blocks) but not PIQE
        size = (20, 20) if i == 5 else (200, 200)
        pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i}.png")
        lines.append(f"{i}.png,{i}")
    (root / "mos.csv").write_text("\n".join(lines) + "\n")
    argv = ["benchmark", "--dataset", f"csv:{root}", "--no-cost", "--boot", "0", "--no-progress"]
    for _ in range(2):  # and again: the failed row is retried, and fails the same way
        assert main([*argv, "-m", "niqe,piqe", "--out", str(tmp_path / "o")]) == 1
        md = (tmp_path / "o" / "results.md").read_text()
        assert "niqe: 1 image(s) could not be scored" in md and "piqe: 1" not in md
    capsys.readouterr()
    assert main([*argv, "-m", "psnr", "--out", str(tmp_path / "fr")]) == 2
    err = capsys.readouterr().err
    assert f"no selected metric can run on csv:{root}" in err and "psnr: full-reference" in err


def test_the_mos_direction_can_be_given_and_bad_requests_are_clear(dmos_set, tmp_path):
    dataset = open_dataset(f"csv:{dmos_set}")
    kw = {"cost": False, "n_boot": 0, "progress": False, "log": lambda _: None}
    as_dmos = benchmark(dataset, "psnr", tmp_path / "a", **kw)
    as_mos = benchmark(dataset, "psnr", tmp_path / "b", mos_direction="higher", **kw)
    a, b = as_dmos.evaluations[0].result, as_mos.evaluations[0].result
    assert a.srcc == pytest.approx(-b.srcc) and a.srcc > 0 and as_mos.mos_direction == "given"
    with pytest.raises(OptionError, match="MOS direction is higher or lower"):
        benchmark(dataset, "psnr", tmp_path / "c", mos_direction="up", **kw)
    with pytest.raises(OptionError, match="--weights names maniqa, which -m does not select"):
        benchmark(dataset, "psnr", tmp_path / "c", weights={"maniqa": "x.pt"}, **kw)
    with pytest.raises(InputError, match="not an iqa4k crossval folder: summary.json is missing"):
        benchmark(dataset, "psnr", tmp_path / "d", crossval=[tmp_path], **kw)
    other = tmp_path / "other_cv"  # a crossval of another dataset
    other.mkdir()
    (other / "summary.json").write_text("{}")
    fold = {"name": "fold0", "train": [], "val": [], "test": ["elsewhere.png"]}
    (other / "splits.json").write_text(json.dumps({"splits": [fold]}))
    with pytest.raises(OptionError, match="1 image\\(s\\) not in csv:.*e.g. elsewhere.png"):
        benchmark(dataset, "psnr", tmp_path / "d", crossval=[other], **kw)
    assert not (tmp_path / "d").exists()  # both refused before anything was scored


def test_metrics_that_cannot_run_are_skipped_with_the_reason(tmp_path, capsys):
    root = tmp_path / "nr"
    root.mkdir()
    rng = np.random.default_rng(4)
    lines = ["image,mos"]
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(root / f"{i}.png")
        lines.append(f"{i}.png,{i}")
    (root / "mos.csv").write_text("\n".join(lines) + "\n")
    argv = ["benchmark", "--dataset", f"csv:{root}", "-m", "piqe,psnr,maniqa", "--no-cost"]
    assert main([*argv, "--out", str(tmp_path / "o"), "--boot", "0", "--no-progress"]) == 1
    out = capsys.readouterr()
    assert "psnr skipped: full-reference, and the dataset has no reference images" in out.out
    assert (
        "maniqa skipped: its weights (maniqa, release koniq) are not in the iqa4k cache" in out.out
    )
    md = (tmp_path / "o" / "results.md").read_text()
    assert "| psnr | FR | higher is better |" in md and "skipped: full-reference" in md
    assert [r["metric"] for r in _read(tmp_path / "o" / "results.csv")] == ["piqe"]
    bad = ["--dataset", f"csv:{root}", "-m", "piqe", "--out", str(tmp_path / "p")]
    assert main(["benchmark", *bad, "--weights", "piqe"]) == 2
    assert "--weights takes METRIC=CHECKPOINT, got 'piqe'" in capsys.readouterr().err


def _small_checkpoint(path: Path) -> Path:
    """A SmallIQA checkpoint in the format training writes (weights: deterministic init)."""
    entry = ENTRIES["smalliqa"]
    net = deterministic_init(entry.build())
    return save_checkpoint(path, net.state_dict(), checkpoint_meta(entry, "trained"))


def test_cost_rows_are_measured_once_per_device(tmp_path, monkeypatch):
    weights = {"smalliqa": str(_small_checkpoint(tmp_path / "small.safetensors"))}
    rows = cost_module.measure_costs(["psnr", "smalliqa"], tmp_path, weights=weights, device="cpu")
    psnr, small = rows
    assert psnr["parameters"] is None and psnr["gmacs"] is None and psnr["seconds"] > 0
    assert small["parameters"] > 0 and small["gmacs"] > 0 and small["crops"] >= 1
    monkeypatch.setattr(cost_module, "_seconds", lambda *a: pytest.fail("measured again"))
    assert cost_module.measure_costs(["psnr", "smalliqa"], tmp_path, weights=weights) == rows


def test_kadid_mini_full_reference_benchmark(tmp_path, capsys):
    kadid = fixture_path("kadid_mini")
    argv = ["benchmark", "--dataset", f"csv:{kadid / 'dmos.csv'}", "-m", "psnr,ssim"]
    argv += ["--out", str(tmp_path)]
    # KADID-10k's "dmos" is higher-is-better: the adapter reads the name, so it is given here
    assert (
        main([*argv, "--mos-direction", "higher", "--no-cost", "--boot", "200", "--no-progress"])
        == 0
    )
    dmos = {r["dist"]: float(r["dmos"]) for r in _read(kadid / "dmos.csv")}
    results = {r["metric"]: r for r in _read(tmp_path / "results.csv")}
    for metric in ("psnr", "ssim"):
        scores = _scores(tmp_path, metric)
        names = sorted(scores)
        expected = sps.spearmanr([scores[n] for n in names], [dmos[n] for n in names])[0]
        assert float(results[metric]["srcc"]) == pytest.approx(expected)
    md = (tmp_path / "results.md").read_text()
    assert "MOS: higher is better (given)" in md
    assert "psnr, ssim: only 4 images: the figures are unreliable" in md
    assert "psnr, ssim: the 5-parameter logistic fit failed" in md
    assert "after the 5pl logistic map" not in md  # no fit succeeded: none is claimed


# ------------------------------------------------------------------------------ iqa4k report


def test_report_of_a_scores_file_with_and_without_mos(dmos_set, tmp_path, capsys):
    scores = tmp_path / "s.csv"
    dist = sorted(str(p) for p in dmos_set.glob("r*_*.png"))
    assert main(["score", *dist, "-m", "piqe,brisque", "-o", str(scores), "--no-progress"]) == 0
    plain = tmp_path / "plain.html"
    assert main(["report", str(scores), "-o", str(plain)]) == 0
    page = plain.read_text()
    assert "Every image" in page and "Agreement with MOS" not in page
    assert page.count('<img src="data:image/jpeg') == 2 * 15  # thumbnail and 1:1 detail
    full = tmp_path / "full.html"
    argv = ["report", str(scores), "--mos", str(dmos_set / "mos.csv"), "-o", str(full)]
    assert main([*argv, "--boot", "100"]) == 0
    page = full.read_text()
    assert "Agreement with MOS" in page and "MOS: lower is better (from the column name" in page
    assert "data:image/png;base64" in page  # the figure, embedded
    dmos = {r["image"]: float(r["dmos"]) for r in _read(dmos_set / "mos.csv")}
    rows = _read(scores)
    piqe = [float(r["piqe"]) for r in rows]
    srcc = sps.spearmanr(piqe, [dmos[Path(r["image"]).name] for r in rows])[0]
    assert f">{srcc:.4f} [" in page  # PIQE runs with a DMOS: shown as it is, not negated


# ------------------------------------------------------------------ in a real browser


def _browser():
    """tests/browser.py, or a skip where Chromium or Playwright cannot be had."""
    from . import browser

    if browser.chromium() is None:
        pytest.skip("no Chromium here (.ci/run installs the Debian package chromium)")
    pytest.importorskip("playwright.sync_api")
    return browser


def _srcc_order(browser, page) -> list[float]:
    return [float(t.split()[0]) for t in browser.column(page, 1, 3)]


def test_benchmark_page_in_chromium_loads_everything_and_sorts(dmos_set, tmp_path):
    browser = _browser()
    bench = benchmark(
        open_dataset(f"csv:{dmos_set}"), "psnr,ssim,piqe", tmp_path, n_boot=100,
        progress=False, log=lambda _: None,
    )  # fmt: skip
    assert [c["metric"] for c in bench.costs] == ["psnr", "ssim", "piqe"]
    with browser.opened(tmp_path / "report.html") as (page, problems):
        sizes = browser.image_sizes(page)
        # the figure, then 3 best and 3 worst thumbnails per metric
        assert len(sizes) == 1 + 3 * 6 and all(w > 0 and h > 0 for _, w, h in sizes), sizes
        assert browser.column(page, 0, 0) == ["psnr", "ssim", "piqe"]  # the metrics table
        shown = _srcc_order(browser, page)
        assert shown == sorted(shown, reverse=True)  # best first
        browser.click_header(page, 1, 3)
        assert _srcc_order(browser, page) == sorted(shown)
        browser.click_header(page, 1, 3)
        assert _srcc_order(browser, page) == sorted(shown, reverse=True)
        assert "Cost at 3840x2160" in page.inner_text("body")
        assert problems == []


def test_scores_page_in_chromium_sorts_images_by_score(dmos_set, tmp_path):
    browser = _browser()
    scores = tmp_path / "s.csv"
    dist = sorted(str(p) for p in dmos_set.glob("r*_*.png"))
    assert main(["score", *dist, "-m", "piqe", "-o", str(scores), "--no-progress"]) == 0
    assert main(["report", str(scores), "-o", str(tmp_path / "r.html")]) == 0
    with browser.opened(tmp_path / "r.html") as (page, problems):
        assert all(w > 0 for _, w, _ in browser.image_sizes(page))
        browser.click_header(page, 1, 3)  # the per-image table's piqe column
        values = [float(v) for v in browser.column(page, 1, 3)]
        assert values == sorted(values) and len(values) == 15
        assert problems == []

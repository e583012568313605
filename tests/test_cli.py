"""The ``iqa4k`` command, run in-process through ``main``: output files are checked against the
Python API, and failures against the promised error rows and exit codes.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats as sps

from iqa4k import cli, create_metric, registry, scoring
from iqa4k.cli import main, parse_value
from iqa4k.registry import METRICS

from .conftest import fixture_path

NAMES = ("a", "b", "c")


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random picture (SSIM needs structure, not white noise)."""
    coarse = rng.uniform(0, 255, size=(h // 8 + 2, w // 8 + 2, 3)).astype(np.uint8)
    big = Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(big)


def _save(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def pairs(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, Path]:
    """dist/ and ref/ folders with three 64x64 pairs of the same names."""
    for i, name in enumerate(NAMES):
        ref = _photo(rng, 64, 64)
        noise = rng.normal(0, 4 + 4 * i, ref.shape)
        dist = np.clip(ref + noise, 0, 255).astype(np.uint8)
        _save(ref, tmp_path / "ref" / f"{name}.png")
        _save(dist, tmp_path / "dist" / f"{name}.png")
    return tmp_path / "dist", tmp_path / "ref"


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _by_name(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {Path(r["image"]).stem: r for r in rows}


def _score(dist, ref, out, *extra: str) -> int:
    args = ["score", *map(str, dist if isinstance(dist, list) else [dist]), "-o", str(out)]
    if ref is not None:
        args += ["--ref", str(ref)]
    return main([*args, "--no-progress", *extra])


# ------------------------------------------------------------------------------ list / info


def test_list_shows_every_metric_with_kind_and_direction(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for spec in METRICS.values():
        line = next(ln for ln in lines if ln.split()[0] == spec.name)
        word = "higher" if spec.higher_is_better else "lower"
        assert f" {spec.kind} " in line and f"{word} is better" in line
        assert spec.summary in line


def test_list_says_which_metrics_have_their_files(capsys, tmp_path, monkeypatch):
    from iqa4k import weights

    monkeypatch.setenv("IQA4K_HOME", str(tmp_path))
    vgg = weights.cache_path("torchvision-vgg16")
    vgg.parent.mkdir(parents=True)
    vgg.write_bytes(b"x")  # present is enough for the list (loading checks the contents)
    assert main(["list"]) == 0
    ready = {
        ln.split()[0]: ln.split("]")[1].split()[0]
        for ln in capsys.readouterr().out.splitlines()[1:]
    }
    assert ready["psnr"] == ready["dists"] == ready["lpips_vgg"] == "yes"
    assert ready["lpips"] == ready["maniqa"] == ready["nrqm"] == "no"


@pytest.mark.parametrize("kind", ["FR", "nr"])
def test_list_filters_by_kind(capsys, kind):
    assert main(["list", "--kind", kind]) == 0
    out = capsys.readouterr().out
    for spec in METRICS.values():
        listed = any(ln.split()[:1] == [spec.name] for ln in out.splitlines())
        assert listed == (spec.kind == kind.upper())


def test_info_shows_options_defaults_choices_and_citation(capsys):
    assert main(["info", "SSIM"]) == 0
    out = capsys.readouterr().out
    spec = METRICS["ssim"]
    assert out.startswith("ssim (full-reference")
    for name, opt in spec.options.items():
        assert f"  {name} = " in out and opt.doc in out
    assert "color_space = gray   (choices: rgb, gray, y)" in out
    assert "crop_border = 0   (minimum: 0)" in out
    assert "downsample = false" in out
    assert spec.citation.split()[0] in out and "IEEE TIP" in out


def test_info_unknown_metric_is_one_line_listing_the_names(capsys):
    assert main(["info", "nope"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown metric 'nope'")
    assert all(name in err[0] for name in METRICS)
    assert captured.out == ""


# ---------------------------------------------------------------------------------- score


def test_score_matches_the_api(pairs, tmp_path, capsys):
    dist, ref = pairs
    out = tmp_path / "scores.csv"
    assert _score(dist, ref, out, "-m", "psnr,ssim") == 0
    header, rows = _read(out)
    assert header == ["image", "ref", "psnr", "ssim", "error"]
    assert [Path(r["image"]).name for r in rows] == [f"{n}.png" for n in NAMES]
    for row in rows:
        assert Path(row["ref"]) == ref / Path(row["image"]).name
        assert row["error"] == ""
        for m in ("psnr", "ssim"):
            expected = create_metric(m)(row["image"], row["ref"]).item()
            assert float(row[m]) == pytest.approx(expected, rel=1e-6, abs=1e-7)
    # the summary: the mean of each metric over the 3 images
    out_text = capsys.readouterr().out
    mean = np.mean([float(r["psnr"]) for r in rows])
    assert "3 of 3 image(s) scored by every metric" in out_text and f"{mean:.4f}" in out_text


def test_score_single_files_and_reference_file(pairs, tmp_path):
    dist, ref = pairs
    out = tmp_path / "one.csv"
    assert _score([dist / "a.png", dist / "b.png"], ref / "a.png", out, "-m", "psnr") == 0
    _, rows = _read(out)
    assert [Path(r["ref"]).name for r in rows] == ["a.png", "a.png"]  # one ref file pairs all
    expected = create_metric("psnr")(dist / "b.png", ref / "a.png").item()
    assert float(rows[1]["psnr"]) == pytest.approx(expected, rel=1e-6)


def test_options_go_to_the_metrics_that_have_them(pairs, tmp_path):
    dist, ref = pairs
    out = tmp_path / "s.csv"
    rc = _score(
        dist,
        ref,
        out,
        "-m",
        "psnr,ssim",
        "--opt",
        "color_space=y",
        "--opt",
        "crop_border=4",
        "--opt",
        "win_size=7",
    )
    assert rc == 0
    _, rows = _read(out)
    psnr = create_metric("psnr", color_space="y", crop_border=4)  # psnr has no win_size
    ssim = create_metric("ssim", color_space="y", crop_border=4, win_size=7)
    for row in rows:
        assert float(row["psnr"]) == pytest.approx(psnr(row["image"], row["ref"]).item(), 1e-6)
        assert float(row["ssim"]) == pytest.approx(ssim(row["image"], row["ref"]).item(), 1e-6)


@pytest.mark.parametrize(
    "opt, message",
    [
        ("colour_space=y", "no selected metric has option 'colour_space'"),
        ("color_space=lab", "color_space must be one of"),
        ("crop_border=-1", "crop_border must be >= 0"),
        ("crop_border", "--opt expects name=value"),
    ],
)
def test_bad_options_are_usage_errors(pairs, tmp_path, capsys, opt, message):
    dist, ref = pairs
    assert _score(dist, ref, tmp_path / "s.csv", "-m", "psnr", "--opt", opt) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_parse_value():
    assert parse_value("4") == 4 and isinstance(parse_value("4"), int)
    assert parse_value("1.5") == 1.5
    assert parse_value("true") is True and parse_value("Off") is False
    assert parse_value("y") == "y"
    assert parse_value("0.5,0.25") == (0.5, 0.25)


def test_usage_errors(pairs, tmp_path, capsys):
    dist, ref = pairs
    out = tmp_path / "s.csv"
    assert _score(dist, None, out, "-m", "psnr") == 2
    assert "need --ref" in capsys.readouterr().err
    assert _score(dist, ref, out, "-m", "psnr,nope") == 2
    assert "unknown metric 'nope'" in capsys.readouterr().err
    assert _score(tmp_path / "missing", ref, out, "-m", "psnr") == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert _score(dist, ref, out, "-m", "psnr", "--batch-size", "0") == 2
    assert not out.exists()


def test_existing_output_needs_resume_or_overwrite(pairs, tmp_path, capsys):
    dist, ref = pairs
    out = tmp_path / "s.csv"
    assert _score(dist, ref, out, "-m", "psnr") == 0
    before = out.read_text()
    assert _score(dist, ref, out, "-m", "psnr") == 2
    assert "exists: pass --resume" in capsys.readouterr().err
    assert out.read_text() == before
    assert _score(dist, ref, out, "-m", "psnr,ssim", "--overwrite") == 0
    assert _read(out)[0] == ["image", "ref", "psnr", "ssim", "error"]
    assert _score(dist, ref, out, "-m", "psnr", "--resume") == 2  # other columns
    assert "cannot resume" in capsys.readouterr().err


def test_resume_completes_a_killed_run_without_rescoring(pairs, tmp_path, monkeypatch):
    dist, ref = pairs
    out = tmp_path / "s.csv"
    assert _score(dist, ref, out, "-m", "psnr,ssim") == 0
    full = out.read_text()
    lines = full.splitlines(keepends=True)
    # A run killed while writing row 3: header, row 1, row 2 cut mid-line, no newline.
    out.write_text(lines[0] + lines[1] + lines[2][:40])

    loaded: list[str] = []
    real = scoring.iqa_io.load_image
    monkeypatch.setattr(
        scoring.iqa_io, "load_image", lambda p, **kw: loaded.append(Path(p).name) or real(p, **kw)
    )
    assert _score(dist, ref, out, "-m", "psnr,ssim", "--resume") == 0
    assert sorted(loaded) == ["b.png", "b.png", "c.png", "c.png"]  # dist + ref, not a.png
    assert out.read_text().startswith(lines[0] + lines[1])  # the finished row is untouched
    assert sorted(out.read_text().splitlines()) == sorted(full.splitlines())

    loaded.clear()
    assert _score(dist, ref, out, "-m", "psnr,ssim", "--resume") == 0
    assert loaded == []  # nothing left to do
    assert len(_read(out)[1]) == 3


def test_resume_retries_rows_with_an_error(pairs, tmp_path, capsys):
    dist, ref = pairs
    out = tmp_path / "s.csv"
    good = (dist / "b.png").read_bytes()
    (dist / "b.png").write_bytes(good[: len(good) // 2])
    assert _score(dist, ref, out, "-m", "psnr") == 1
    capsys.readouterr()
    (dist / "b.png").write_bytes(good)
    assert _score(dist, ref, out, "-m", "psnr", "--resume") == 0
    _, rows = _read(out)
    assert len(rows) == 3 and all(r["error"] == "" and r["psnr"] for r in rows)
    assert "(2 from the earlier run)" in capsys.readouterr().out


def test_truncated_image_gets_an_error_row_and_the_run_goes_on(pairs, tmp_path, capsys):
    dist, ref = pairs
    data = (dist / "b.png").read_bytes()
    (dist / "b.png").write_bytes(data[: len(data) // 2])
    out = tmp_path / "s.csv"
    assert _score(dist, ref, out, "-m", "psnr,ssim") == 1
    rows = _by_name(_read(out)[1])
    assert rows["b"]["psnr"] == rows["b"]["ssim"] == "" and rows["b"]["error"]
    for name in ("a", "c"):
        assert rows[name]["error"] == "" and float(rows[name]["psnr"]) > 20
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {dist / 'b.png'}: {rows['b']['error']}"]
    assert str(dist / "b.png") not in rows["b"]["error"]  # the path is said once, not twice


def test_size_mismatch_gets_an_error_row(pairs, tmp_path, rng, capsys):
    dist, ref = pairs
    _save(_photo(rng, 48, 64), dist / "c.png")
    out = tmp_path / "s.csv"
    assert _score(dist, ref, out, "-m", "psnr", "--batch-size", "3") == 1
    rows = _by_name(_read(out)[1])
    assert "64x48 differs from its reference" in rows["c"]["error"] and rows["c"]["psnr"] == ""
    assert rows["a"]["error"] == rows["b"]["error"] == ""
    assert "error: " in capsys.readouterr().err


def test_unreadable_reference_fails_its_images_only(pairs, tmp_path, capsys):
    dist, ref = pairs
    (ref / "b.png").write_bytes(b"not an image")
    out = tmp_path / "s.csv"
    assert _score(dist, ref, out, "-m", "psnr") == 1
    rows = _by_name(_read(out)[1])
    assert rows["b"]["error"].startswith(f"reference {ref / 'b.png'}: ")
    assert rows["a"]["psnr"] and rows["c"]["psnr"]


def test_unpaired_image_gets_an_error_row(pairs, tmp_path, rng, capsys):
    dist, ref = pairs
    _save(_photo(rng, 64, 64), dist / "zzz.png")
    out = tmp_path / "s.csv"
    assert _score(dist, ref, out, "-m", "psnr") == 1
    rows = _by_name(_read(out)[1])
    assert "no reference" in rows["zzz"]["error"] and rows["zzz"]["ref"] == ""
    assert all(rows[n]["psnr"] for n in NAMES)
    # ... but when nothing pairs, --ref is wrong: one error, no file of error rows
    other = tmp_path / "other"
    _save(_photo(rng, 64, 64), other / "q.png")
    assert _score(dist, other, tmp_path / "t.csv", "-m", "psnr") == 1
    assert "no reference" in capsys.readouterr().err and not (tmp_path / "t.csv").exists()


def test_metric_input_error_costs_only_that_metric(pairs, tmp_path, capsys):
    dist, ref = pairs  # 64x64: too small for ms_ssim's five scales
    out = tmp_path / "s.csv"
    assert _score(dist, ref, out, "-m", "psnr,ms_ssim", "--batch-size", "2") == 1
    for row in _read(out)[1]:
        assert row["ms_ssim"] == "" and row["error"].startswith("ms_ssim: ")
        assert float(row["psnr"]) > 20
    assert len(capsys.readouterr().err.strip().splitlines()) == 3


def test_batch_size_does_not_change_the_results(pairs, tmp_path, rng):
    dist, ref = pairs
    for i in range(2):  # a second size, so batches must split by size
        img = _photo(rng, 80, 72)
        _save(img, ref / f"d{i}.png")
        _save(np.clip(img.astype(int) + 9, 0, 255).astype(np.uint8), dist / f"d{i}.png")
    one, three = tmp_path / "one.csv", tmp_path / "three.csv"
    assert _score(dist, ref, one, "-m", "psnr,ssim_y") == 0
    assert _score(dist, ref, three, "-m", "psnr,ssim_y", "--batch-size", "3") == 0
    rows1, rows3 = _read(one)[1], _read(three)[1]
    assert [r["image"] for r in rows1] == [r["image"] for r in rows3]  # same order too
    for r1, r3 in zip(rows1, rows3, strict=True):
        assert r1["psnr"] == r3["psnr"]
        # float32 reductions may round differently by batch shape: agree to float precision
        assert float(r1["ssim_y"]) == pytest.approx(float(r3["ssim_y"]), rel=1e-6, abs=1e-7)


# --- a stand-in no-reference metric: the real ones arrive later, the CLI must already cope


def _mean_brightness(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(1, 2, 3))


@pytest.fixture
def fake_nr(monkeypatch):
    spec = dataclasses.replace(
        METRICS["psnr"],
        name="fake_nr",
        kind="NR",
        higher_is_better=False,
        score_range=(0.0, 1.0),
        summary="mean brightness (test stand-in)",
        function=_mean_brightness,
        options={},
        range_option=None,
    )
    table = MappingProxyType({**METRICS, "fake_nr": spec})
    monkeypatch.setattr(registry, "METRICS", table)
    monkeypatch.setattr(cli, "METRICS", table)
    return spec


def test_no_reference_metrics_need_no_ref(pairs, tmp_path, fake_nr, capsys):
    dist, ref = pairs
    out = tmp_path / "nr.csv"
    assert _score(dist, None, out, "-m", "fake_nr") == 0
    header, rows = _read(out)
    assert header == ["image", "ref", "fake_nr", "error"]
    for row in rows:
        assert row["ref"] == ""
        assert float(row["fake_nr"]) == pytest.approx(
            create_metric("fake_nr")(row["image"]).item(), rel=1e-6
        )
    assert main(["list", "--kind", "NR"]) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["fake_nr", "NR", "lower", "is", "better", "[0,", "1]"] in [r[:7] for r in listed]
    assert _score(dist, ref, tmp_path / "nr2.csv", "-m", "fake_nr") == 0
    assert "--ref is ignored" in capsys.readouterr().err
    assert all(r["ref"] == "" for r in _read(tmp_path / "nr2.csv")[1])
    # mixed: the FR metric gets the reference, the NR one does not
    mixed = tmp_path / "mixed.csv"
    assert _score(dist, ref, mixed, "-m", "psnr,fake_nr", "--batch-size", "3") == 0
    for r_mixed, r_nr in zip(_read(mixed)[1], rows, strict=True):
        assert r_mixed["ref"] and r_mixed["fake_nr"] == r_nr["fake_nr"]


# ------------------------------------------------------------------------------- evaluate


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def scored(tmp_path, rng):
    """scores.csv (psnr, ssim, an unknown 'mine' column) and a DMOS file (lower is better)."""
    n = 20
    mos = np.linspace(1, 5, n)
    psnr = 20 + 3 * mos + rng.normal(0, 1.5, n)  # noisy, so SRCC is below 1
    ssim = 0.5 + 0.09 * mos + rng.normal(0, 0.05, n)
    mine = -mos + rng.normal(0, 0.3, n)  # a lower-is-better score of unknown name
    names = [f"img{i:02d}" for i in range(n)]
    scores = _write_csv(
        tmp_path / "scores.csv",
        ["image", "ref", "psnr", "ssim", "mine", "error"],
        [
            [f"/data/dist/{nm}.png", "/data/ref/r.png", p, s, m, ""]
            for nm, p, s, m in zip(names, psnr, ssim, mine, strict=True)
        ],
    )
    # a true DMOS (6 - MOS); names with another extension: the join falls back to the stem
    mos_file = _write_csv(
        tmp_path / "dmos.csv",
        ["dist", "ref", "dmos"],
        [[f"{nm}.bmp", "r.bmp", 6 - v] for nm, v in zip(names, mos, strict=True)][::-1],
    )
    return scores, mos_file, {"psnr": psnr, "ssim": ssim, "mine": mine, "mos": mos}


def test_evaluate_table(scored, capsys):
    scores, mos, data = scored
    assert main(["evaluate", str(scores), "--mos", str(mos), "--boot", "200"]) == 0
    out = capsys.readouterr().out
    assert "20 image(s) matched" in out and "'dmos' by 'dist'" in out
    for m in ("psnr", "ssim", "mine"):
        line = next(ln for ln in out.splitlines() if ln.startswith(m + " "))
        srcc = sps.spearmanr(data[m], data["mos"])[0]
        assert f"{srcc:.4f}" in line and " 20 " in line and "5pl" in line


def test_evaluate_json_matches_scipy_and_uses_the_registry_direction(scored, capsys):
    scores, mos, data = scored
    assert (
        main(
            ["evaluate", str(scores), "--mos", str(mos), "--json", "--boot", "200", "--fit", "4pl"]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["matched"] == 20 and doc["mos_column"] == "dmos" and doc["fit"] == "4pl"
    res = doc["metrics"]
    assert set(res) == {"psnr", "ssim", "mine"}
    for m in res:
        assert res[m]["n"] == 20
        assert res[m]["srcc"] == pytest.approx(sps.spearmanr(data[m], data["mos"])[0])
        assert res[m]["krcc"] == pytest.approx(sps.kendalltau(data[m], data["mos"])[0])
        lo, hi = res[m]["ci"]["srcc"]
        assert lo <= res[m]["srcc"] <= hi
    assert doc["mos_higher_is_better"] is False and "'dmos'" in doc["mos_direction"]
    # against a DMOS the higher-is-better PSNR is negated, so a good metric shows SRCC > 0
    assert res["psnr"]["higher_is_better"] is True and res["psnr"]["negated"] is True
    assert res["mine"]["higher_is_better"] is None  # unknown column: taken as higher is better
    assert res["mine"]["srcc"] < -0.8


def test_evaluate_refuses_text_among_scores_and_a_join_two_files_share(scored, capsys):
    scores, mos, _ = scored
    rows = scores.read_text().splitlines()
    rows[3] = rows[3].replace(rows[3].split(",")[2], "N/A", 1)  # a psnr cell that is text
    scores.write_text("\n".join(rows) + "\n")
    assert main(["evaluate", str(scores), "--mos", str(mos), "--boot", "0"]) == 1
    assert "line 4: psnr 'N/A' is not a number" in capsys.readouterr().err
    # img00.png and img00.jpg would both take the MOS of img00.bmp
    twice = _write_csv(
        scores.with_name("twice.csv"),
        ["image", "psnr"],
        [["x/img00.png", 1], ["x/img00.jpg", 2], ["x/img01.png", 3], ["x/img02.png", 4]],
    )
    assert main(["evaluate", str(twice), "--mos", str(mos), "--boot", "0"]) == 1
    err = capsys.readouterr().err
    assert "img00.png and img00.jpg both match the MOS of img00.* in" in err
    lines = mos.read_text().splitlines()  # a MOS of nan: named by its line, like text
    mos.write_text("\n".join([*lines[:2], lines[2].rsplit(",", 1)[0] + ",nan", *lines[3:]]))
    assert main(["evaluate", str(scores.with_name("twice.csv")), "--mos", str(mos)]) == 1
    assert "line 3: dmos 'nan' of" in capsys.readouterr().err


def test_evaluate_mos_direction_can_be_given(scored, capsys):
    scores, mos, data = scored
    argv = ["evaluate", str(scores), "--mos", str(mos), "--json", "--boot", "0"]
    assert main([*argv, "--mos-direction", "higher"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mos_higher_is_better"] is True and doc["mos_direction"] == "given"
    psnr = doc["metrics"]["psnr"]
    assert psnr["negated"] is False
    assert psnr["srcc"] == pytest.approx(-sps.spearmanr(data["psnr"], data["mos"])[0])
    assert main([*argv, "--mos-direction", "up"]) == 2


def test_evaluate_plot_writes_one_png_per_metric(scored, tmp_path, capsys):
    scores, mos, _ = scored
    plots = tmp_path / "plots"
    assert (
        main(
            [
                "evaluate",
                str(scores),
                "--mos",
                str(mos),
                "--boot",
                "0",
                "--fit",
                "4pl",
                "--plot",
                str(plots),
            ]
        )
        == 0
    )
    files = sorted(p.name for p in plots.iterdir())
    assert files == ["mine.png", "psnr.png", "ssim.png"]
    for f in files:
        with Image.open(plots / f) as im:
            assert im.format == "PNG" and im.width > 300
    assert "[" not in capsys.readouterr().out.splitlines()[2]  # --boot 0: no CI brackets


def test_evaluate_without_a_fit_says_so(scored, capsys):
    scores, mos, _ = scored
    assert main(["evaluate", str(scores), "--mos", str(mos), "--boot", "0", "--fit", "none"]) == 0
    out = capsys.readouterr().out
    assert "PLCC and RMSE are of the scores themselves (no logistic map)" in out
    assert "none logistic" not in out


def test_evaluate_skips_failed_and_infinite_scores(tmp_path, capsys):
    rows = [[f"i{k}.png", "", 10.0 + k, ""] for k in range(5)]
    rows += [["i5.png", "", "inf", ""], ["i6.png", "", "", "psnr: boom"]]
    scores = _write_csv(tmp_path / "s.csv", ["image", "ref", "psnr", "error"], rows)
    mos = _write_csv(
        tmp_path / "m.csv", ["image", "mos"], [[f"i{k}.png", float(k)] for k in range(7)]
    )
    assert main(["evaluate", str(scores), "--mos", str(mos), "--json", "--boot", "0"]) == 0
    res = json.loads(capsys.readouterr().out)["metrics"]["psnr"]
    assert res["n"] == 5 and res["left_out"] == 2 and res["srcc"] == pytest.approx(1.0)


def test_evaluate_errors(scored, tmp_path, capsys):
    scores, mos, _ = scored
    assert main(["evaluate", str(scores), "--mos", str(mos), "--mos-column", "mos"]) == 2
    err = capsys.readouterr().err
    assert "has no column 'mos'; its columns: dist, ref, dmos" in err

    bare = _write_csv(tmp_path / "bare.csv", ["file", "quality"], [["img00.png", 1.0]])
    assert main(["evaluate", str(scores), "--mos", str(bare)]) == 1
    err = capsys.readouterr().err
    assert "no image column" in err and "its columns: file, quality" in err

    other = _write_csv(
        tmp_path / "other.csv", ["image", "mos"], [["x.png", 1.0], ["y.png", 2.0], ["z.png", 3.0]]
    )
    assert main(["evaluate", str(scores), "--mos", str(other)]) == 1
    assert "no image of" in capsys.readouterr().err

    two = _write_csv(tmp_path / "two.csv", ["image", "mos"], [["img00.png", 1], ["img01", 2]])
    assert main(["evaluate", str(scores), "--mos", str(two)]) == 1
    assert "only 2 image(s) have both a score and a MOS" in capsys.readouterr().err

    assert main(["evaluate", str(tmp_path / "none.csv"), "--mos", str(mos)]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["evaluate", str(scores), "--mos", str(mos), "--fit", "6pl"]) == 2


def test_score_then_evaluate_on_kadid(tmp_path, capsys):
    kadid = fixture_path("kadid_mini")
    dist = sorted(p for p in kadid.glob("I01_*.png"))
    out = tmp_path / "kadid.csv"
    assert _score(dist, kadid / "I01.png", out, "-m", "psnr,ssim") == 0
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                str(out),
                "--mos",
                str(kadid / "dmos.csv"),
                "--json",
                "--boot",
                "100",
                "--fit",
                "none",
                "--mos-direction",
                "higher",  # KADID-10k's "dmos" is higher-is-better, despite its name
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    _, rows = _read(out)
    dmos = {r["dist"]: float(r["dmos"]) for r in _read(kadid / "dmos.csv")[1]}
    for m in ("psnr", "ssim"):
        x = [float(r[m]) for r in rows]
        y = [dmos[Path(r["image"]).name] for r in rows]
        assert doc["metrics"][m]["n"] == 4
        assert doc["metrics"][m]["srcc"] == pytest.approx(sps.spearmanr(x, y)[0])


def test_demo_command(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("iqa4k.demo.demo_main", lambda out: calls.append(out) or 0)
    assert main(["demo", "--out", str(tmp_path / "d")]) == 0
    assert calls == [str(tmp_path / "d")]


def test_help_and_version_exit_cleanly(capsys):
    assert main(["--version"]) == 0
    assert "iqa4k" in capsys.readouterr().out
    assert main([]) == 2  # no command: argparse usage error

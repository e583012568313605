"""Inputs a careless or hostile user gives: each gets a clear error (a row's reason, or one
line and exit code 2/1) and no finished work is lost. One test per case or class of cases."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import iqa4k
from iqa4k.classic.separable import valid_filter
from iqa4k.cli import main
from iqa4k.errors import ImageReadError, InputError, OptionError
from iqa4k.io import load_image
from iqa4k.models import ENTRIES
from iqa4k.models.checkpoint import CheckpointError, save_checkpoint
from iqa4k.models.loading import checkpoint_meta
from iqa4k.scoring import score_files
from iqa4k.testing import deterministic_init

SCRIPT = Path(sys.executable).with_name("iqa4k")


def _image(path: Path, seed: int = 0, size: tuple[int, int] = (200, 200)) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------ file names


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS refuses non-UTF-8 file names")
def test_a_file_name_with_a_non_utf8_byte_is_scored_and_resumed(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    odd = folder / os.fsdecode(b"caf\xe9.png")
    _image(odd)
    _image(folder / "z.png", 1)
    out = tmp_path / "s.csv"
    run = score_files(folder, "piqe,niqe", out, progress=False)
    assert not run.failures and len(run.rows) == 2
    again = score_files(folder, "piqe,niqe", out, resume=True, progress=False)
    assert again.resumed == 2  # the odd name is found again: nothing is scored twice
    rows = _rows(out)
    assert [Path(r["image"]).name for r in rows] == [odd.name, "z.png"]


def test_the_same_file_twice_is_scored_once(tmp_path):
    a = _image(tmp_path / "a.png")
    run = score_files([a, tmp_path / "." / "a.png"], "piqe", tmp_path / "s.csv", progress=False)
    assert len(run.rows) == 1


def test_an_output_that_is_a_folder_is_refused(tmp_path, capsys):
    a = _image(tmp_path / "a.png")
    assert main(["score", str(a), "-m", "piqe", "-o", str(tmp_path)]) == 2
    assert f"{tmp_path} is a folder" in capsys.readouterr().err


# --------------------------------------------------------------------------------- options


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_option_values_are_refused(value):
    for metric, option in (("psnr", "crop_border"), ("ssim", "k1"), ("ssim", "k2")):
        with pytest.raises(OptionError, match=f"{option} must be a finite number, got {value}"):
            iqa4k.create_metric(metric, **{option: value})
    with pytest.raises(OptionError, match="win_sigma must be a finite number"):
        iqa4k.create_metric("ssim", win_sigma=value)


@pytest.mark.parametrize("metric", ["ssim", "ms_ssim"])
def test_window_and_scale_options_that_have_no_meaning_are_refused(metric):
    # An even window has no centre pixel (the symmetric filter would read past its taps).
    with pytest.raises(OptionError, match="win_size must be odd"):
        iqa4k.create_metric(metric, win_size=12)
    with pytest.raises(ValueError, match="odd number of taps"):
        valid_filter(np.zeros((20, 20)), np.full(4, 0.25))
    if metric == "ms_ssim":
        for weights in [(), (0.0, 0.0), (-1.0, 2.0)]:
            with pytest.raises(OptionError, match="one weight per scale, none negative"):
                iqa4k.create_metric(metric, scale_weights=weights)
        # the command line's "(0.5,0.5)" arrives split at the comma
        metric = iqa4k.create_metric(metric, scale_weights=["(0.5", "0.5)"])
        assert metric.options["scale_weights"] == (0.5, 0.5)


def test_the_tensor_value_range_is_refused_when_scoring_files(tmp_path, capsys):
    # Files are decoded to [0, 1]: data_range=255 there would divide them by 255 again.
    a = _image(tmp_path / "a.png")
    argv = ["score", str(a), "--ref", str(a), "-m", "psnr,niqe", "-o", str(tmp_path / "s.csv")]
    assert main([*argv, "--opt", "data_range=255"]) == 2
    assert "data_range is the value range of tensor inputs" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_a_report_never_overwrites_a_file_that_is_not_a_page(tmp_path, capsys):
    a = _image(tmp_path / "a.png")
    scores = tmp_path / "s.csv"
    assert main(["score", str(a), "-m", "piqe", "-o", str(scores), "--no-progress"]) == 0
    before = scores.read_bytes()
    assert main(["report", str(scores), "-o", str(scores)]) == 1  # its own input, by mistake
    assert "s.csv exists and is not an HTML page: not overwritten" in capsys.readouterr().err
    assert scores.read_bytes() == before
    page = tmp_path / "r.html"
    for _ in range(2):  # a page is replaced by the next one
        assert main(["report", str(scores), "-o", str(page)]) == 0


def test_a_json_output_name_is_refused_not_written_as_csv(tmp_path, capsys):
    a = _image(tmp_path / "a.png")
    assert main(["score", str(a), "-m", "piqe", "-o", str(tmp_path / "s.json")]) == 2
    assert "JSON lines (.jsonl)" in capsys.readouterr().err and not (tmp_path / "s.json").exists()


def test_an_output_below_a_file_names_that_file(tmp_path, capsys):
    a = _image(tmp_path / "a.png")
    assert main(["score", str(a), "-m", "piqe", "-o", f"{a}/s.csv", "--no-progress"]) == 1
    assert f"error: {a} is a file, not a folder" in capsys.readouterr().err


def test_a_wrong_option_type_shows_the_value_given(tmp_path, capsys):
    a = _image(tmp_path / "a.png")
    argv = ["score", str(a), "--ref", str(a), "-m", "psnr", "-o", str(tmp_path / "s.csv")]
    assert main([*argv, "--opt", "crop_border=abc"]) == 2
    assert "crop_border must be of type int, got 'abc'" in capsys.readouterr().err


@pytest.mark.parametrize("border", [100, 150, 400])
def test_a_crop_border_that_leaves_nothing_is_an_error_not_nan(tmp_path, border):
    x = torch.rand(1, 3, 200, 300)
    with pytest.raises(InputError, match=f"crop_border={border} leaves nothing of a 300x200"):
        iqa4k.create_metric("psnr", crop_border=border)(x, x * 0.9)
    a = _image(tmp_path / "a.png")
    (tmp_path / "refs").mkdir()
    b = _image(tmp_path / "refs" / "a.png", 1)
    run = score_files(
        a, "psnr,ssim", tmp_path / "s.csv", ref=b, options={"crop_border": border}, progress=False
    )
    (row,) = run.rows
    assert row.get("psnr", "") == row.get("ssim", "") == "" and "leaves nothing" in row["error"]


# ---------------------------------------------------------------------------------- devices


@pytest.mark.parametrize("device", ["banana", "cuda:7"])
def test_a_device_that_is_not_here_is_one_line(tmp_path, capsys, device):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    a = _image(tmp_path / "a.png")
    assert (
        main(["score", str(a), "-m", "piqe", "-o", str(tmp_path / "s.csv"), "--device", device])
        == 2
    )
    err = capsys.readouterr().err
    assert f"device '{device}'" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------- resume, outputs


def test_resume_on_a_file_that_is_not_a_csv(tmp_path, capsys):
    a = _image(tmp_path / "a.png")
    out = tmp_path / "s.csv"
    out.write_bytes(bytes(range(256)) * 4)
    assert main(["score", str(a), "-m", "piqe", "-o", str(out), "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err and out.stat().st_size == 1024  # untouched


def test_resume_rescores_a_row_cut_inside_its_number(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        _image(folder / f"{i}.png", i)
    out = tmp_path / "s.csv"
    full = score_files(folder, "piqe", out, progress=False)
    text = out.read_text()
    cut = text.rstrip("\r\n")
    cut = cut[: cut.rindex(".") + 2]  # the last number loses its tail, as a kill leaves it
    out.write_text(cut)
    run = score_files(folder, "piqe", out, resume=True, progress=False)
    assert run.resumed == 2
    assert [r["piqe"] for r in _rows(out)] == [r["piqe"] for r in full.rows]


def test_resume_refuses_rows_scored_with_other_options_or_references(tmp_path):
    dist, ref, other = (tmp_path / n for n in ("dist", "ref", "other"))
    for folder in (dist, ref, other):
        folder.mkdir()
    for i in range(2):
        _image(dist / f"{i}.png", i)
        _image(ref / f"{i}.png", 10 + i)
        _image(other / f"{i}.png", 20 + i)
    out = tmp_path / "s.csv"
    score_files(dist / "0.png", "psnr", out, ref=ref, progress=False)
    before = out.read_bytes()
    with pytest.raises(OptionError, match="psnr.crop_border: 0 then, 50 now"):
        score_files(dist, "psnr", out, ref=ref, resume=True, options={"crop_border": 50})
    with pytest.raises(OptionError, match="0.png was scored against .*ref/0.png, this run pairs"):
        score_files(dist, "psnr", out, ref=other, resume=True, progress=False)
    assert out.read_bytes() == before  # nothing of the first run is lost
    run = score_files(dist, "psnr", out, ref=ref, resume=True, progress=False)
    assert run.resumed == 1 and len(_rows(out)) == 2
    assert json.loads(Path(f"{out}.options.json").read_text())["psnr"]["crop_border"] == 0


def test_an_image_without_a_usable_reference_keeps_its_no_reference_scores(tmp_path):
    dist, ref = tmp_path / "dist", tmp_path / "ref"
    dist.mkdir()
    ref.mkdir()
    for name in ("ok", "size"):
        _image(dist / f"{name}.png", 1)
    _image(dist / "alone.png", 2)  # no reference of that name
    _image(ref / "ok.png", 3)
    _image(ref / "size.png", 4, size=(100, 100))  # another size
    run = score_files(dist, "psnr,piqe", tmp_path / "s.csv", ref=ref, progress=False)
    rows = {Path(r["image"]).stem: r for r in _rows(tmp_path / "s.csv")}
    assert rows["ok"]["psnr"] and rows["ok"]["piqe"] and not rows["ok"]["error"]
    piqe = iqa4k.create_metric("piqe")
    for name, why in (("alone", "reference"), ("size", "differs from its reference")):
        assert rows[name]["piqe"] == repr(piqe(str(dist / f"{name}.png")).item())
        assert rows[name]["psnr"] == "" and why in rows[name]["error"]
    assert len(run.failures) == 2
    # with full-reference metrics alone, an image without a reference is not even decoded
    (dist / "alone.png").write_bytes(b"not an image")
    run = score_files(dist, "psnr", tmp_path / "fr.csv", ref=ref, progress=False)
    why = dict((Path(p).name, w) for p, w in run.failures)["alone.png"]
    assert "reference" in why and "decode" not in why


def test_images_in_subfolders_are_reached_by_a_recursive_glob(tmp_path):
    (tmp_path / "set" / "blur").mkdir(parents=True)
    _image(tmp_path / "set" / "blur" / "a.png")
    with pytest.raises(InputError, match="without their subfolders: name those too, or quote"):
        score_files(tmp_path / "set", "piqe", tmp_path / "s.csv", progress=False)
    run = score_files(f"{tmp_path}/set/**/*.png", "piqe", tmp_path / "s.csv", progress=False)
    assert [Path(r["image"]).name for r in run.rows] == ["a.png"]


def test_two_writers_of_one_csv_the_second_is_refused(tmp_path):
    a = _image(tmp_path / "a.png")
    out = tmp_path / "s.csv"
    from iqa4k.results_file import output_lock

    with output_lock(out):
        with pytest.raises(
            OptionError, match=f"{out} is being written by another iqa4k .*pid {os.getpid()}"
        ):
            score_files(a, "piqe", out, overwrite=True, progress=False)
    assert score_files(a, "piqe", out, overwrite=True, progress=False).rows  # free again


# ------------------------------------------------------------------------------ checkpoints


def _small(path: Path, **edit) -> Path:
    entry = ENTRIES["smalliqa"]
    state = deterministic_init(entry.build()).state_dict()
    meta = checkpoint_meta(entry, "trained")
    for key, value in edit.items():
        if key == "nan":
            state[value] = torch.full_like(state[value], math.nan)
        else:
            meta[key] = value
    return save_checkpoint(path, state, meta)


def test_a_truncated_safetensors_checkpoint(tmp_path):
    path = _small(tmp_path / "s.safetensors")
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*s.safetensors"):
        iqa4k.create_metric("smalliqa", weights=str(path))


def test_edited_metadata_options_are_a_clear_error(tmp_path):
    path = _small(tmp_path / "s.safetensors", options={"widht": 3})
    with pytest.raises(CheckpointError, match="build options .*widht"):
        iqa4k.create_metric("smalliqa", weights=str(path))


def test_non_finite_weights_are_refused_at_load(tmp_path):
    name = next(iter(ENTRIES["smalliqa"].build().state_dict()))
    path = _small(tmp_path / "s.safetensors", nan=name)
    with pytest.raises(CheckpointError, match=f"non-finite values in {name}"):
        iqa4k.create_metric("smalliqa", weights=str(path))


@pytest.mark.parametrize("content", [b"", b"\x80\x04K\x01.", b"not a pickle at all"])
def test_an_empty_or_foreign_file_as_weights(tmp_path, content):
    path = tmp_path / "w.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        iqa4k.create_metric("smalliqa", weights=str(path))
    assert len(str(err.value).splitlines()) == 1 and "w.pth" in str(err.value)


# ---------------------------------------------------------------------------------- images


def test_a_flat_image_gets_a_reason_not_a_silent_nan(tmp_path):
    flat = tmp_path / "flat.png"
    Image.new("RGB", (256, 256), (128, 128, 128)).save(flat)
    run = score_files(flat, "niqe,brisque,piqe", tmp_path / "s.csv", progress=False)
    (row,) = run.rows
    assert row.get("niqe", "") == row.get("brisque", "") == "" and "flat" in row["error"]
    assert "nan" not in (tmp_path / "s.csv").read_text().lower()


def test_a_float64_image_does_not_change_its_batch_neighbours_scores(tmp_path):
    folder = tmp_path / "mix"
    folder.mkdir()
    _image(folder / "a.png", seed=1)
    pixels = np.asarray(Image.open(_image(tmp_path / "b.png", seed=2)), dtype=np.float64) / 255
    cv2.imwrite(str(folder / "b.tif"), pixels[:, :, ::-1])  # float64 samples, read as such
    assert load_image(folder / "b.tif").dtype == torch.float64
    alone, batched = (tmp_path / f"{n}.csv" for n in ("alone", "batched"))
    score_files(folder, "niqe,piqe", alone, progress=False)
    score_files(folder, "niqe,piqe", batched, progress=False, batch_size=2)
    assert _rows(alone) == _rows(batched)


def test_a_broken_link_in_a_folder_gets_a_row_saying_so(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _image(folder / "a.png")
    (folder / "b.png").symlink_to(tmp_path / "gone.png")
    run = score_files(folder, "piqe", tmp_path / "s.csv", progress=False)
    assert [Path(p).name for p, _ in run.failures] == ["b.png"]
    assert f"a broken link (to {tmp_path / 'gone.png'})" in run.failures[0][1]


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageReadError, match="not a regular file"):
        load_image(fifo)
    out = tmp_path / "s.csv"
    done = subprocess.run(
        [str(SCRIPT), "score", str(fifo), "-m", "piqe", "-o", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "not a regular file" in done.stderr


def test_a_multi_frame_file_says_so(tmp_path):
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageReadError, match="2 frames"):
        load_image(tmp_path / "a.gif")


def test_a_float32_rgb_tiff_is_read(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rgb = np.random.default_rng(5).random((40, 60, 3), dtype=np.float32)
    assert cv2.imwrite(str(tmp_path / "f.tif"), rgb[:, :, ::-1])
    x = load_image(tmp_path / "f.tif")
    assert torch.equal(x, torch.from_numpy(rgb).permute(2, 0, 1))
    assert cv2.imwrite(str(tmp_path / "g.tif"), rgb[:, :, ::-1] * 3)
    with pytest.raises(ImageReadError, match=r"g.tif: image values must lie in \[0, 1\]"):
        load_image(tmp_path / "g.tif")


def test_psnr_of_identical_images_has_a_zero_gradient():
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    value = iqa4k.create_metric("psnr")(x, x.detach().clone())
    assert math.isinf(value.item())
    value.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


# ---------------------------------------------------------------------------- output formats


def test_rows_to_stdout_and_the_summary_to_stderr(tmp_path, capsys):
    a, b = _image(tmp_path / "a.png"), _image(tmp_path / "b.png", 1)
    assert main(["score", str(a), str(b), "-m", "piqe", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(out.splitlines()))
    assert [Path(r["image"]).name for r in rows] == ["a.png", "b.png"] and float(rows[0]["piqe"])
    assert "2 of 2 image(s) scored by every metric" in err
    assert main(["score", str(a), "-m", "piqe", "--format", "jsonl", "--no-progress"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["piqe"] == pytest.approx(float(rows[0]["piqe"]))
    assert main(["score", str(a), "-m", "piqe", "-o", "-", "--resume"]) == 2
    assert "--resume needs an output file" in capsys.readouterr().err


def _three_and_a_tiny_one(folder: Path) -> Path:
    folder.mkdir()
    for i in range(3):
        _image(folder / f"{i}.png", i)
    _image(folder / "3.png", 3, size=(20, 20))  # too small for NIQE: an error row
    return folder


def test_json_lines_resume_rescores_a_cut_line(tmp_path):
    folder = _three_and_a_tiny_one(tmp_path / "in")
    out = tmp_path / "s.jsonl"
    full = score_files(folder, "piqe,niqe", out, progress=False)
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["niqe"] is None for d in docs] == [False, False, False, True]
    assert set(docs[0]) == {"image", "ref", "piqe", "niqe", "error"} and docs[3]["error"]
    text = out.read_text()
    out.write_text(text[: text.index("\n", text.index("\n") + 1) + 20])  # cut inside line 3
    run = score_files(folder, "piqe,niqe", out, resume=True, progress=False)
    assert run.resumed == 2
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert again == docs and len(full.rows) == 4
    # a JSON-lines file is as good as a CSV to `iqa4k report` (and `evaluate`)
    assert main(["report", str(out), "-o", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().count("data:image/jpeg") == 2 * 4


def test_parquet_is_written_whole_at_the_end_and_resumes_from_its_staged_rows(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    folder = _three_and_a_tiny_one(tmp_path / "in")
    out = tmp_path / "s.parquet"
    score_files(folder, "piqe,niqe", out, progress=False)
    table = pq.read_table(out)
    assert table.column_names == ["image", "ref", "piqe", "niqe", "error"]
    assert str(table.schema.field("niqe").type) == "double"
    docs = table.to_pylist()
    assert [d["niqe"] is None for d in docs] == [False, False, False, True] and docs[3]["error"]
    staged = out.with_name("s.parquet.partial.jsonl")
    assert not staged.exists()
    # a run killed after two rows, one cut short: its staged rows are what --resume continues
    lines = [json.dumps(d) for d in docs[:2]]
    staged.write_text(lines[0] + "\n" + lines[1][:15])
    out.unlink()
    run = score_files(folder, "piqe,niqe", out, resume=True, progress=False)
    assert run.resumed == 1 and pq.read_table(out).to_pylist() == docs
    # the same rows as the CSV, to evaluate and report
    assert main(["report", str(out), "-o", str(tmp_path / "r.html")]) == 0
    with pytest.raises(OptionError, match="exists"):
        score_files(folder, "piqe", out, progress=False)
    assert main(["score", str(folder), "-m", "piqe", "--format", "parquet"]) == 2

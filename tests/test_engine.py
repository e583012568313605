"""Where scoring runs: the Ray engine gives the local engine's CSV value for value (any
number of workers, any batch size), survives a killed worker without losing or repeating a
row, and resumes like the local one; inputs from globs and manifest CSVs."""

from __future__ import annotations

import csv
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iqa4k.cli import main
from iqa4k.errors import InputError, OptionError
from iqa4k.models import ENTRIES
from iqa4k.models.checkpoint import save_checkpoint
from iqa4k.models.loading import checkpoint_meta
from iqa4k.scoring import score_files
from iqa4k.testing import deterministic_init


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """30 images of two sizes (so batches split), one unreadable file among them."""
    root = tmp_path_factory.mktemp("engine")
    rng = np.random.default_rng(7)
    for i in range(30):
        size = (224, 256) if i % 7 else (256, 224)
        noise = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
        Image.fromarray(noise).resize(size[::-1], Image.BICUBIC).save(root / f"{i:02d}.png")
    (root / "15.png").write_bytes(b"not an image")
    return root


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory) -> str:
    entry = ENTRIES["smalliqa"]
    net = deterministic_init(entry.build())
    path = tmp_path_factory.mktemp("w") / "small.safetensors"
    return str(save_checkpoint(path, net.state_dict(), checkpoint_meta(entry, "trained")))


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, namespace="iqa4k", log_to_driver=False)
    yield ray
    ray.shutdown()


METRICS = "piqe,niqe,smalliqa"


def test_ray_rows_equal_local_rows_whatever_workers_and_batch(
    folder, small_weights, tmp_path, ray_runtime
):
    opts = {"smalliqa.weights": small_weights}
    local = tmp_path / "local.csv"
    score_files(folder, METRICS, local, options=opts, progress=False)
    assert "15.png" in _text(local) and "not a PNG" in _text(local)  # the error row too
    for workers, batch in ((1, 1), (2, 4)):
        out = tmp_path / f"ray{workers}{batch}.csv"
        run = score_files(
            folder, METRICS, out, options=opts, batch_size=batch, engine="ray",
            workers=workers, progress=False,
        )  # fmt: skip
        assert len(run.rows) == 30 and len(run.failures) == 1
        assert _text(out) == _text(local)  # value for value, in the same order


def test_ray_resume_finishes_a_cut_run(folder, tmp_path, ray_runtime):
    local = tmp_path / "local.csv"
    score_files(folder, "piqe", local, progress=False)
    out = tmp_path / "ray.csv"
    lines = _text(local).splitlines(keepends=True)
    out.write_text("".join(lines[:12]), encoding="utf-8")  # header and 11 rows survived a kill
    run = score_files(folder, "piqe", out, resume=True, engine="ray", workers=2, progress=False)
    assert run.resumed == 11 and _text(out) == _text(local)


def _scoring_worker() -> int | None:
    """The pid of a Ray actor process busy in ``score`` (Ray titles it ``ray::_Scorer.score``)."""
    for entry in Path("/proc").iterdir():
        try:
            if (entry / "cmdline").read_bytes().startswith(b"ray::_Scorer.score"):
                return int(entry.name)
        except (OSError, ValueError):
            continue
    return None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker through /proc")
def test_a_killed_worker_costs_a_retry_not_a_row(folder, tmp_path, ray_runtime):
    local = tmp_path / "local.csv"
    score_files(folder, "niqe,piqe", local, progress=False)
    out = tmp_path / "ray.csv"
    killed: list[int] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            pid = _scoring_worker()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)  # in the middle of a chunk
                killed.append(pid)
            time.sleep(0.01)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    run = score_files(folder, "niqe,piqe", out, engine="ray", workers=2, progress=False)
    killer.join()
    assert killed, "no busy worker was found to kill"
    assert len(run.rows) == 30 and _text(out) == _text(local)  # none lost, none repeated


def test_engine_options_are_checked(folder, tmp_path, capsys):
    with pytest.raises(OptionError, match="engine must be one of local, ray"):
        score_files(folder, "piqe", tmp_path / "a.csv", engine="spark")
    argv = ["score", str(folder), "-m", "piqe", "-o", str(tmp_path / "b.csv"), "--engine", "x"]
    assert main(argv) == 2


# ----------------------------------------------------------------------------------- inputs


def test_a_quoted_glob_and_a_manifest_list_the_same_images(folder, tmp_path):
    by_glob = score_files(str(folder / "0*.png"), "piqe", tmp_path / "g.csv", progress=False)
    assert [Path(r["image"]).name for r in by_glob.rows] == [f"0{i}.png" for i in range(10)]
    with pytest.raises(InputError, match="no file matches this pattern"):
        score_files(str(folder / "*.jpeg"), "piqe", tmp_path / "n.csv", progress=False)
    manifest = tmp_path / "list.csv"
    names = [f"0{i}.png" for i in range(10)]
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([["image"], *[[str(folder / n)] for n in names]])
    by_list = score_files(manifest, "piqe", tmp_path / "m.csv", progress=False)
    assert [r["piqe"] for r in by_list.rows] == [r["piqe"] for r in by_glob.rows]


def test_a_manifest_with_a_ref_column_pairs_explicitly(folder, tmp_path):
    manifest = folder / "pairs.csv"
    rows = [["image", "ref"], ["01.png", "02.png"], ["", "04.png"], ["03.png", ""]]
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    run = score_files(manifest, "psnr", tmp_path / "p.csv", progress=False)
    first, second = run.rows
    assert first["ref"].endswith("02.png") and float(first["psnr"]) > 0
    assert "no reference in the manifest's ref column" in second["error"]
    manifest.unlink()

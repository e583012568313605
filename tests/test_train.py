"""Training: configs and their errors, learning on a tiny set, checkpoints that score through
create_metric, exact resume after an interruption, torchrun DDP equal to one process,
cross-validation and cross-dataset output files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import iqa4k
from iqa4k.cli import main
from iqa4k.data import open_dataset
from iqa4k.data.splits import kfold
from iqa4k.errors import InputError, OptionError
from iqa4k.models.checkpoint import read_checkpoint
from iqa4k.train.config import TrainConfig, load_config
from iqa4k.train.presets import PRESETS, get_preset
from iqa4k.train.trainer import train


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """12 images of 200x200 whose MOS is their sharpness: 6 scenes, a sharp and a blurred
    version of each (group = scene)."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    rows = ["image,mos,group"]
    for scene in range(6):
        pixels = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
        sharp = Image.fromarray(pixels)
        blurred = sharp.resize((50, 50), Image.BILINEAR).resize((200, 200), Image.BILINEAR)
        for name, im, mos in (
            (f"s{scene}_sharp.png", sharp, 80 + scene),
            (f"s{scene}_blur.png", blurred, 20 + scene),
        ):
            im.save(root / name)
            rows.append(f"{name},{mos},s{scene}")
    (root / "mos.csv").write_text("\n".join(rows) + "\n")
    return root


SCRIPT = Path(sys.executable).with_name("iqa4k")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _train_argv(tiny: Path, *settings: str) -> list[str]:
    """``iqa4k train`` of cpu-small on fold 0 of 3 of the tiny set, with ``--set`` settings."""
    argv = ["train", "--preset", "cpu-small", "--dataset", f"csv:{tiny}", "--split", "fold0"]
    argv += ["--folds", "3", "--no-progress"]
    for setting in ("batch_size=4", *settings):
        argv += ["--set", setting]
    return argv


def _config(**changes) -> TrainConfig:
    base = get_preset("cpu-small").replace(epochs=3, batch_size=4, val_fraction=0.2)
    return base.replace(**changes)


def test_config_files_name_the_unknown_key_and_its_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: smalliqa\nrelease: trained\nlr: 0.001\nlrr: 3\n")
    with pytest.raises(OptionError, match=r"run.yaml:4: unknown key 'lrr'; valid keys: model"):
        load_config(path)
    path.write_text("model: smalliqa\nrelease: trained\nepochs: many\n")
    with pytest.raises(OptionError, match=r"run.yaml:3: epochs must be an int, got 'many'"):
        load_config(path)
    path.write_text("model: smalliqa\nrelease: trained\nlr: 1e-3\nepochs: 2\n")
    assert load_config(path) == TrainConfig(model="smalliqa", release="trained", lr=1e-3, epochs=2)
    with pytest.raises(OptionError, match="unknown preset 'gpu-huge'; presets: cpu-small"):
        get_preset("gpu-huge")
    with pytest.raises(OptionError, match="batch_size must be positive"):
        _config(batch_size=0)
    assert set(PRESETS) >= {"cpu-small"}


def test_overfits_eight_images_and_the_checkpoint_scores_through_create_metric(tiny, tmp_path):
    data = open_dataset(f"csv:{tiny}")
    split = kfold(data.groups(), 3, seed=0, val_fraction=0.0)[0]
    config = _config(epochs=25, val_fraction=0.0, flip="none")
    result = train(config, data, split, tmp_path / "run", progress=False, log=lambda _: None)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0] / 2  # it learns
    # the checkpoint is a metric: same predictions through create_metric as during the test
    state, meta = read_checkpoint(tmp_path / "run" / "last.safetensors")
    assert meta["model"] == "smalliqa" and meta["mos_scale"]["low"] == 20.0
    metric = iqa4k.create_metric("smalliqa", weights=str(tmp_path / "run" / "last.safetensors"))
    rows = (tmp_path / "run" / "predictions.csv").read_text().splitlines()[1:]
    image, _, _, last = rows[0].split(",")
    scale = meta["mos_scale"]
    expected = (float(last) - scale["low"]) / (scale["high"] - scale["low"])
    assert metric(image).item() == pytest.approx(expected, abs=1e-5)
    assert result.test["last"]["srcc"] > 0.5  # sharp above blurred on unseen scenes


def test_resume_after_an_interruption_gives_the_same_weights(tiny, tmp_path):
    data = open_dataset(f"csv:{tiny}")
    split = kfold(data.groups(), 3, seed=0, val_fraction=0.5)[0]
    assert len(split.val) == 4  # enough to rank epochs, so best and last both matter
    config = _config(epochs=4)
    train(config, data, split, tmp_path / "whole", progress=False, log=lambda _: None)

    def stop_after_two(message: str) -> None:
        if message.startswith("epoch 2/"):
            raise KeyboardInterrupt  # as a kill after the epoch's files were written

    with pytest.raises(KeyboardInterrupt):
        train(config, data, split, tmp_path / "cut", progress=False, log=stop_after_two)
    (tmp_path / "cut" / "state.pt.tmp").write_bytes(b"half a file")  # a kill mid-write
    messages = []
    train(config, data, split, tmp_path / "cut", progress=False, log=messages.append)
    assert messages[0].startswith("resuming") and messages[1].startswith("epoch 3/")
    assert not any("cannot rank" in m for m in messages)
    for name in ("last.safetensors", "best.safetensors"):
        a, _ = read_checkpoint(tmp_path / "whole" / name)
        b, _ = read_checkpoint(tmp_path / "cut" / name)
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "whole" / "log.csv").read_text().count("\n") == 5
    with pytest.raises(iqa4k.IQAError, match="another config"):
        train(config.replace(lr=1e-2), data, split, tmp_path / "cut", progress=False)
    # the same images with a corrected label: the old weights must not be resumed
    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    with pytest.raises(KeyboardInterrupt):
        train(config, open_dataset(f"csv:{copy}"), split, copy / "run", log=stop_after_two)
    rows = (copy / "mos.csv").read_text().splitlines()
    (copy / "mos.csv").write_text("\n".join([rows[0], rows[1].replace(",80,", ",81,"), *rows[2:]]))
    with pytest.raises(iqa4k.IQAError, match="trained on other images or labels"):
        train(config, open_dataset(f"csv:{copy}"), split, copy / "run", progress=False)


def test_two_processes_under_torchrun_equal_one(tiny, tmp_path):
    common = _train_argv(tiny, "epochs=2")
    one = subprocess.run(
        [sys.executable, str(SCRIPT), *common, "--out", str(tmp_path / "one")],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert one.returncode == 0, one.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    two = subprocess.run(
        [*torchrun, "--master-port", "29533", str(SCRIPT), *common, "--out", str(tmp_path / "two")],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert two.returncode == 0, two.stderr[-2000:]
    a, _ = read_checkpoint(tmp_path / "one" / "last.safetensors")
    b, _ = read_checkpoint(tmp_path / "two" / "last.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    assert (tmp_path / "one" / "log.csv").read_text().splitlines()[1].split(",")[1][:6] == (
        (tmp_path / "two" / "log.csv").read_text().splitlines()[1].split(",")[1][:6]
    )


def test_crossval_and_test_commands_write_their_files(tiny, tmp_path, capsys):
    out = tmp_path / "cv"
    argv = [
        "crossval",
        "--preset",
        "cpu-small",
        "--dataset",
        f"csv:{tiny}",
        "--folds",
        "3",
        "--out",
        str(out),
        "--set",
        "epochs=1",
        "--set",
        "batch_size=4",
        "--no-progress",
        "--compare",
        "niqe",
    ]
    assert main(argv) == 0
    assert "niqe" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["preset"] == "cpu-small" and len(summary["folds"]) == 3
    assert set(summary["folds"][0]) == {
        "fold",
        "n_train",
        "n_test",
        "srcc",
        "plcc",
        "krcc",
        "rmse",
        "epoch",
    }
    assert set(summary["mean"]) == set(summary["std"]) == {"srcc", "plcc", "krcc", "rmse"}
    assert len(summary["compare"]["niqe"]["folds"]) == 3
    splits = json.loads((out / "splits.json").read_text())
    tested = sorted(n for s in splits["splits"] for n in s["test"])
    assert len(tested) == 12 and all(
        (out / f"fold{i}" / "predictions.csv").is_file() for i in range(3)
    )
    assert main([*argv[:-2]]) == 0  # a rerun reuses splits.json and the finished folds
    other = [*argv[:-2]]
    other[other.index("--folds") + 1] = "2"
    assert main(other) == 2  # splits.json of 3 folds is not silently reused for 2
    assert "folds=3 (now 2)" in capsys.readouterr().err

    weights = out / "fold0" / "best.safetensors"
    test = ["test", "--weights", str(weights), "--dataset", f"csv:{tiny}", "--out"]
    capsys.readouterr()
    assert main([*test, str(tmp_path / "t")]) == 0
    figures = json.loads((tmp_path / "t" / "figures.json").read_text())
    assert figures["n"] == 12 and figures["metric"] == "smalliqa"
    assert "note: trained on this dataset" in capsys.readouterr().out
    before = (out / "fold0" / "predictions.csv").read_bytes()
    assert main([*test, str(out / "fold0")]) == 2  # the training run's own folder
    assert "holds a training run" in capsys.readouterr().err
    assert (out / "fold0" / "predictions.csv").read_bytes() == before

    # the benchmark sets the folds beside NIQE on the same test folds, and scores a checkpoint
    bench = tmp_path / "bench"
    argv = ["benchmark", "--dataset", f"csv:{tiny}", "-m", "niqe,smalliqa", "--out", str(bench)]
    argv += ["--crossval", str(out), "--weights", f"smalliqa={weights}", "--boot", "0"]
    assert main([*argv, "--no-progress"]) == 0
    md = (bench / "results.md").read_text()
    assert "## Cross-validation: cpu-small" in md and "smalliqa (best.safetensors)" in md
    table = md.split("## Cross-validation: cpu-small")[1]
    trained = next(ln for ln in table.splitlines() if ln.startswith("| cpu-small (trained)"))
    niqe = next(ln for ln in table.splitlines() if ln.startswith("| niqe |"))
    # the same fold figures as crossval --compare computed in its own way
    for row, folds in ((trained, summary["folds"]), (niqe, summary["compare"]["niqe"]["folds"])):
        assert row.split(" | ")[1:4] == [f"{f['srcc']:.3f}" for f in folds]
    assert "| smalliqa | NR |" in md.split("## Cost at 3840x2160")[1]  # the deep path is timed
    assert "| smalliqa |" not in table  # its checkpoint was trained on some of these folds


def test_bad_runs_fail_before_training(tiny, tmp_path, capsys):
    base = ["--preset", "cpu-small", "--dataset", f"csv:{tiny}", "--out", str(tmp_path / "x")]
    assert main(["crossval", *base, "--folds", "7"]) == 2
    assert "7 folds need at least 7 content groups; the dataset has 6" in capsys.readouterr().err
    for compare, message in (("nosuch", "unknown metric 'nosuch'"), ("psnr", "full-reference")):
        assert main(["crossval", *base, "--folds", "3", "--compare", compare]) == 2
        assert message in capsys.readouterr().err  # before any fold is trained
    assert main(["train", *base, "--set", "lrr=1"]) == 2
    assert "unknown key 'lrr'" in capsys.readouterr().err
    for setting, message in (
        ("loss=foo", "loss must be one of mse, l1, fidelity, tres, got 'foo'"),
        ("optimizer=rmsprop", "optimizer must be one of adam, adamw, sgd"),
        ("lr=inf", "lr must be a finite number, got inf"),
        ("weight_decay=-1", "weight_decay must be >= 0"),
    ):  # a misspelt choice trained silently as the default; inf trained a NaN model
        assert main(["train", *base, "--set", setting]) == 2
        assert message in capsys.readouterr().err
    assert main(["train", *base, "--split", "fold9"]) == 2
    assert "--split must be official, all or fold0 .. fold4, got 'fold9'" in capsys.readouterr().err
    assert main(["train", *base, "--split", "test"]) == 2
    capsys.readouterr()
    assert main(["train", *base]) == 2  # a CSV dataset has no official split
    assert "no official split" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_an_image_too_small_for_the_model_is_named(tiny, tmp_path):
    root = tmp_path / "set"
    shutil.copytree(tiny, root)
    Image.new("RGB", (20, 20)).save(root / "s0_sharp.png")  # below cpu-small's input
    data = open_dataset(f"csv:{root}")
    split = kfold(data.groups(), 3, seed=0, val_fraction=0.0)[0]
    with pytest.raises(InputError, match=r"s0_sharp.png: image is 20x20, smaller than the model"):
        train(_config(epochs=1), data, split, tmp_path / "r", progress=False, log=print)


def test_fidelity_loss_is_the_official_pair_loss():
    """UIQA's utils.py: mean over pairs of 1 - sqrt(p g) - sqrt((1-p)(1-g)) with
    p = Phi(s1 - s2), g = Phi(y1 - y2), plus w_L2 (MSE(s1, y1) + MSE(s2, y2))."""
    from iqa4k.train.losses import _fidelity

    config = _config(loss="fidelity", pair_weight=1.0, regression_weight=0.1)
    pred = torch.tensor([0.7, 0.2, 0.4, 0.9])
    target = torch.tensor([0.8, 0.1, 0.3, 0.6])
    s1, s2, y1, y2 = pred[::2], pred[1::2], target[::2], target[1::2]
    phi = torch.distributions.Normal(0.0, 1.0).cdf
    p, g = phi(s1 - s2), phi(y1 - y2)
    fid = (1 - (p * g + 1e-8).sqrt() - ((1 - p) * (1 - g) + 1e-8).sqrt()).mean()
    official = fid + 0.1 * (((s1 - y1) ** 2).mean() + ((s2 - y2) ** 2).mean())
    assert _fidelity(pred, target, config).mean().item() == pytest.approx(official.item(), abs=1e-7)


def test_ranking_term_orders_the_batch_extremes():
    from iqa4k.train.losses import _ranking

    target = torch.tensor([0.1, 0.2, 0.8, 0.9])
    # best and worst as far apart as their labels, each near its runner-up: no loss
    assert _ranking(torch.tensor([0.1, 0.2, 0.8, 0.9]), target).item() < 1e-6
    # worst and best predicted alike, runners-up far: each triplet costs 0.4 + margin 0.7
    bad = _ranking(torch.tensor([0.5, 0.1, 0.9, 0.5]), target).item()
    assert bad == pytest.approx(2.2, abs=1e-5)
    assert _ranking(torch.tensor([0.5, 0.5, 0.5]), target[:3]).item() == 0.0  # too few


def test_kill_9_then_rerun_ends_with_the_weights_of_an_uninterrupted_run(tiny, tmp_path):
    import signal
    import time

    argv = [sys.executable, str(SCRIPT), *_train_argv(tiny, "epochs=6", "crops_per_image=6")]
    whole = subprocess.run([*argv, "--out", str(tmp_path / "whole")], env=ENV, capture_output=True)
    assert whole.returncode == 0, whole.stderr
    log = tmp_path / "cut" / "log.csv"
    proc = subprocess.Popen(
        [*argv, "--out", str(tmp_path / "cut")],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (log.is_file() and log.read_text().count("\n") >= 3):
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = log.read_text().count("\n") - 1
    assert 2 <= done < 6
    rerun = subprocess.run(
        [*argv, "--out", str(tmp_path / "cut")], env=ENV, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    for name in ("last.safetensors", "best.safetensors"):
        a, _ = read_checkpoint(tmp_path / "whole" / name)
        b, _ = read_checkpoint(tmp_path / "cut" / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_early_stopping_ends_after_epochs_without_a_better_validation(tiny, tmp_path):
    data = open_dataset(f"csv:{tiny}")
    split = kfold(data.groups(), 3, seed=0, val_fraction=0.5)[0]
    result = train(
        _config(epochs=30, early_stop=2),
        data,
        split,
        tmp_path / "run",
        progress=False,
        log=lambda _: None,
    )
    srcc = [row["val_srcc"] for row in result.history]
    assert len(srcc) < 30  # stopped early
    best = int(np.nanargmax(srcc)) + 1
    assert result.best_epoch == best and len(srcc) == best + 2  # two epochs without progress


def test_a_trained_checkpoint_scores_alike_with_any_thread_count(tiny, tmp_path):
    """Training itself repeats exactly only with the same thread count (docs/training.md);
    scoring with its checkpoint does not depend on it."""
    data = open_dataset(f"csv:{tiny}")
    split = kfold(data.groups(), 3, seed=0, val_fraction=0.0)[0]
    train(_config(epochs=2), data, split, tmp_path / "run", progress=False, log=lambda _: None)
    _, meta = read_checkpoint(tmp_path / "run" / "last.safetensors")
    assert meta["threads"] == torch.get_num_threads()
    metric = iqa4k.create_metric("smalliqa", weights=str(tmp_path / "run" / "last.safetensors"))
    image = str(data.samples[0].image)
    before = torch.get_num_threads()
    try:
        scores = []
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            scores.append(metric(image).item())
    finally:
        torch.set_num_threads(before)
    assert max(scores) - min(scores) < 1e-6, scores

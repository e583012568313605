"""``iqa4k demo``: degrade a bundled photo the way SR pipelines do and score every version.

The scoring goes through :func:`iqa4k.scoring.score_files`, the routine behind ``iqa4k score``, so
the demo exercises exactly what users run: files on disk, pairing, batching and the CSV.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import torch

from .degrade import sr_suite
from .errors import WeightsNotFoundError
from .io import load_image, save_image
from .metric import create_metric
from .models.loading import missing_weights
from .registry import METRICS
from .report.pages import scores_page
from .report.tables import score_table
from .scoring import ScoreRun, score_files

__all__ = ["SAMPLE", "demo_main", "ready_metrics", "run_demo", "sample_image"]

SAMPLE = "sample_coffee.png"
REFERENCE = "reference"  # file stem of the pristine copy, scored against itself as a sanity row


def sample_image() -> torch.Tensor:
    """The bundled CC0 sample photo (600x400) as a ``[3,H,W]`` tensor in [0, 1]."""
    asset = resources.files("iqa4k") / "assets" / SAMPLE
    with resources.as_file(asset) as path:  # a real file even when installed as a zip
        return load_image(path)


def _make_images(folder: Path) -> tuple[Path, list[Path]]:
    """Write the reference and its degraded versions as PNG; return (reference, all files)."""
    folder.mkdir(parents=True, exist_ok=True)
    x = sample_image()
    ref = folder / f"{REFERENCE}.png"
    save_image(x, ref)
    paths = [ref]
    for name, y in sr_suite(x):
        path = folder / f"{name}.png"
        save_image(y, path)  # 8-bit PNG: what an SR method would hand over to be scored
        paths.append(path)
    return ref, paths


def ready_metrics() -> tuple[list[str], dict[str, str]]:
    """Every registered metric whose parameter files are on disk, and why each other one is
    skipped (the demo never downloads)."""
    ready, skipped = [], {}
    for name, spec in METRICS.items():
        reason = missing_weights(spec)
        if not reason:
            try:
                create_metric(name)
            except WeightsNotFoundError as exc:
                reason = f"its parameter file is missing ({str(exc).splitlines()[0]})"
        if reason:
            skipped[name] = reason
            print(f"note: {name} skipped: {reason}", file=sys.stderr)
        else:
            ready.append(name)
    return ready, skipped


def _run(out_dir: str | Path, progress: bool) -> tuple[Path, ScoreRun]:
    out = Path(out_dir)
    ref, paths = _make_images(out / "images")
    metrics, skipped = ready_metrics()  # FR ones are scored against ref, NR ones alone
    # All versions share one size, so a batch of 8 halves the time; results do not change.
    run = score_files(
        paths,
        metrics,
        out / "scores.csv",
        ref=ref,
        overwrite=True,
        batch_size=8,
        progress=progress,
    )
    print(score_table(run))
    for image, reason in run.failures:
        print(f"error: {image}: {reason}", file=sys.stderr)
    report = scores_page(
        out / "scores.csv",
        out / "report.html",
        title=f"iqa4k demo: SR-style degradations of {SAMPLE}",
        skipped=skipped,
    )
    print(f"\nwrote {out / 'scores.csv'} and {report}")
    return report, run


def run_demo(out_dir: str | Path = "demo-out", *, progress: bool = True) -> Path:
    """Make the degraded images under ``out_dir/images``, score them with every metric, print
    the table and write ``scores.csv`` and ``report.html``; returns the report's path.
    """
    return _run(out_dir, progress)[0]


def demo_main(out_dir: str | Path = "demo-out") -> int:
    """``iqa4k demo``: 0 when every image got every score, 1 otherwise."""
    _, run = _run(out_dir, progress=True)
    return 1 if run.failures else 0

"""PIQE's ``precision`` option: float32 against float64 (the default), cost and effect.

Run: ``python benchmarks/piqe_precision.py [--repeats 5]`` (needs ``../shared/fixtures``).

- Seconds: median warm call per 3840x2160 image (the degraded copy of ``classic_4k.py``'s
  pair), each precision, in one run.
- Effect: on the 400 LIVE Challenge images of ``clive_subset`` and the calibration images
  I03, I04 (``calibration``) and I08 (``calibration_flat``), how many of the three decisions
  per block (active, noticeable artifact, noise) float32 changes, and how far the scores
  move (relative change, over the images whose score moved).
"""

from __future__ import annotations

import argparse
import statistics
from functools import partial

import torch

import iqa4k
from _common import ROOT, report, time_call, uhd_pair
from iqa4k.classic.piqe import piqe
from iqa4k.io import load_image

FIXTURES = ROOT.parents[1] / "shared" / "fixtures"


def images() -> list:
    paths = sorted((FIXTURES / "clive_subset" / "images").iterdir())
    paths += [FIXTURES / "calibration" / "dist" / n for n in ("I03.bmp", "I04.bmp")]
    return paths + [FIXTURES / "calibration_flat" / "dist" / "I08.bmp"]


def decisions(result) -> list[torch.Tensor]:
    """The per-block decisions: each mask sampled at its blocks' top-left pixels."""
    bs = result.block_size
    masks = (result.activity_mask, result.noticeable_artifacts_mask, result.noise_mask)
    return [m[:, ::bs, ::bs] for m in masks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not FIXTURES.is_dir():
        raise SystemExit(f"needs the fixtures at {FIXTURES}")

    dist, _ = uhd_pair()
    seconds = {}
    for precision in ("float64", "float32"):
        metric = iqa4k.create_metric("piqe", precision=precision)
        seconds[precision] = time_call(partial(metric, dist), args.repeats)[1]

    total = changed = 0
    moves = []
    for path in images():
        x = load_image(path)[None]
        exact, fast = (piqe(x, precision=p, return_maps=True) for p in ("float64", "float32"))
        for a, b in zip(decisions(exact), decisions(fast), strict=True):
            total += a.numel()
            changed += int((a != b).sum())
        move = abs(fast.score.item() / exact.score.item() - 1)
        if move:
            moves.append(move)
    row = {
        "4K float64 s": round(seconds["float64"], 3),
        "4K float32 s": round(seconds["float32"], 3),
        "images": len(images()),
        "block decisions": total,
        "changed": changed,
        "scores moved": len(moves),
        "median move": f"{statistics.median(moves):.2g}" if moves else "-",
        "largest move": f"{max(moves):.2%}" if moves else "-",
    }
    report("piqe_precision", "PIQE float32 against float64", [row])


if __name__ == "__main__":
    main()

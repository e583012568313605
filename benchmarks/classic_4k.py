"""Classical metrics at 3840x2160 on the CPU, side by side with pyiqa 0.1.16 in one run.

Run: ``make bench`` (installs the ``compare`` extra) or ``python benchmarks/classic_4k.py``.
Prints a Markdown table (seconds per image pair, ratio = pyiqa / iqa4k) and writes
``benchmarks/results/classic_4k.json``. Each pair of rows uses the same input tensors and
settings (the score columns show that both compute the same number).
"""

from __future__ import annotations

import argparse
from functools import partial

import torch

import iqa4k
from _common import machine, markdown_table, time_call, uhd_pair, write_json

# Metrics that pyiqa computes with the same definition and defaults under the same name.
METRICS = ("psnr", "ssim", "ms_ssim")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-pyiqa", action="store_true", help="time iqa4k alone")
    args = parser.parse_args()

    dist, ref = uhd_pair()
    pyiqa = None if args.no_pyiqa else _import_pyiqa()
    rows = []
    for name in METRICS:
        ours = iqa4k.create_metric(name)
        with torch.no_grad():
            cold, warm = time_call(partial(ours, dist, ref), args.repeats)
            row = {
                "metric": name,
                "iqa4k_s": round(warm, 3),
                "iqa4k_cold_s": round(cold, 3),
                "iqa4k_score": round(ours(dist, ref).item(), 5),
            }
            if pyiqa is not None:
                peer = pyiqa.create_metric(name, device="cpu")
                p_cold, p_warm = time_call(partial(peer, dist, ref), max(1, args.repeats // 2))
                row.update(
                    pyiqa_s=round(p_warm, 3),
                    pyiqa_cold_s=round(p_cold, 3),
                    pyiqa_score=round(peer(dist, ref).item(), 5),
                    ratio=round(p_warm / warm, 1),
                )
        rows.append(row)
        print(row, flush=True)
    columns = [
        "metric",
        "iqa4k_s",
        "iqa4k_cold_s",
        "pyiqa_s",
        "pyiqa_cold_s",
        "ratio",
        "iqa4k_score",
        "pyiqa_score",
    ]
    print(f"\n3840x2160, CPU: {machine()}\n")
    print(markdown_table(rows, columns))
    print(f"\nwrote {write_json('classic_4k', rows)}")


def _import_pyiqa():
    try:
        import pyiqa
    except ImportError:
        print("pyiqa is not installed (pip install -e '.[compare]'): timing iqa4k alone")
        return None
    return pyiqa


if __name__ == "__main__":
    main()

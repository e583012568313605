"""Classical metrics at 3840x2160 on a contiguous tensor and on the channels-last view a
decoded file gives (``torch.from_numpy(hwc).permute(2, 0, 1)[None]``): seconds and the ratio,
with the scores, which must be identical.

Run: ``python benchmarks/layout_4k.py [--repeats 5] [--metrics psnr,ssim,...]``. Input: the 4K
pair of ``classic_4k.py``; both layouts hold the same values. The two layouts are timed in
turn, call after call; time = the fastest of the warm calls (the least disturbed by other
work on the machine).
"""

from __future__ import annotations

import argparse
import time

import torch

import iqa4k
from _common import report, uhd_pair

METRICS = ("psnr", "psnr_y", "ssim", "ms_ssim", "niqe", "brisque", "piqe")


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """The same values as ``x`` in the layout of a permuted HWC array."""
    return x[0].permute(1, 2, 0).contiguous().permute(2, 0, 1)[None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--metrics", default=",".join(METRICS))
    args = parser.parse_args()
    dist, ref = uhd_pair()
    layouts = {"contiguous": (dist, ref), "channels-last": tuple(map(_channels_last, (dist, ref)))}
    rows = []
    for name in args.metrics.split(","):
        metric = iqa4k.create_metric(name)
        row = {"metric": name}
        scores, times = {}, {layout: [] for layout in layouts}
        with torch.no_grad():
            for layout, (d, r) in layouts.items():  # warm-up, and the scores
                scores[layout] = (
                    metric(d, r).item() if metric.info.kind == "FR" else metric(d).item()
                )
            for _ in range(args.repeats):
                for layout, (d, r) in layouts.items():
                    inputs = (d, r) if metric.info.kind == "FR" else (d,)
                    start = time.perf_counter()
                    metric(*inputs)
                    times[layout].append(time.perf_counter() - start)
        for layout in layouts:
            row[f"{layout} s"] = round(min(times[layout]), 3)
        row["ratio"] = round(row["channels-last s"] / row["contiguous s"], 2)
        row["score"] = f"{scores['contiguous']:.10g}"
        row["identical"] = scores["contiguous"] == scores["channels-last"]
        rows.append(row)
        print(row, flush=True)
    report("layout_4k", "\n3840x2160, seconds per image (pair)", rows)


if __name__ == "__main__":
    main()

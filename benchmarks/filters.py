"""The 11x11 Gaussian filter (sigma 1.5) of SSIM and NRQM on one 4K map: OpenCV's
``sepFilter2D`` against ``iqa4k.classic.separable.valid_filter`` (plain IEEE arithmetic, the
same bits on every machine), side by side in one run.

Rows: float32 (SSIM's moments) and float64 (NRQM's structure terms), the plain filter once
through torch (its operations on the torch threads, as SSIM calls it) and once through NumPy
(one core, as NRQM's strips would call it); OpenCV on one core, as NRQM calls it. Seconds:
median of the warm calls on a random 2160x3840 map. Run: ``python benchmarks/filters.py``.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

from _common import report, time_call
from iqa4k.classic.matlab import fspecial_gaussian_1d
from iqa4k.classic.separable import valid_filter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    taps = fspecial_gaussian_1d(11, 1.5).numpy()
    rows = []
    for dtype in (np.float32, np.float64):
        x = np.random.default_rng(0).random((2160, 3840)).astype(dtype)
        k = taps.astype(dtype)
        opencv = time_call(lambda x=x, k=k: cv2.sepFilter2D(x, -1, k, k), args.repeats)[1]
        via_torch = time_call(lambda x=x: valid_filter(torch.from_numpy(x), taps), args.repeats)
        via_numpy = time_call(lambda x=x: valid_filter(x, taps), args.repeats)
        rows.append(
            {
                "dtype": np.dtype(dtype).name,
                "OpenCV s": round(opencv, 4),
                "plain, torch s": round(via_torch[1], 4),
                "plain, NumPy s": round(via_numpy[1], 4),
                "torch / OpenCV": round(via_torch[1] / opencv, 1),
                "NumPy / OpenCV": round(via_numpy[1] / opencv, 1),
            }
        )
        print(rows[-1], flush=True)
    report("filters", "\n11x11 Gaussian, one 2160x3840 map", rows)


if __name__ == "__main__":
    main()

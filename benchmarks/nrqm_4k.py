"""NRQM's features (the whole cost of ``nrqm`` and most of ``pi``) at 3840x2160 on the CPU, and
at 512x384 side by side with pyiqa 0.1.16's feature code, in one run.

Run: ``python benchmarks/nrqm_4k.py [--repeats 3] [--no-pyiqa]`` (``make bench`` installs
pyiqa). Input: the degraded copy of ``classic_4k.py``'s 4K pair (needs ``../shared/fixtures/
uhd``), as NRQM sees it: Y channel rounded to 0..255 with 4 pixels shaved (3832x2152), and
its 512x384 top-left crop. The forests need Ma's ``model.mat`` and take milliseconds, so
only the features are timed (``nrqm_features``; pyiqa: its DCT, GSM and SVD feature calls
from ``pyiqa.archs.nrqm_arch.nrqm``). Seconds: median of the warm calls; MB: the largest peak
resident size of a call (VmHWM, reset through /proc/self/clear_refs) above the size before
it (Linux only). pyiqa's features are not MATLAB's (its own resampling and normalisation),
so the last column says how far apart the two feature vectors are.

``--parts`` instead times the parts of two warm 4K calls (wall seconds spent in each
function, summed per call), with freed memory kept as the ``iqa4k`` command does, or with
glibc's default thresholds as a library caller has them (``--parts --default-heap``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from _common import report, uhd_pair
from iqa4k.classic import nrqm_features as features
from iqa4k.classic.nrqm import _luma_255
from iqa4k.classic.nrqm_features import nrqm_features
from iqa4k.process import tune_process

# The functions that make up a call, as the module names them.
_PARTS = {
    "pyramid": "build_sf_pyramid",
    "enlargements": "_enlarge",
    "structure terms": "_structure_means",
    "normalisation": "_normalize_level_in_place",
    "GGD shapes": "_ggd_shape_of",
    "DCT statistics": "block_dct_features",
    "patch SVDs": "patch_singular_values",
}


def _status(key: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def measure(fn, repeats: int) -> tuple[float, float, object]:
    """(median seconds of ``repeats`` calls after a warm-up, largest peak MB, last result)."""
    fn()
    seconds, peaks = [], []
    for _ in range(repeats):
        open("/proc/self/clear_refs", "w").write("5")
        base = _status("VmRSS")
        start = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - start)
        peaks.append((_status("VmHWM") - base) / 1024)
    return statistics.median(seconds), max(peaks), out


def pyiqa_features(luma: torch.Tensor) -> torch.Tensor:
    from pyiqa.archs import nrqm_arch as n

    img = luma[None, None]
    pyr = n.get_gauss_pyramid(img / 255.0)
    f1 = torch.cat([n.block_dct(im) for im in pyr], dim=1)
    f2 = n.global_gsm(img)
    f3 = torch.cat(
        [torch.linalg.svd(n.im2col(im, 5, "distinct"), full_matrices=False)[1] for im in pyr],
        dim=1,
    )
    return torch.cat([f1, f2, f3], dim=1)[0]


def time_parts(luma: torch.Tensor, keep_memory: bool, calls: int = 2) -> None:
    """Print the seconds each of :data:`_PARTS` takes in each of ``calls`` warm calls."""
    if keep_memory:
        tune_process()
    spent = {}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    for name, attr in _PARTS.items():
        setattr(features, attr, timed(name, getattr(features, attr)))
    nrqm_features(luma)
    for _ in range(calls):
        spent.clear()
        start = time.perf_counter()
        nrqm_features(luma)
        total = time.perf_counter() - start
        print(f"total {total:.2f} s:", {k: round(v, 2) for k, v in spent.items()}, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-pyiqa", action="store_true", help="time iqa4k alone")
    parser.add_argument("--parts", action="store_true", help="time the parts of a 4K call")
    parser.add_argument(
        "--default-heap", action="store_true", help="--parts with glibc's default thresholds"
    )
    args = parser.parse_args()
    dist, _ = uhd_pair()
    luma = _luma_255(dist.double(), "y", True, 4)[0].contiguous()
    del dist
    if args.parts:
        time_parts(luma, keep_memory=not args.default_heap)
        return
    rows = []
    for size in [tuple(luma.shape), (384, 512)]:
        image = luma[: size[0], : size[1]].contiguous()
        seconds, mb, ours = measure(
            lambda image=image: torch.cat(nrqm_features(image)), args.repeats
        )
        row = {
            "size": f"{size[1]}x{size[0]}",
            "iqa4k s": round(seconds, 2),
            "iqa4k peak MB": round(mb),
        }
        if not args.no_pyiqa and size == (384, 512):
            p_seconds, p_mb, theirs = measure(lambda image=image: pyiqa_features(image), 1)
            gap = ((theirs.double() - ours).abs() / ours.abs().clamp_min(1e-12)).max().item()
            row.update(
                {
                    "pyiqa s": round(p_seconds, 2),
                    "pyiqa peak MB": round(p_mb),
                    "ratio": round(p_seconds / seconds, 1),
                    "max rel feature gap": f"{gap:.2g}",
                }
            )
        rows.append(row)
        print(row, flush=True)
    report("nrqm_4k", "\nNRQM features", rows)


if __name__ == "__main__":
    main()

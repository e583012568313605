"""Freed memory reused or returned (iqa4k.process), side by side in one run: NRQM's features and
SSIM at 4K, each in a process with glibc's default thresholds and in one that calls
``keep_freed_memory()`` first, as the ``iqa4k`` command does. Input: the degraded 4K image of
``classic_4k.py`` (NRQM: its luma as NRQM sees it, 3832x2152; SSIM: the 3840x2160 pair).
Seconds: median of 3 calls after a warm-up; the results of both processes are compared bit for
bit. Run: ``python benchmarks/heap.py`` (Linux with glibc).
"""

from __future__ import annotations

from _common import report, side_by_side

_CHILD = r"""
import json, statistics, sys, time, torch
case, variant = sys.argv[1], sys.argv[2]
if variant == "kept":
    from iqa4k.process import keep_freed_memory
    assert keep_freed_memory()
from _common import uhd_pair
dist, ref = uhd_pair()
if case == "nrqm":
    from iqa4k.classic.nrqm import _luma_255
    from iqa4k.classic.nrqm_features import nrqm_features
    luma = _luma_255(dist.double(), "y", True, 4)[0].contiguous()
    del dist, ref
    run = lambda: torch.cat(nrqm_features(luma))
else:
    import iqa4k
    metric = iqa4k.create_metric("ssim")
    run = lambda: metric(dist, ref)
out = run()
times = []
for _ in range(3):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
print(json.dumps({"s": statistics.median(times), "out": out.flatten().tolist()}))
"""

CASES = {"nrqm": "NRQM features, 3832x2152", "ssim": "SSIM, 3840x2160 pair"}


def main() -> None:
    rows = []
    for case, what in CASES.items():
        default, kept, ratio, same = side_by_side(_CHILD, case, ("default", "kept"), "s")
        rows.append(
            {
                "work": what,
                "glibc default s": round(default, 2),
                "freed memory kept s": round(kept, 2),
                "ratio": round(ratio, 2),
                "same result": same,
            }
        )
        print(rows[-1], flush=True)
    report("heap", "\nFreed memory kept for reuse", rows)


if __name__ == "__main__":
    main()

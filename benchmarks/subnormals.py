"""Subnormal floats on the CPU, side by side in one run: torchvision's Swin-T at 480 with its
own window attention and with iqa4k's (masked probabilities zero, iqa4k.models.attention), and
MaxIQA's network (4 crops of 224) in a process that leaves subnormals to the CPU's slow path
and in one that flushes them (iqa4k.process, as the ``iqa4k`` command does). Random
weights (seed 0); milliseconds per forward pass, median of 5 after 2 warm-ups; the first 64
output values of each pair are compared bit for bit. Run: ``python benchmarks/subnormals.py``.
"""

from __future__ import annotations

from _common import report, side_by_side

_CHILD = r"""
import json, statistics, sys, time, torch
case, variant = sys.argv[1], sys.argv[2]
if variant == "flushed" and case == "maxiqa":
    from iqa4k.process import flush_subnormals
    flush_subnormals()
torch.manual_seed(0)
if case == "swin_t":
    from torchvision.models import swin_t
    net = swin_t(weights=None).eval()
    if variant == "flushed":
        from iqa4k.models.attention import flush_swin_attention
        flush_swin_attention(net)
    x = torch.randn(1, 3, 480, 480, generator=torch.Generator().manual_seed(1))
else:
    from iqa4k.models import get_entry
    entry = get_entry("maxiqa")
    net = entry.build(**entry.releases["pipal"].options).eval()
    x = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(1))
with torch.inference_mode():
    for _ in range(2):
        out = net(x)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        net(x)
        times.append(time.perf_counter() - start)
print(json.dumps({"ms": 1e3 * statistics.median(times), "out": out.flatten()[:64].tolist()}))
"""

CASES = {
    "swin_t": ("Swin-T 480, batch 1", "torchvision attention", "iqa4k attention"),
    "maxiqa": ("MaxIQA, 4 crops of 224", "subnormals kept", "subnormals flushed"),
}


def main() -> None:
    rows = []
    for case, (what, before, after) in CASES.items():
        slow, fast, ratio, same = side_by_side(_CHILD, case, ("plain", "flushed"), "ms")
        rows.append(
            {
                "network": what,
                "before": before,
                "ms": round(slow, 1),
                "after": after,
                "ms ": round(fast, 1),
                "ratio": round(ratio, 2),
                "same outputs": same,
            }
        )
        print(rows[-1], flush=True)
    report("subnormals", "\nSubnormal floats", rows)


if __name__ == "__main__":
    main()

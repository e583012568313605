"""LPIPS at 3840x2160 on this machine: seconds per image pair and peak memory.

Run: ``python benchmarks/lpips_4k.py [--nets lpips,lpips_vgg]``. Speed and memory do not depend
on the weights, so the backbone is torchvision's architecture with random weights written to a
temp file (nothing is downloaded). Each metric runs in a fresh process: one warm-up call on
256x256, then one timed call on the 4K pair; memory is the peak resident size (VmHWM, reset
through /proc/self/clear_refs) above the size just before the 4K call. Linux only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import report

_CHILD = r"""
import json, sys, tempfile, time
import torch, torchvision
import iqa4k

name = sys.argv[1]
net = torchvision.models.alexnet() if name == "lpips" else torchvision.models.vgg16()
path = tempfile.mktemp(suffix=".pth")
torch.save(net.state_dict(), path)
m = iqa4k.create_metric(name, backbone=path)
g = torch.Generator().manual_seed(0)
small = torch.rand(1, 3, 256, 256, generator=g)
x = torch.rand(1, 3, 2160, 3840, generator=g)
y = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
with torch.inference_mode():
    m(small, small)
    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    open("/proc/self/clear_refs", "w").write("5")
    base = status("VmRSS")
    start = time.perf_counter()
    m(x, y)
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "mb": (status("VmHWM") - base) / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nets", default="lpips,lpips_vgg")
    args = parser.parse_args()
    rows = []
    for name in args.nets.split(","):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, name], capture_output=True, text=True, check=True
        ).stdout
        doc = json.loads(out.strip().splitlines()[-1])
        rows.append(
            {"metric": name, "s/pair": round(doc["seconds"], 2), "peak MB": round(doc["mb"])}
        )
        print(rows[-1], flush=True)
    report("lpips_4k", "\n3840x2160 pair", rows)


if __name__ == "__main__":
    main()

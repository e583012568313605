"""Peak memory of each classical metric scoring one image file, at 4K, 8K and 16K.

Run: ``python benchmarks/memory.py [--metrics psnr,ssim] [--sizes 4k,8k,16k]``.
Each (metric, size) runs in a fresh process: decode the file(s) with ``iqa4k.io.load_image``
and score them, as ``iqa4k score`` does. The figure is the peak resident memory (Linux VmHWM,
reset through /proc/self/clear_refs) above the process's resident memory just before (the
interpreter, torch, iqa4k and the metric built and run once on a small image), in MB and in
bytes per pixel of the image. Linux only. The images are the UHD fixture photo
enlarged (and, for FR metrics, its x4 bicubic copy), written once as BMP into a temp folder.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import UHD_PHOTO, report, run_child

METRICS = ("psnr", "psnr_y", "ssim", "ssim_y", "ms_ssim", "niqe", "brisque", "piqe")
SIZES = {"4k": (3840, 2160), "8k": (7680, 5120), "16k": (15360, 8640)}

_CHILD = r"""
import json, sys
import torch
import iqa4k
from iqa4k.process import keep_freed_memory
from iqa4k.io import load_image

keep_freed_memory()  # as the iqa4k command does

def status(key):  # kB, from /proc/self/status
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])

metric, dist, ref = sys.argv[1], sys.argv[2], sys.argv[3]
m = iqa4k.create_metric(metric)
fr = m.info.kind == "FR"
small = torch.rand(1, 3, 256, 256)
with torch.inference_mode():
    m(small, small * 0.9) if fr else m(small)
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
base = status("VmRSS")
with torch.inference_mode():
    x = load_image(dist)
    value = m(x, load_image(ref)) if fr else m(x)
peak = status("VmHWM")
print(json.dumps({"above_baseline_mb": (peak - base) / 1024, "value": float(value)}))
"""


def make_images(folder: Path, size: tuple[int, int]) -> tuple[Path, Path]:
    from PIL import Image

    w, h = size
    ref_path, dist_path = folder / f"ref_{w}x{h}.bmp", folder / f"dist_{w}x{h}.bmp"
    if not ref_path.exists():
        with Image.open(UHD_PHOTO) as photo:
            ref = photo.convert("RGB").resize(size, Image.Resampling.BICUBIC)
        ref.save(ref_path)
        small = ref.resize((w // 4, h // 4), Image.Resampling.BICUBIC)
        small.resize(size, Image.Resampling.BICUBIC).save(dist_path)
    return dist_path, ref_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metrics", default=",".join(METRICS))
    parser.add_argument("--sizes", default="4k,8k,16k")
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for metric in args.metrics.split(","):
            row = {"metric": metric}
            for name in sizes:
                w, h = SIZES[name]
                dist, ref = make_images(Path(tmp), (w, h))
                mb = run_child(_CHILD, metric, str(dist), str(ref))["above_baseline_mb"]
                row[f"{name} MB"] = round(mb)
                row[f"{name} B/px"] = round(mb * 2**20 / (w * h), 1)
            rows.append(row)
            print(row, flush=True)
    report("memory", "\npeak memory above baseline", rows)


if __name__ == "__main__":
    main()

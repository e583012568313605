"""The local engine against the decode-bound rate: 4K JPEG pairs scored with PSNR.

Run: ``python benchmarks/decode_overlap.py [--pairs 12]``. In the same run: the time to decode
every pair in this process one after another (what a serial engine is bound by), then
``score_files`` with PSNR, whose decode threads overlap decoding with scoring. The pairs are
the UHD fixture photo rotated and cropped to 3840x2160 (quality 95) and a blurred copy of each
(quality 90), written once into a temp folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageFilter

from _common import UHD_PHOTO, report
from iqa4k.io import list_images, load_image
from iqa4k.scoring import score_files


def make_pairs(folder: Path, n: int) -> tuple[Path, Path]:
    dist, ref = folder / "dist", folder / "ref"
    dist.mkdir()
    ref.mkdir()
    with Image.open(UHD_PHOTO) as photo:
        src = photo.convert("RGB")
    for i in range(n):
        im = src.rotate(i * 3, resample=Image.BICUBIC).crop((0, 200, 3840, 2360))
        im.save(ref / f"{i:02d}.jpg", quality=95)
        im.filter(ImageFilter.GaussianBlur(1 + i % 3)).save(dist / f"{i:02d}.jpg", quality=90)
    return dist, ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dist, ref = make_pairs(Path(tmp), args.pairs)
        pairs = list(zip(list_images(dist), list_images(ref), strict=True))
        start = time.perf_counter()
        for d, r in pairs:
            load_image(d).contiguous(), load_image(r).contiguous()
        decode = time.perf_counter() - start
        start = time.perf_counter()
        score_files(dist, "psnr", Path(tmp) / "s.csv", ref=ref, progress=False)
        score = time.perf_counter() - start
    rows = [
        {"run": "decode only, serial", "pairs/s": round(args.pairs / decode, 2)},
        {"run": "iqa4k score -m psnr", "pairs/s": round(args.pairs / score, 2)},
    ]
    share = f"scoring at {100 * decode / score:.0f}% of the serial decode-bound rate"
    report("decode_overlap", f"{args.pairs} pairs of 3840x2160 JPEGs", rows, share)


if __name__ == "__main__":
    main()

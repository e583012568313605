"""LPIPS and DISTS at 3840x2160: seconds per image pair and peak memory, iqa4k in row bands
(the default), iqa4k on the whole image, and pyiqa 0.1.16, side by side in one run.

Run: ``python benchmarks/perceptual_4k.py [--metrics lpips,lpips_vgg,dists] [--no-pyiqa]``
(``make bench`` installs pyiqa). Input: the 4K pair of ``classic_4k.py`` (needs
``../shared/fixtures/uhd``). Speed and memory do not depend on the weights, so the backbone is
torchvision's architecture with random weights (seed 0), written where both libraries read it:
a temp file for iqa4k, a temp ``TORCH_HOME`` for pyiqa, which asks torchvision for the ImageNet
file; nothing is downloaded. pyiqa's calibration weights (lin layers, alpha/beta) are set to
the ones iqa4k bundles, so both compute the same number (last column). Each run is a fresh
process: one warm-up call on 256x256, then one timed call on the 4K pair; memory is the peak
resident size (VmHWM, reset through /proc/self/clear_refs) above the size just before it.
Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from _common import ROOT, report

_CHILD = r"""
import json, os, sys, time
import torch
sys.path.insert(0, sys.argv[3])
from _common import uhd_pair

name, engine = sys.argv[1], sys.argv[2]
backbone = os.path.join(os.environ["TORCH_HOME"], "hub", "checkpoints",
                        "alexnet-owt-7be5be79.pth" if name == "lpips" else "vgg16-397923af.pth")
if engine == "pyiqa":
    import pyiqa
    from iqa4k.perceptual import dists, lpips
    kind = {"lpips": "lpips", "lpips_vgg": "lpips-vgg", "dists": "dists"}[name]
    m = pyiqa.create_metric(kind, device="cpu", pretrained=False).net
    if name == "dists":
        alpha, beta = dists._alpha_beta()
        m.alpha.data, m.beta.data = torch.from_numpy(alpha), torch.from_numpy(beta)
    else:
        for i, w in enumerate(lpips._lin_weights("alex" if name == "lpips" else "vgg")):
            getattr(m, f"lin{i}").model[-1].weight.data = torch.from_numpy(w)
    run = lambda x, y: m(x, y)
else:
    import iqa4k
    pixels = {} if engine == "bands" else {"band_pixels": 0}
    metric = iqa4k.create_metric(name, backbone=backbone, **pixels)
    run = lambda x, y: metric(x, y)
dist, ref = uhd_pair()
small = ref[..., :256, :256]
with torch.inference_mode():
    run(small, small)
    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    open("/proc/self/clear_refs", "w").write("5")
    base = status("VmRSS")
    start = time.perf_counter()
    score = float(run(dist, ref).flatten()[0])
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "mb": (status("VmHWM") - base) / 1024, "score": score}))
"""

NETS = {"lpips": "alexnet", "lpips_vgg": "vgg16", "dists": "vgg16"}
FILES = {"alexnet": "alexnet-owt-7be5be79.pth", "vgg16": "vgg16-397923af.pth"}


def _write_backbones(torch_home: str) -> None:
    import torch
    import torchvision

    folder = os.path.join(torch_home, "hub", "checkpoints")
    os.makedirs(folder)
    for net, file in FILES.items():
        torch.manual_seed(0)
        torch.save(getattr(torchvision.models, net)().state_dict(), os.path.join(folder, file))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metrics", default=",".join(NETS))
    parser.add_argument("--no-pyiqa", action="store_true", help="time iqa4k alone")
    args = parser.parse_args()
    engines = ["bands", "whole"] + ([] if args.no_pyiqa else ["pyiqa"])
    rows = []
    with tempfile.TemporaryDirectory() as torch_home:
        _write_backbones(torch_home)
        env = {**os.environ, "TORCH_HOME": torch_home}
        for name in args.metrics.split(","):
            for engine in engines:
                out = subprocess.run(
                    [sys.executable, "-c", _CHILD, name, engine, str(ROOT)],
                    capture_output=True,
                    text=True,
                    env=env,
                )
                if out.returncode:
                    print(out.stderr[-2000:], file=sys.stderr)
                    continue
                doc = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(
                    {
                        "metric": name,
                        "run": {
                            "bands": "iqa4k (bands, default)",
                            "whole": "iqa4k `band_pixels=0`",
                        }.get(engine, "pyiqa 0.1.16"),
                        "s/pair": round(doc["seconds"], 2),
                        "peak MB": round(doc["mb"]),
                        "score": f"{doc['score']:.8g}",
                    }
                )
                print(rows[-1], flush=True)
    report("perceptual_4k", "\n3840x2160 pair", rows)


if __name__ == "__main__":
    main()

"""Classical metrics at 3840x2160 on the CPU, side by side with pyiqa 0.1.16 in one run.

Run: ``make bench`` (installs the ``compare`` extra) or ``python benchmarks/classic_4k.py``.
Prints a Markdown table (seconds per image pair, ratio = pyiqa / iqa4k) and writes
``benchmarks/results/classic_4k.json``. Each pair of rows uses the same input tensors and
settings (the score columns show that both compute the same number).
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import torch

import iqa4k
from _common import machine, markdown_table, time_call, uhd_pair, write_json

# Our metrics; pyiqa has each under the same name, but its BRISQUE needs a weights download,
# so BRISQUE is timed alone (``--metrics`` picks a subset).
METRICS = ("psnr", "ssim", "ms_ssim", "niqe", "brisque", "piqe")
NO_OFFLINE_PEER = {"brisque"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-pyiqa", action="store_true", help="time iqa4k alone")
    parser.add_argument("--metrics", default=",".join(METRICS), help="comma-separated subset")
    args = parser.parse_args()

    dist, ref = uhd_pair()
    pyiqa = None if args.no_pyiqa else _import_pyiqa()
    rows = []
    for name in args.metrics.split(","):
        ours = iqa4k.create_metric(name)
        inputs = (dist, ref) if ours.info.kind == "FR" else (dist,)
        with torch.no_grad():
            cold, warm = time_call(partial(ours, *inputs), args.repeats)
            row = {
                "metric": name,
                "iqa4k_s": round(warm, 3),
                "iqa4k_cold_s": round(cold, 3),
                "iqa4k_score": round(ours(*inputs).item(), 5),
            }
            if pyiqa is not None and name not in NO_OFFLINE_PEER:
                peer = pyiqa.create_metric(name, device="cpu")
                p_cold, p_warm = time_call(partial(peer, *inputs), max(1, args.repeats // 2))
                row.update(
                    pyiqa_s=round(p_warm, 3),
                    pyiqa_cold_s=round(p_cold, 3),
                    pyiqa_score=round(peer(*inputs).item(), 5),
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
    _offline_niqe_parameters()
    return pyiqa


def _offline_niqe_parameters() -> None:
    """Write the LIVE pristine model where pyiqa's NIQE looks for it, so it runs offline."""
    from importlib import resources

    import numpy as np
    import scipy.io

    target = Path(torch.hub.get_dir()) / "pyiqa" / "niqe_modelparameters.mat"
    if target.exists():
        return
    with resources.as_file(resources.files("iqa4k") / "assets" / "niqe_pris_params.npz") as f:
        params = {key: value for key, value in np.load(f).items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(target, params)  # keys mu_prisparam, cov_prisparam, as pyiqa reads them


if __name__ == "__main__":
    main()

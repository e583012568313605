"""bfloat16 against float32 for every deep model, side by side in one run: seconds per 4K
image and how far the scores move.

Run: ``python benchmarks/precision.py [--models uiqa,hyperiqa] [--repeats 3]``.
- Speed: ``deep_4k.bench`` (official protocol, 3840x2160, median of the warm calls) with the
  metric option ``precision=float32`` and ``precision=bfloat16``, and a 2048x2048 matmul in each
  dtype, the machine's practical peak for it.
- Scores: the demo's 16 images (the bundled 600x400 photo and its 15 degraded copies,
  ``iqa4k.degrade.sr_suite``; AHIQ compares each with the photo) scored by each network in
  both precisions, one centre crop per image (UIQA: its three views). The networks have
  random weights (seed 0): the change with released weights is not measured here. Columns:
  the largest change relative to the fp32 score, the largest change relative to the spread
  (max - min) of the 16 fp32 scores, and the Spearman correlation of the two sets of scores.
"""

from __future__ import annotations

import argparse

import torch

from _common import machine, markdown_table, uhd_pair, write_json
from deep_4k import MODELS, bench, matmul_gflops, scoring_net
from iqa4k.degrade import sr_suite
from iqa4k.demo import sample_image
from iqa4k.models import get_entry
from iqa4k.models.inputs import Views
from iqa4k.process import tune_process
from iqa4k.stats import srcc


def demo_scores(model: str, precision: str) -> torch.Tensor:
    """Scores of the 16 demo images by the network of ``model`` (random weights, seed 0)."""
    entry = get_entry(model)
    torch.manual_seed(0)
    net = scoring_net(model, torch.device("cpu"), precision)
    photo = sample_image()[None]
    images = [photo] + [y[None] for _, y in sr_suite(photo[0])]
    scores = []
    with torch.inference_mode():
        for x in images:
            if isinstance(entry.inputs, Views):
                s = entry.inputs.score(x, net=net, seed=2, salient="centre")
            else:
                ref = photo if entry.kind == "FR" else None
                kwargs = dict(net=net, sampling="centre", n_crops=0, seed=0, overlap=0)
                s = entry.inputs.score(x, ref, batch_size=1, **kwargs)
            scores.append(s.flatten()[0].item())
    return torch.tensor(scores, dtype=torch.float64)


def main() -> None:
    tune_process()  # as the iqa4k command does, before torch starts its threads
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cpu = torch.device("cpu")
    dist, ref = uhd_pair()
    peaks = {p: matmul_gflops(cpu, getattr(torch, p)) for p in ("float32", "bfloat16")}
    print(f"{machine()}; matmul GFLOP/s {peaks}", flush=True)
    rows = []
    for model in args.models.split(","):
        timed = {
            p: bench(model, "official", dist, ref, cpu, 4, 4, args.repeats, precision=p)
            for p in ("float32", "bfloat16")
        }
        full, half = demo_scores(model, "float32"), demo_scores(model, "bfloat16")
        change = (half - full).abs()
        row = {
            "model": model,
            "fp32 s/image": timed["float32"]["s/image"],
            "bf16 s/image": timed["bfloat16"]["s/image"],
            "speed-up": round(timed["float32"]["s/image"] / timed["bfloat16"]["s/image"], 2),
            "bf16 % of bf16 matmul": round(100 * timed["bfloat16"]["GFLOP/s"] / peaks["bfloat16"]),
            "max change / score": f"{(change / full.abs()).max().item():.2g}",
            "max change / spread": f"{(change.max() / (full.max() - full.min())).item():.2g}",
            "SRCC(fp32, bf16)": round(srcc(full.numpy(), half.numpy()), 3),
        }
        rows.append(row)
        print(row, flush=True)
    print(f"\nmatmul GFLOP/s: fp32 {peaks['float32']:.1f}, bf16 {peaks['bfloat16']:.1f}\n")
    print(markdown_table(rows, list(rows[0])))
    print(f"\nwrote {write_json('precision', rows)}")


if __name__ == "__main__":
    main()

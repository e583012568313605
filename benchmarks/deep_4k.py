"""Deep models at 3840x2160: latency per image, MACs, and the share of this machine's matmul
rate they achieve, measured in the same run.

Run: ``python benchmarks/deep_4k.py [--models maniqa,uiqa] [--policies official,grid]``.
The networks have random weights (speed does not depend on them), so nothing is downloaded.
``grid`` (full coverage) is timed on ``--grid-tiles`` tiles and scaled to the full tiling,
which the table marks; ``official`` and ``centre`` are timed on the whole image. With a GPU
(``--device cuda``) the same rows give images per second. The process is set up as the
``iqa4k`` command sets up its own (iqa4k.process: subnormal floats flushed, freed memory kept).
"""

from __future__ import annotations

import argparse
import time

import torch

from _common import machine, markdown_table, time_call, uhd_pair, write_json
from iqa4k.models import cost, get_entry
from iqa4k.models.inference import prepare_for_scoring, with_precision
from iqa4k.models.inputs import Views
from iqa4k.models.sampling import grid_positions
from iqa4k.process import tune_process
from iqa4k.registry import METRICS

MODELS = ("hyperiqa", "tres", "maxiqa", "uiqa", "ahiq", "maniqa")


def release_options(model: str) -> dict:
    """Build options of the release the metric named after ``model`` scores with."""
    _, release = METRICS[model].model
    return get_entry(model).releases[release].options


def matmul_gflops(
    device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 10
) -> float:
    """GFLOP/s of an n x n matmul in ``dtype``: the machine's practical peak for these networks."""
    a, b = (torch.rand(n, n, device=device).to(dtype) for _ in range(2))
    a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def scoring_net(model: str, device: torch.device, precision: str = "float32") -> torch.nn.Module:
    """The release's network with random weights, prepared as a loaded metric prepares it."""
    entry = get_entry(model)
    net = prepare_for_scoring(entry.build(**release_options(model)).eval(), entry)
    return with_precision(net, entry, precision).to(device)


def bench(
    model, policy, dist, ref, device, grid_tiles: int, batch: int, repeats: int, precision="float32"
) -> dict:
    entry = get_entry(model)
    options = release_options(model)
    net = scoring_net(model, device, precision)
    fr = entry.kind == "FR"
    size = entry.inputs.net_input.size
    tiles = len(grid_positions(*dist.shape[-2:], size)) if policy == "grid" else None
    crops = entry.inputs.per_image(policy)
    if isinstance(entry.inputs, Views):  # UIQA: three whole-image views

        def run():
            return entry.inputs.score(dist, net=net, seed=2, salient="centre")

        timed_crops = crops
    else:
        # grid: time a strip of the image holding ``grid_tiles`` tiles, then scale
        x, y = dist, ref
        if policy == "grid":
            x, y = dist[..., :size, : size * grid_tiles], ref[..., :size, : size * grid_tiles]
        timed_crops = grid_tiles if policy == "grid" else crops
        kwargs = dict(
            net=net,
            sampling=policy,
            n_crops=0,
            seed=0,
            overlap=0,
            batch_size=batch,
        )

        def run():
            return entry.inputs.score(x, y if fr else None, **kwargs)

    with torch.inference_mode():
        _, seconds = time_call(lambda: (run(), _sync(device)), repeats)  # median, warm
    per_crop_macs = cost.macs_per_forward(model, **options)
    seconds_per_image = seconds * crops / timed_crops
    gmacs = per_crop_macs * crops / 1e9
    return {
        "model": model,
        "policy": policy,
        "crops": crops,
        "GMACs": round(gmacs, 1),
        "s/image": round(seconds_per_image, 2),
        "timed": f"scaled from {timed_crops} tiles" if tiles else "whole image",
        "GFLOP/s": round(2 * gmacs / seconds_per_image, 1),
    }


def main() -> None:
    tune_process()  # as the iqa4k command does, before torch starts its threads
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--policies", default="official,grid")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--grid-tiles", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls (median)")
    args = parser.parse_args()
    device = torch.device(args.device)
    dist, ref = (t.to(device) for t in uhd_pair())
    peak = matmul_gflops(device)
    print(f"{machine()}; fp32 matmul {peak:.1f} GFLOP/s", flush=True)
    rows = []
    for model in args.models.split(","):
        for policy in args.policies.split(","):
            if model == "uiqa" and policy != "official":
                continue  # UIQA has one way to see an image: its three views
            row = bench(
                model, policy, dist, ref, device, args.grid_tiles, args.batch_size, args.repeats
            )
            if device.type == "cuda":
                row["images/s"] = round(1 / row["s/image"], 2)
            rows.append(row)
            print(row, flush=True)
    # the practical peak: the better of the rates measured before and after the models (a
    # busy moment during one measurement would flatter every share)
    peak = max(peak, matmul_gflops(device))
    for row in rows:
        row["% of matmul"] = round(100 * row["GFLOP/s"] / peak)
    columns = ["model", "policy", "crops", "GMACs", "s/image", "timed", "GFLOP/s", "% of matmul"]
    if device.type == "cuda":
        columns.append("images/s")
    print(f"\nfp32 matmul peak: {peak:.1f} GFLOP/s\n")
    print(markdown_table(rows, columns))
    print(f"\nwrote {write_json('deep_4k_' + device.type, rows)}")


if __name__ == "__main__":
    main()

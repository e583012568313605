"""AHIQ's two CPU replacements against the torch/torchvision kernels they stand in for, side
by side in one run, on the shapes of a batch of 4 crop pairs (what ``deep_4k.py`` runs).

Run: ``python benchmarks/ahiq_kernels.py``. Prints a Markdown table, writes
``benchmarks/results/ahiq_kernels.json``; the largest difference of the outputs is shown too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

from _common import machine, markdown_table, time_call, write_json
from iqa4k.models.ahiq import _upsample_nearest, deform_conv3x3


def main() -> None:
    g = torch.Generator().manual_seed(0)
    # the deformable convolution warps dist and ref CNN maps: 2 x 4 maps of 768x56x56
    x = torch.rand(8, 768, 56, 56, generator=g)
    offset = torch.randn(8, 18, 56, 56, generator=g) * 2
    weight, bias = torch.randn(768, 768, 3, 3, generator=g) * 0.01, torch.zeros(768)
    vit = torch.rand(4, 3840, 28, 28, generator=g)  # contiguous NCHW, as AHIQ's ViT map
    cases = [
        (
            "deformable conv 3x3, 768 -> 768 ch, 8 x 56x56",
            lambda: deform_conv2d(x, offset, weight, bias, padding=1),
            lambda: deform_conv3x3(x, offset, weight, bias),
        ),
        (
            "nearest 2x upsampling, 4 x 3840 ch, 28 -> 56",
            lambda: F.interpolate(vit, size=(56, 56), mode="nearest"),
            lambda: _upsample_nearest(vit, torch.Size([56, 56])),
        ),
    ]
    rows = []
    with torch.inference_mode():
        for name, theirs, ours in cases:
            _, t_theirs = time_call(theirs, 3)
            _, t_ours = time_call(ours, 3)
            rows.append(
                {
                    "operation": name,
                    "torch/torchvision s": round(t_theirs, 3),
                    "iqa4k s": round(t_ours, 3),
                    "ratio": round(t_theirs / t_ours, 1),
                    "max abs diff": f"{(theirs() - ours()).abs().max().item():.1e}",
                }
            )
            print(rows[-1], flush=True)
    print(f"\n{machine()}\n")
    print(markdown_table(rows, list(rows[0])))
    print(f"\nwrote {write_json('ahiq_kernels', rows)}")


if __name__ == "__main__":
    main()

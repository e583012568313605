"""When the OpenCV fast paths may replace the torch ones.

The classical metrics have two implementations of their heavy steps: torch (differentiable,
any device) and OpenCV (CPU inference only). OpenCV's separable filters, area resampling and
norms are several times faster than torch's generic CPU kernels at 4K, and give the same
numbers (the tests compare both paths).
"""

from __future__ import annotations

import torch


def cpu_inference(*tensors: torch.Tensor) -> bool:
    """True when the tensors are on the CPU and no gradient is wanted."""
    on_cpu = all(t.device.type == "cpu" for t in tensors)
    return on_cpu and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))

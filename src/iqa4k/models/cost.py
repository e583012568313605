"""What a deep model costs: parameters and multiply-accumulates per crop and per 4K image.

MACs come from torch's own FLOP counter (``torch.utils.flop_counter``), run on the ``meta``
device so nothing is computed: matmuls and convolutions are counted (attention included),
element-wise work is not, as in the papers' tables (fvcore, thop, ptflops count the same way).
"""

from __future__ import annotations

import functools

import torch
from torch.utils.flop_counter import FlopCounterMode

from . import get_entry


def _deform_conv2d_flops(input_shape, weight_shape, *args, out_shape, **kwargs) -> int:
    """torchvision's deformable convolution (AHIQ), which torch's counter does not know:
    a convolution's multiply-adds (bilinear sampling of the offsets is not counted)."""
    _, in_per_group, kh, kw = weight_shape
    batch, out_channels, oh, ow = out_shape
    return 2 * batch * out_channels * oh * ow * in_per_group * kh * kw


@functools.lru_cache(maxsize=16)
def _meta_network(model: str, options: tuple) -> torch.nn.Module:
    """``model`` built on the ``meta`` device (shapes only, no memory), once per options."""
    with torch.device("meta"):
        return get_entry(model).build(**dict(options)).eval()


def parameters(model: str, **options) -> int:
    """Number of parameters of ``model`` (buffers excluded)."""
    net = _meta_network(model, tuple(sorted(options.items())))
    return sum(p.numel() for p in net.parameters())


def macs_per_forward(model: str, batch: int = 1, **options) -> int:
    """MACs of one forward pass of ``model`` on ``batch`` inputs (counted, not run)."""
    entry = get_entry(model)
    net = _meta_network(model, tuple(sorted(options.items())))
    size = entry.inputs.net_input.size
    inputs = [torch.empty(batch, 3, size, size, device="meta") for _ in range(entry.n_images)]
    counter = FlopCounterMode(display=False, custom_mapping=_custom_flops())
    with counter, torch.no_grad():
        net(*inputs)
    return counter.get_total_flops() // 2


def _custom_flops() -> dict:
    import torchvision  # noqa: F401 - registers torch.ops.torchvision

    return {torch.ops.torchvision.deform_conv2d: _deform_conv2d_flops}


def describe(model: str, policies: tuple[str, ...], **options) -> list[tuple[str, int, float]]:
    """``(policy, crops, GMACs)`` per policy for a 3840x2160 image."""
    per_crop = macs_per_forward(model, **options)
    rows = []
    for policy in policies:
        n = get_entry(model).inputs.per_image(policy)
        rows.append((policy, n, per_crop * n / 1e9))
    return rows

"""Helpers for testing models against other implementations of them.

:func:`deterministic_init` gives two networks whose state_dicts share names identical weights,
whatever their module code: how every model here was compared with its official code.
"""

from __future__ import annotations

import zlib

import torch


def deterministic_init(
    model: torch.nn.Module,
    seed: int = 0,
    keep: tuple[str, ...] = ("attn_mask", "relative_position_index", "num_batches_tracked"),
) -> torch.nn.Module:
    """Fill every floating parameter and buffer from its name and ``seed`` alone.

    Two implementations whose state_dicts share names get identical weights, whatever their
    module code, which is how outputs are compared with the official code. Matrices get
    variance 1/fan_in; 1-D norm weights and running variances 1 +- 0.1; biases and running
    means +-0.1. Buffers named in ``keep`` are structural and left as built.
    """
    state = model.state_dict()
    with torch.no_grad():
        for name, tensor in state.items():
            if not tensor.is_floating_point() or name.rsplit(".", 1)[-1] in keep:
                continue
            g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
            u = torch.rand(tensor.shape, generator=g, dtype=torch.float64) * 2 - 1
            leaf = name.rsplit(".", 1)[-1]
            if tensor.dim() >= 2:
                fan_in = max(1, tensor[0].numel())
                value = u * (3.0 / fan_in) ** 0.5
            elif leaf in ("weight", "running_var"):
                value = 1 + 0.1 * u
            else:
                value = 0.1 * u
            tensor.copy_(value.to(tensor.dtype))
    return model

"""Swin window attention shared by iqa4k's models: window partitions, the shifted-window mask,
and a softmax without subnormal numbers (same results, an order of magnitude faster on CPUs
that do not flush subnormals, x86's default) for MANIQA's blocks and UIQA's torchvision ones.

Swin's shifted windows mask attention between wrapped regions by adding -100 to the logits, so
the softmax leaves probabilities near ``exp(-100) = 4e-44``: subnormal in float32. Every
product with a subnormal takes a slow microcode path on x86, and the probabilities are next
multiplied by the values (``benchmarks/subnormals.py`` times torchvision's Swin-T both ways).
Setting them to zero cannot change a float32 sum of normal numbers (anything below 2^-126 is
lost next to a sum above 2^-102), so the outputs are the official ones; and they no longer
depend on whether the process flushes subnormals.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


def flushed_softmax(logits: torch.Tensor) -> torch.Tensor:
    """``softmax(logits, dim=-1)`` with subnormal probabilities set to zero (NaN stays NaN).

    One pass, in place when no gradient is recorded (the softmax's backward needs its output).
    """
    p = logits.softmax(dim=-1)
    return F.threshold(p, _largest_subnormal(p.dtype), 0.0, inplace=not p.requires_grad)


@functools.cache
def _largest_subnormal(dtype: torch.dtype) -> float:
    tiny = torch.tensor(torch.finfo(dtype).tiny, dtype=dtype)
    return torch.nextafter(tiny, torch.zeros_like(tiny)).item()


def shift_mask(size: tuple[int, int], window: tuple[int, int], shift: tuple[int, int]):
    """Swin's additive mask ``[windows, N, N]`` (0 within a region, -100 across) for a grid of
    ``size`` rolled by ``shift``: along each shifted axis, the part before the last window, the
    last window up to the wrap, and the wrapped strip are three regions."""
    labels = []
    for n, win, s in zip(size, window, shift, strict=True):
        label = torch.zeros(n)
        if s:  # an axis without a shift is one region
            label[n - win :] = 1
            label[n - s :] = 2
        labels.append(label)
    region = labels[0][:, None] * 3 + labels[1][None, :]
    cells = partition_windows(region[None, :, :, None], window)[..., 0]  # [windows, N]
    return torch.where(cells[:, None, :] != cells[:, :, None], -100.0, 0.0)


@functools.lru_cache(maxsize=32)
def _cached_shift_mask(size, window, shift, device, dtype) -> torch.Tensor:
    """:func:`shift_mask` made once per device and dtype (read only, never a buffer): no copy
    to the device at every block."""
    with torch.inference_mode(False):
        return shift_mask(size, window, shift).to(device=device, dtype=dtype)


def partition_windows(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """``[B, H, W, C]`` -> ``[B * windows, wy * wx, C]``, windows in row-major order."""
    b, h, w, c = x.shape
    wy, wx = window
    x = x.reshape(b, h // wy, wy, w // wx, wx, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wy * wx, c)


@functools.lru_cache(maxsize=64)
def _window_gathers(size, window, shift, crop, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token indices of an ``[H, W]`` grid: ``order`` lists, window after window, the tokens of
    the grid rolled by ``-shift``; ``back`` lists, for each token of the top-left ``crop`` of
    the grid, its place in that order."""
    h, w = size
    with torch.inference_mode(False):  # cached: usable where autograd saves the indices
        grid = torch.arange(h * w).view(1, h, w, 1)
        order = partition_windows(torch.roll(grid, (-shift[0], -shift[1]), dims=(1, 2)), window)
        order = order.flatten()
        back = torch.empty_like(order)
        back[order] = torch.arange(order.numel())
        return order.to(device), back.view(h, w)[: crop[0], : crop[1]].flatten().to(device)


def to_windows(x: torch.Tensor, window: tuple[int, int], shift=(0, 0)) -> torch.Tensor:
    """``[B, H, W, C]`` rolled by ``-shift``, then :func:`partition_windows`, in one copy."""
    b, h, w, c = x.shape
    order, _ = _window_gathers((h, w), window, tuple(shift), (h, w), x.device)
    return x.reshape(b, h * w, c)[:, order].view(-1, window[0] * window[1], c)


def from_windows(x, size, window, shift=(0, 0), crop=None) -> torch.Tensor:
    """The inverse of :func:`to_windows` for a grid of ``size``, keeping its top-left ``crop``
    (default: all of it): -> ``[B, crop_h, crop_w, C]``, in one copy."""
    crop = tuple(crop or size)
    _, back = _window_gathers(tuple(size), window, tuple(shift), crop, x.device)
    c = x.shape[-1]
    return x.reshape(-1, size[0] * size[1], c)[:, back].view(-1, *crop, c)


def swin_window_attention(attn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision ``ShiftedWindowAttention.forward`` of ``attn`` on ``x`` ``[B, H, W, C]``,
    the same operations in the same order, with :func:`flushed_softmax`."""
    b, h, w, c = x.shape
    window = tuple(attn.window_size)
    # pad to whole windows (right, bottom); no shift along an axis one window covers
    x = F.pad(x, (0, 0, 0, -w % window[1], 0, -h % window[0]))
    size = tuple(x.shape[1:3])
    shifts = zip(attn.shift_size, window, size, strict=True)
    shift = tuple(s if win < n else 0 for s, win, n in shifts)
    x = to_windows(x, window, shift)
    n, heads = x.shape[1], attn.num_heads
    qkv = F.linear(x, attn.qkv.weight, attn.qkv.bias)
    q, k, v = qkv.reshape(x.shape[0], n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    logits = (q * (c // heads) ** -0.5).matmul(k.transpose(-2, -1))
    logits += attn.get_relative_position_bias()  # in place: same sums, no new array
    if any(shift):
        mask = _cached_shift_mask(size, window, shift, logits.device, logits.dtype)
        logits.view(b, mask.shape[0], heads, n, n).add_(mask[None, :, None])
    p = F.dropout(flushed_softmax(logits), p=attn.attention_dropout, training=attn.training)
    x = p.matmul(v).transpose(1, 2).reshape(x.shape[0], n, c)
    x = F.dropout(F.linear(x, attn.proj.weight, attn.proj.bias), attn.dropout, attn.training)
    return from_windows(x, size, window, shift, crop=(h, w))


@functools.cache
def _flushed_class() -> type:
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    class FlushedWindowAttention(ShiftedWindowAttention):
        """torchvision's window attention through :func:`swin_window_attention`."""

        forward = swin_window_attention

    return FlushedWindowAttention


def flush_swin_attention(net: nn.Module) -> nn.Module:
    """Route every torchvision ``ShiftedWindowAttention`` of ``net`` through
    :func:`swin_window_attention`; parameters, names and state dicts are unchanged."""
    flushed = _flushed_class()
    for module in net.modules():
        if type(module) is flushed.__base__:
            module.__class__ = flushed
    return net

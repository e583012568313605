"""A loaded network made faster for scoring, with the same function.

- Batch norms folded into the convolutions that feed them: in eval mode a batch norm is a
  per-channel affine map, so ``bn(conv(x))`` is one convolution with rescaled weights and a
  bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``); one pass over each feature map less.
  Folded where the dataflow is certain: consecutive (Conv2d, BatchNorm2d) items of an
  ``nn.Sequential`` (ResNet shortcuts), and ``convK``/``bnK`` in the ResNet modules whose
  forward applies ``bnK`` to ``convK``'s output and to nothing else (:data:`_RESNET_MODULES`).
- Channels-last memory for networks whose entry asks for it (ResNet-50 models): oneDNN's
  convolutions then skip a layout conversion at every layer.

Both change rounding only: scores move by about 1e-6 (``tests/test_deep_metric.py``), and
``benchmarks/deep_4k.py`` times the prepared networks. Training keeps the unfolded network.
"""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .entry import ModelEntry

# modules whose forward is bnK(convK(x)) for every pair of children convK, bnK
_RESNET_MODULES = {
    "torchvision.models.resnet.ResNet",
    "torchvision.models.resnet.Bottleneck",
    "torchvision.models.resnet.BasicBlock",
    "timm.models.resnet.ResNet",
    "timm.models.resnet.Bottleneck",
    "timm.models.resnet.BasicBlock",
    "iqa4k.models.hyperiqa._LdaBackbone",
}


def prepare_for_scoring(net: nn.Module, entry: ModelEntry) -> nn.Module:
    """``net`` (in eval mode) with its batch norms folded, channels-last if ``entry`` asks."""
    fold_batch_norms(net)
    if entry.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def fold_batch_norms(net: nn.Module) -> int:
    """Fold every batch norm that directly follows a convolution into it (in place); the
    batch norm becomes an identity. Returns how many were folded."""
    if net.training:
        raise ValueError("batch norms fold only in eval mode (running statistics)")
    folded = 0
    for module in list(net.modules()):
        for conv_name, bn_name in _conv_bn_pairs(module):
            conv, bn = module.get_submodule(conv_name), module.get_submodule(bn_name)
            if _foldable(conv, bn):
                module.register_module(conv_name, fuse_conv_bn_eval(conv, bn))
                module.register_module(bn_name, nn.Identity())
                folded += 1
    return folded


def _conv_bn_pairs(module: nn.Module) -> list[tuple[str, str]]:
    names = [name for name, _ in module.named_children()]
    if isinstance(module, nn.Sequential):
        return list(zip(names, names[1:], strict=False))
    if f"{type(module).__module__}.{type(module).__qualname__}" in _RESNET_MODULES:
        matches = (re.fullmatch(r"conv(\d+)", name) for name in names)
        return [(m[0], f"bn{m[1]}") for m in matches if m and f"bn{m[1]}" in names]
    return []


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d  # exact types: subclasses (timm's BatchNormAct2d) do more
        and type(bn) is nn.BatchNorm2d
        and bn.track_running_stats
        and conv.out_channels == bn.num_features
    )

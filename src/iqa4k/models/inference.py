"""A loaded network made faster for scoring, with the same function.

- Batch norms folded into the convolutions that feed them: in eval mode a batch norm is a
  per-channel affine map, so ``bn(conv(x))`` is one convolution with rescaled weights and a
  bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``); one pass over each feature map less.
  Folded where the dataflow is certain: consecutive (Conv2d, BatchNorm2d) items of an
  ``nn.Sequential`` (ResNet shortcuts), and the pairs of :data:`_CONV_BN_PAIRS`, modules
  (ResNet blocks, MaxViT's MBConv) whose forward applies the batch norm to the convolution's
  output and to nothing else.
- Channels-last memory for networks whose entry asks for it (HyperIQA, TReS, MaxIQA):
  oneDNN's convolutions then skip a layout conversion at every layer.

Both change rounding only: outputs stay within 1e-5 of the unprepared network's with the
test weights of ``tests/test_inference.py``. ``benchmarks/deep_4k.py`` times the prepared
networks. Training keeps the unfolded network.

On request (a deep metric's ``precision`` option, float32 by default) the network runs under
autocast in bfloat16, except its head (``ModelEntry.head``), which makes the score from the
features in float32: the scores move (``benchmarks/precision.py`` measures by how much) but
are not rounded to a 16-bit float.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .entry import ModelEntry

# float16 is not offered: MANIQA's activations overflow it (inf, then NaN scores) with the
# test weights, and bfloat16 has float32's range
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}


def _resnet(n: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"conv{k}", f"bn{k}") for k in range(1, n + 1))


# (convolution, batch norm) children, by module class, where the class's forward applies the
# batch norm to the convolution's output and to nothing else
_CONV_BN_PAIRS = {
    "torchvision.models.resnet.ResNet": _resnet(1),
    "torchvision.models.resnet.BasicBlock": _resnet(2),
    "torchvision.models.resnet.Bottleneck": _resnet(3),
    "timm.models.resnet.ResNet": _resnet(1),
    "timm.models.resnet.BasicBlock": _resnet(2),
    "timm.models.resnet.Bottleneck": _resnet(3),
    "iqa4k.models.hyperiqa._LdaBackbone": _resnet(1),
    "timm.models.maxxvit.Stem": (("conv1", "norm1"),),
    # norm2 follows conv2_kxk directly when the block has no se_early (checked below)
    "timm.models.maxxvit.MbConvBlock": (("conv1_1x1", "norm1"), ("conv2_kxk", "norm2")),
}
_BN_ACT = "timm.layers.norm_act.BatchNormAct2d"  # batch norm, then its drop and act modules


def prepare_for_scoring(net: nn.Module, entry: ModelEntry) -> nn.Module:
    """``net`` (in eval mode) with its batch norms folded, channels-last if ``entry`` asks."""
    fold_batch_norms(net)
    if entry.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def fold_batch_norms(net: nn.Module) -> int:
    """Fold every batch norm that directly follows a convolution into it (in place); the
    batch norm becomes an identity (or, for timm's BatchNormAct2d, its activation). Returns
    how many were folded."""
    if net.training:
        raise ValueError("batch norms fold only in eval mode (running statistics)")
    folded = 0
    for module in list(net.modules()):
        for conv_name, bn_name in _conv_bn_pairs(module):
            conv, bn = module.get_submodule(conv_name), module.get_submodule(bn_name)
            if _foldable(conv, bn):
                module.register_module(conv_name, fuse_conv_bn_eval(conv, bn))
                rest = nn.Sequential(bn.drop, bn.act) if _name(bn) == _BN_ACT else nn.Identity()
                module.register_module(bn_name, rest)
                folded += 1
    return folded


def _name(module: nn.Module) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def _conv_bn_pairs(module: nn.Module) -> tuple[tuple[str, str], ...]:
    if isinstance(module, nn.Sequential):
        names = [name for name, _ in module.named_children()]
        return tuple(zip(names, names[1:], strict=False))
    pairs = _CONV_BN_PAIRS.get(_name(module), ())
    if getattr(module, "se_early", None) is not None:
        pairs = pairs[:1]
    return pairs


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d  # exact types: subclasses may do more than they say
        and (type(bn) is nn.BatchNorm2d or _name(bn) == _BN_ACT)
        and bn.track_running_stats
        and conv.out_channels == bn.num_features
    )


def with_precision(net: nn.Module, entry: ModelEntry, precision: str) -> nn.Module:
    """``net`` run in ``precision`` (a key of :data:`PRECISIONS`): itself for ``float32``, else
    under autocast with ``entry.head`` in float32. Changes ``net`` in place."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return net
    for name in entry.head:
        parent, _, child = name.rpartition(".")
        owner = net.get_submodule(parent)
        owner.register_module(child, _FullPrecision(owner.get_submodule(child)))
    return _Autocast(net, dtype)


def _to_float(value):
    """Floating tensors in ``value`` (nested in tuples, lists and dicts) as float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(_to_float(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_float(v) for k, v in value.items()}
    return value


def _device_type(value) -> str:
    """The device type of the first tensor in ``value`` (nested as in :func:`_to_float`)."""
    if isinstance(value, torch.Tensor):
        return value.device.type
    if not isinstance(value, (tuple, list, dict)):
        return ""
    items = value.values() if isinstance(value, dict) else value
    return next(t for t in map(_device_type, items) if t)  # "" for non-tensor leaves


class _Autocast(nn.Module):
    """A network under autocast to ``dtype`` (matrix products and convolutions in it, the
    rest as autocast decides); its outputs as float32."""

    def __init__(self, net: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.net, self.dtype = net, dtype

    def forward(self, *args, **kwargs):
        with torch.autocast(_device_type(args), dtype=self.dtype):
            return _to_float(self.net(*args, **kwargs))


class _FullPrecision(nn.Module):
    """A submodule run in float32 on float32 inputs inside an autocast region."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args):
        with torch.autocast(_device_type(args), enabled=False):
            return self.module(*_to_float(args))

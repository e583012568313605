"""HyperIQA: a hyper network that predicts the weights of a small per-image quality regressor.

Paper: Shaolin Su, Qingsen Yan, Yu Zhu, Cheng Zhang, Xin Ge, Jinqiu Sun, Yanning Zhang,
"Blindly Assess Image Quality in the Wild Guided by a Self-Adaptive Hyper Network", CVPR 2020.
Official code: https://github.com/SSL92/hyperIQA (``models.py``: ``HyperNet``, ``TargetNet``;
read at commit c42e7279717e7dcb693a24b891fc14a4189a45ee, 2023-12-14), MIT licence.

Structure, for a 224x224 crop:

- ``res``: a ResNet-50 (stride on the 3x3 convolution, no classifier) whose four stages also
  feed "local distortion aware" taps: stages 1-3 go through a bias-free 1x1 convolution and a
  7x7/7 average pool, stage 4 through the pool alone, each then a linear layer (16, 16, 16 and
  176 outputs). Their concatenation (224 values) is the target network's input vector.
- the hyper network: stage 4 (2048x7x7) -> three 1x1 convolutions with ReLU (``conv1``) ->
  112x7x7 features. 3x3 convolutions on them give the target network's weight matrices
  (``fc{1..4}w_conv``, reshaped to 112x224, 56x112, 28x56 and 14x28); linear layers on their
  global average give its biases (``fc{1..4}b_fc``) and its last layer (``fc5w_fc``,
  ``fc5b_fc``).
- the target network: 224 -> 112 -> 56 -> 28 -> 14 with sigmoids, then a linear 14 -> 1. Its
  weights differ per image; the official code runs it as a grouped 1x1 convolution, here it is
  a batched matrix product (the same sums).

The score is on the training labels' scale: for the KonIQ release, MOS on roughly 0-100,
higher is better.
"""

from __future__ import annotations

import torch
from torch import nn

from ..weights import WeightsFile
from .entry import ModelEntry, Pretrained, Release
from .inputs import IMAGENET_MEAN, IMAGENET_STD, CropProtocol, Crops, NetInput

NET_INPUT = NetInput(size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD)
_EXPANSION = 4  # channels out of a torchvision Bottleneck per unit of its width

PROTOCOL = CropProtocol(
    n_crops=25,
    resize=(512, 384),
    source=(
        "data_loader.py (koniq-10k test transform: Resize((512, 384)), i.e. H=512 W=384, PIL "
        "bilinear, then RandomCrop(224)) with train_test_IQA.py test_patch_num=25; the "
        "predictions of the 25 crops are averaged (demo.py averages 10)"
    ),
)

RELEASES: dict[str, Release] = {
    "koniq": Release(
        file=WeightsFile(
            filename="koniq_pretrained.pkl",
            url="https://drive.google.com/file/d/1OOUmnbvpGea0LIGpIWEbOyxfWx6UCiiE",
            sha256=None,
            licence="MIT (repository licence of SSL92/hyperIQA; no separate terms for the weights)",
            note=(
                "Trained on KonIQ-10k; predicts MOS on about 0-100, higher is better. A plain "
                "HyperNet state_dict (355 entries) that demo.py loads strictly. Also published on "
                "Baidu cloud (https://pan.baidu.com/s/1yY3O8DbfTTtUwXn14Mtr8Q, password 1ty8)."
            ),
        ),
        metric="hyperiqa",
        summary="HyperIQA (ResNet-50 + hyper network), KonIQ-10k release.",
    ),
}

# the hyper network's outputs, in the official names (HyperNet.forward's dict keys)
PARA_KEYS = (
    "target_in_vec",
    *(f"target_fc{i}{kind}" for i in range(1, 6) for kind in ("w", "b")),
)


def _kaiming(module: nn.Module) -> None:
    nn.init.kaiming_normal_(module.weight)


class _LdaBackbone(nn.Module):
    """ResNet-50 trunk plus the four local-distortion-aware taps (the official ``res``)."""

    def __init__(self, lda_out_channels: int, target_in_size: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_ch = 64
        for index, (width, blocks, stride) in enumerate(
            ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), start=1
        ):
            setattr(self, f"layer{index}", self._stage(in_ch, width, blocks, stride))
            in_ch = width * _EXPANSION

        # taps on stages 1-3: squeeze channels, then a 7x7/7 pool leaves 8x8, 4x4 and 2x2 cells
        for index, (ch, squeezed, cells) in enumerate(
            ((256, 16, 64), (512, 32, 16), (1024, 64, 4)), start=1
        ):
            pool = nn.Sequential(nn.Conv2d(ch, squeezed, 1, bias=False), nn.AvgPool2d(7, 7))
            setattr(self, f"lda{index}_pool", pool)
            setattr(self, f"lda{index}_fc", nn.Linear(squeezed * cells, lda_out_channels))
        self.lda4_pool = nn.AvgPool2d(7, 7)
        self.lda4_fc = nn.Linear(2048, target_in_size - 3 * lda_out_channels)

        # the official initialisation (its pretrained path then overwrites the trunk)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for index in (1, 2, 3):
            _kaiming(getattr(self, f"lda{index}_pool")[0])
        for index in (1, 2, 3, 4):
            _kaiming(getattr(self, f"lda{index}_fc"))

    @staticmethod
    def _stage(in_ch: int, width: int, blocks: int, stride: int) -> nn.Sequential:
        from torchvision.models.resnet import Bottleneck  # deferred: see iqa4k.models

        out_ch = width * _EXPANSION
        shortcut = None
        if stride != 1 or in_ch != out_ch:
            shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )
        layers = [Bottleneck(in_ch, width, stride, shortcut)]
        layers += [Bottleneck(out_ch, width) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B,3,224,224]`` -> (stage-4 features ``[B,2048,7,7]``, target input ``[B,224]``)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        taps = []
        for index in (1, 2, 3, 4):
            x = getattr(self, f"layer{index}")(x)
            pooled = getattr(self, f"lda{index}_pool")(x)
            taps.append(getattr(self, f"lda{index}_fc")(pooled.flatten(1)))
        return x, torch.cat(taps, dim=1)


class TargetNet(nn.Module):
    """The official ``TargetNet(paras)(paras['target_in_vec'])`` for a whole batch: ``[B]``.

    It has no parameters of its own: each image brings its weights (:meth:`HyperIQA.hyper`),
    so every layer is a batched matrix-vector product.
    """

    def forward(self, paras: dict[str, torch.Tensor]) -> torch.Tensor:
        q = paras["target_in_vec"].flatten(1)
        for i in range(1, 6):
            weight = paras[f"target_fc{i}w"].flatten(2)  # [B, out, in]
            q = torch.einsum("boi,bi->bo", weight, q) + paras[f"target_fc{i}b"]
            if i < 5:  # the last layer is linear
                q = torch.sigmoid(q)
        return q[:, 0]  # (F) the official .squeeze() returns a 0-d tensor at B=1


class HyperIQA(nn.Module):
    """The official ``HyperNet`` with the target network evaluated on its outputs.

    Constructor arguments are ``HyperNet``'s; the defaults are the released configuration
    ``HyperNet(16, 112, 224, 112, 56, 28, 14, 7)``.
    """

    def __init__(
        self,
        lda_out_channels: int = 16,
        hyper_in_channels: int = 112,
        target_in_size: int = 224,
        target_fc1_size: int = 112,
        target_fc2_size: int = 56,
        target_fc3_size: int = 28,
        target_fc4_size: int = 14,
        feature_size: int = 7,
    ) -> None:
        super().__init__()
        self.feature_size = feature_size
        # layer widths of the target network, input first
        self.sizes = (
            target_in_size,
            target_fc1_size,
            target_fc2_size,
            target_fc3_size,
            target_fc4_size,
        )
        cells = feature_size**2
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            if (n_in * n_out) % cells:
                raise ValueError(f"target layer {n_in}x{n_out} is not divisible by {cells}")

        self.res = _LdaBackbone(lda_out_channels, target_in_size)
        self.pool = nn.AdaptiveAvgPool2d(1)
        hyper = hyper_in_channels
        self.conv1 = nn.Sequential(
            nn.Conv2d(2048, 1024, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(1024, 512, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(512, hyper, 1),
            nn.ReLU(inplace=True),
        )
        # layer i's weight matrix is a 3x3 conv output (n_in * n_out / cells channels) reshaped
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True), 1):
            setattr(self, f"fc{i}w_conv", nn.Conv2d(hyper, n_in * n_out // cells, 3, padding=1))
            setattr(self, f"fc{i}b_fc", nn.Linear(hyper, n_out))
        self.fc5w_fc = nn.Linear(hyper, target_fc4_size)
        self.fc5b_fc = nn.Linear(hyper, 1)
        self.target_net = TargetNet()

        # the official code re-initialises every weight-generating layer (not conv1)
        for i in (1, 2, 3, 4):
            _kaiming(getattr(self, f"fc{i}w_conv"))
            _kaiming(getattr(self, f"fc{i}b_fc"))
        _kaiming(self.fc5w_fc)
        _kaiming(self.fc5b_fc)

    def hyper(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The official ``HyperNet.forward``: the target network's input, weights and biases.

        Keys and shapes are the official ones (``target_in_vec`` ``[B,224,1,1]``,
        ``target_fc1w`` ``[B,112,224,1,1]``, ``target_fc1b`` ``[B,112]``, ...,
        ``target_fc5w`` ``[B,1,14,1,1]``, ``target_fc5b`` ``[B,1]``), so the dict can also be
        given to the official ``TargetNet``.
        """
        side = NET_INPUT.size
        if x.shape[-2:] != (side, side):
            # the taps' linear layers and the 7x7 hyper features only fit 224x224 crops
            raise ValueError(f"HyperIQA takes {side}x{side} crops, got {tuple(x.shape[-2:])}")
        b = x.shape[0]
        feat, vec = self.res(x)
        h = self.conv1(feat)
        g = self.pool(h).flatten(1)  # [B, hyper]: no squeeze, so B=1 keeps its batch axis
        paras = {"target_in_vec": vec.view(b, -1, 1, 1)}
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True), 1):
            weight = getattr(self, f"fc{i}w_conv")(h)
            paras[f"target_fc{i}w"] = weight.reshape(b, n_out, n_in, 1, 1)
            paras[f"target_fc{i}b"] = getattr(self, f"fc{i}b_fc")(g)
        paras["target_fc5w"] = self.fc5w_fc(g).view(b, 1, -1, 1, 1)
        paras["target_fc5b"] = self.fc5b_fc(g)
        return paras

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B,3,224,224]`` ImageNet-normalised crops -> ``[B]`` quality scores."""
        return self.target_net(self.hyper(x))


def build(**options: int) -> HyperIQA:
    """A HyperIQA with the official random initialisation (no ImageNet weights, no download)."""
    return HyperIQA(**options)


ENTRY = ModelEntry(
    name="hyperiqa",
    build=build,
    head=("target_net",),
    channels_last=True,  # benchmarks/deep_4k.py
    inputs=Crops(NET_INPUT, PROTOCOL),
    releases=RELEASES,
    citation=(
        "S. Su, Q. Yan, Y. Zhu, C. Zhang, X. Ge, J. Sun, Y. Zhang. Blindly assess image quality "
        "in the wild guided by a self-adaptive hyper network. CVPR, 2020."
    ),
    pretrained=(Pretrained("res", "torchvision-resnet50", drop=("fc.",)),),
)

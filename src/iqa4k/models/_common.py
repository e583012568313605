"""What every deep model module declares beside its network: input, test protocol, releases."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)  # (x - 0.5) / 0.5: inputs in [-1, 1]


@dataclass(frozen=True)
class NetInput:
    """What the network expects: square crops of ``size`` normalised by ``mean``/``std``."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``[B,3,H,W]`` in [0, 1] -> the network's input range."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


def pil_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[B,3,H,W]`` in [0, 1] resized to ``size`` (height, width) exactly as torchvision's
    ``Resize`` does on the official loaders' 8-bit PIL images: rounded to 8 bits, PIL's
    antialiased bilinear filter, back to [0, 1]. Torch's own antialiased bilinear differs from
    it by up to a grey level, which is visible in the scores of the released models."""
    import numpy as np
    from PIL import Image

    out = []
    for image in x:
        pixels = image.detach().clamp(0, 1).mul(255).round().to(torch.uint8)
        pil = Image.fromarray(pixels.permute(1, 2, 0).cpu().numpy())
        resized = np.asarray(pil.resize((size[1], size[0]), Image.BILINEAR))
        out.append(torch.from_numpy(resized.copy()).permute(2, 0, 1))
    return torch.stack(out).to(device=x.device, dtype=x.dtype) / 255.0


@dataclass(frozen=True)
class TestProtocol:
    """The official test-time sampling: optional resize, then ``n_crops`` random crops."""

    n_crops: int  # random crops of NetInput.size averaged per image (1 and centre: one crop)
    resize: tuple[int, int] | None = None  # (height, width) before cropping, as the official
    centre: bool = False  # a single centre crop instead of random ones
    source: str = ""  # where in the official code this protocol comes from


@dataclass(frozen=True)
class Release:
    """An official checkpoint: where it is published and how to read it."""

    filename: str
    url: str  # direct link when there is one, else the page it is published on
    sha256: str | None  # full hex digest, or a prefix of it (torch.hub file-name style)
    format: Literal["state_dict", "pickled_module", "ahiq_heads", "safetensors"]
    options: dict[str, Any] = field(default_factory=dict)  # build options this release needs
    licence: str = ""
    note: str = ""


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

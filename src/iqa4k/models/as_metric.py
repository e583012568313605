"""Deep models as metrics: released weights in, whole images scored by a declared policy.

The deep entries of the metric table (one per official release) are at the end.

:func:`setup` finds and loads a release's weights once, when the metric is created (so a
missing file fails there, with instructions); :func:`score` and :func:`score_fr` turn images
of any size into crops (:mod:`iqa4k.sampling`), run them in batches and average.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .. import weights
from ..sampling import POLICIES, crop, positions
from ..spec import MetricSpec, Option
from . import model_module
from ._common import TestProtocol
from .checkpoint import load_into, read_checkpoint, save_checkpoint


def release_entry(metric: str, model: str, release: str) -> weights.WeightsFile:
    """The weights-cache entry of a model release (registered on first use)."""
    rel = model_module(model).RELEASES[release]
    direct = "drive.google.com" not in rel.url and "/folders/" not in rel.url
    return weights.register(
        weights.WeightsFile(
            name=f"{model}-{release}",
            filename=rel.filename,
            url=rel.url,
            sha256=rel.sha256,
            licence=rel.licence,
            metrics=(metric,),
            pass_as=f"create_metric('{metric}', weights='/path/to/{rel.filename}')",
            fetch_as=f"create_metric('{metric}')" if direct else "",
        )
    )


def weights_on_disk(spec: MetricSpec) -> bool:
    """Whether the release a deep metric scores with is in the cache (no download)."""
    model, release = spec.model
    return weights.available(release_entry(spec.name, model, release).name)


def load_network(metric: str, model: str, release: str, path: str = "") -> torch.nn.Module:
    """The network of ``model`` with the weights of ``release`` (or the file ``path``).

    Without ``path`` the release file comes from the cache, or is downloaded into it when the
    release has a direct link (never when ``IQA4K_OFFLINE`` is set).
    """
    module = model_module(model)
    rel = module.RELEASES[release]
    entry = release_entry(metric, model, release)
    file = weights.resolve(entry.name, path or None, download=True)
    state = read_checkpoint(file)
    options = {**rel.options, **_saved_options(state)}
    net = module.build(**options)
    if hasattr(module, "load_release"):  # releases split over several files (AHIQ)
        module.load_release(net, state, metric=metric)
    else:
        load_into(net, state, f"{file}")
    return net.eval().requires_grad_(False)


def convert(metric: MetricSpec, source: str | Path, out: str | Path) -> Path:
    """Read an official checkpoint of ``metric``'s release, check it, write ours (safetensors)."""
    from .. import __version__

    model, release = metric.model
    net = load_network(metric.name, model, release, str(source))
    rel = model_module(model).RELEASES[release]
    meta = {
        "model": model,
        "release": release,
        "metric": metric.name,
        "options": rel.options,
        "source": Path(source).name,
        "source_sha256": weights.sha256_of(source),
        "note": rel.note,
        "iqa4k": __version__,
    }
    return save_checkpoint(out, net.state_dict(), meta)


def _saved_options(state: Mapping[str, Any]) -> dict[str, Any]:
    return dict(state.get("__metadata__", {}).get("options", {}))


def setup_for(metric: str, model: str, release: str):
    """The ``MetricSpec.setup`` of a deep metric: options -> call options with the network."""

    def setup(options: Mapping[str, Any]) -> dict[str, Any]:
        call = {k: v for k, v in options.items() if k != "weights"}
        call["net"] = load_network(metric, model, release, options.get("weights", ""))
        call["protocol"] = model_module(model).PROTOCOL
        return call

    return setup


def _resized(x: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """The official pre-crop resize (PIL bilinear with antialiasing), when there is one."""
    if size is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _run(net: torch.nn.Module, batches: list[tuple[torch.Tensor, ...]]) -> torch.Tensor:
    scores = [net(*(net.net_input.normalize(t) for t in inputs)) for inputs in batches]
    return torch.cat(scores)


def _crops_of(
    images: tuple[torch.Tensor, ...],
    size: int,
    protocol: TestProtocol,
    sampling_policy: str,
    n_crops: int,
    seed: int,
    overlap: int,
) -> list[torch.Tensor]:
    """The crops of one image (and its reference): the same positions in each."""
    if sampling_policy == "official":
        images = tuple(_resized(im[None], protocol.resize)[0] for im in images)
    _, height, width = images[0].shape
    policy = "centre" if sampling_policy == "official" and protocol.centre else sampling_policy
    n = n_crops or protocol.n_crops
    where = positions(policy, height, width, size, n, seed, overlap)
    return [crop(im, where, size) for im in images]


def score(
    x: torch.Tensor,
    ref: torch.Tensor | None = None,
    *,
    net: torch.nn.Module,
    protocol: TestProtocol,
    sampling: str,
    n_crops: int,
    seed: int,
    overlap: int,
    batch_size: int,
) -> torch.Tensor:
    """Mean network score over each image's crops -> ``[B]`` (``ref``: full-reference)."""
    out = []
    with torch.inference_mode():
        for b in range(x.shape[0]):
            images = (x[b],) if ref is None else (x[b], ref[b])
            size = net.net_input.size
            crops = _crops_of(images, size, protocol, sampling, n_crops, seed, overlap)
            batches = [
                tuple(c[i : i + batch_size] for c in crops)
                for i in range(0, crops[0].shape[0], batch_size)
            ]
            out.append(_run(net, batches).mean())
    return torch.stack(out).to(torch.float32)


# ------------------------------------------------------------------------------ the table

_CROP_OPTIONS = {
    "weights": Option(
        "",
        "checkpoint file (official format or ours); empty: this release from the iqa4k cache, "
        "downloaded on first use when it has a direct link",
    ),
    "sampling": Option(
        "official",
        "crops scored: official (the model's test protocol, seeded random crops), grid "
        "(tiles covering the whole image) or centre (one centre crop)",
        POLICIES,
    ),
    "n_crops": Option(0, "random crops for sampling=official; 0: the official number", minimum=0),
    "seed": Option(0, "seed of the random crops: the same seed gives the same score"),
    "overlap": Option(0, "pixels shared by neighbouring tiles for sampling=grid", minimum=0),
    "batch_size": Option(
        16, "crops per forward pass (memory; scores do not depend on it)", minimum=1
    ),
}


def _deep(
    name: str,
    model: str,
    release: str,
    summary: str,
    citation: str,
    kind: str = "NR",
    score_range: tuple[float, float] = (-math.inf, math.inf),
) -> MetricSpec:
    return MetricSpec(
        name=name,
        kind=kind,
        higher_is_better=True,
        score_range=score_range,
        differentiable=False,
        summary=summary,
        citation=citation,
        function=score,
        options=_CROP_OPTIONS,
        setup=setup_for(name, model, release),
        model=(model, release),
    )


_MANIQA = (
    "S. Yang, T. Wu, S. Shi, S. Lao, Y. Gong, M. Cao, J. Wang, Y. Yang. MANIQA: Multi-dimension "
    "attention network for no-reference image quality assessment. CVPR Workshops (NTIRE), 2022."
)
SPECS = [
    _deep(
        "hyperiqa",
        "hyperiqa",
        "koniq",
        "HyperIQA (ResNet-50 + hyper network), KonIQ-10k release.",
        "S. Su, Q. Yan, Y. Zhu, C. Zhang, X. Ge, J. Sun, Y. Zhang. Blindly assess image quality "
        "in the wild guided by a self-adaptive hyper network. CVPR, 2020.",
    ),
]

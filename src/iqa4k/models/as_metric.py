"""Deep models as metrics: released weights in, whole images scored by a declared policy.

:func:`setup_for` makes the setup that finds and loads a release's weights once, when the
metric is created (so a missing file fails there, with instructions); :func:`score` turns
images of any size into crops (:mod:`iqa4k.sampling`), runs them in batches and averages;
:func:`score_uiqa` builds UIQA's three views instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torch.nn.functional as F

from .. import weights
from ..sampling import crop, positions
from ..spec import MetricSpec
from . import model_module
from ._common import TestProtocol, pil_resize
from .checkpoint import load_into, read_checkpoint, save_checkpoint

_FILE_HOSTS = ("github.com", "huggingface.co")


def release_entry(metric: str, model: str, release: str) -> weights.WeightsFile:
    """The weights-cache entry of a model release (registered on first use)."""
    rel = model_module(model).RELEASES[release]
    # Only file hosts serve the file itself at the published address; Google Drive and
    # Dropbox links lead to pages, so those files are fetched by hand.
    direct = urlparse(rel.url).hostname in _FILE_HOSTS
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


def _releases(model: str, release: str) -> list[str]:
    """The release and any it needs beside it (AHIQ's official heads need two backbones)."""
    module = model_module(model)
    extra = getattr(module, "extra_releases", None)
    return [release, *(extra(**module.RELEASES[release].options) if extra else ())]


def weights_on_disk(spec: MetricSpec) -> bool:
    """Whether the files a deep metric scores with are in the cache (no download)."""
    model, release = spec.model
    names = (release_entry(spec.name, model, r).name for r in _releases(model, release))
    return all(weights.available(name) for name in names)


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

        def fetch(name: str) -> dict[str, Any]:
            entry = release_entry(metric, model, name)
            return read_checkpoint(weights.resolve(entry.name, download=True))

        module.load_release(net, state, fetch)
    else:
        load_into(net, state, f"{file}")
    return net.eval().requires_grad_(False)


def convert(metric: MetricSpec, source: str | Path, out: str | Path) -> Path:
    """Read an official checkpoint of ``metric``'s release, check it, write ours (safetensors)."""
    from .._version import __version__

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
    """The official pre-crop resize (PIL bilinear on 8 bits), when there is one."""
    if size is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    return pil_resize(x, size)


def _patch_capable(net: torch.nn.Module) -> bool:
    """Whether the network scores patches inside a crop (MANIQA, AHIQ: ``return_patches``)."""
    return "return_patches" in inspect.signature(net.forward).parameters


def _run(
    net: torch.nn.Module, crops: list[torch.Tensor], batch_size: int, patches: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Scores ``[N]`` of the crops, and when asked their patch scores and patch weights
    ``[N,h,w]`` (None otherwise)."""
    scores, patch_scores, patch_weights = [], [], []
    for i in range(0, crops[0].shape[0], batch_size):
        inputs = [net.net_input.normalize(c[i : i + batch_size]) for c in crops]
        if patches:
            s, f, w = net(*inputs, return_patches=True)
            patch_scores.append(f)
            patch_weights.append(w)
        else:
            s = net(*inputs)
        scores.append(s)
    if not patches:
        return torch.cat(scores), None, None
    return torch.cat(scores), torch.cat(patch_scores), torch.cat(patch_weights)


def _crops_of(
    images: tuple[torch.Tensor, ...],
    size: int,
    protocol: TestProtocol,
    sampling_policy: str,
    n_crops: int,
    seed: int,
    overlap: int,
) -> tuple[list[torch.Tensor], list[tuple[int, int]], tuple[int, int]]:
    """The crops of one image (and its reference), the same windows in each; the windows;
    and the size of the image they were cut from (after the official resize, if any)."""
    if sampling_policy == "official":
        images = tuple(_resized(im[None], protocol.resize)[0] for im in images)
    _, height, width = images[0].shape
    policy = "centre" if sampling_policy == "official" and protocol.centre else sampling_policy
    n = n_crops or protocol.n_crops
    where = positions(policy, height, width, size, n, seed, overlap)
    return [crop(im, where, size) for im in images], where, (height, width)


def _paint(
    values: torch.Tensor, where: list[tuple[int, int]], size: int, shape: tuple[int, int]
) -> torch.Tensor:
    """Average crop values (``[N]``) or patch maps (``[N,h,w]``) over their windows ->
    ``[H,W]``, NaN where no crop fell."""
    total = torch.zeros(shape, dtype=torch.float64)
    count = torch.zeros(shape, dtype=torch.float64)
    for value, (top, left) in zip(values.double().cpu(), where, strict=True):
        if value.dim() == 2:  # patch scores: each patch covers its share of the crop
            value = F.interpolate(value[None, None], size=(size, size), mode="nearest")[0, 0]
        total[top : top + size, left : left + size] += value
        count[top : top + size, left : left + size] += 1
    return (total / count).float()  # 0 / 0 = NaN where uncovered


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
    aggregate: str = "mean",
    maps: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Each image's crops scored and pooled -> ``[B]`` (``ref``: full-reference).

    ``aggregate="mean"`` averages the crop scores (the official protocols); ``"patch_weights"``
    pools every patch of every crop with the model's own patch weights, as the model pools
    the patches of one crop (MANIQA, AHIQ). With a ``maps`` list, each image's quality map
    ``[H,W]`` is appended to it: per-patch scores for models that have them (MANIQA, AHIQ),
    else each crop's score over its window, averaged where crops overlap, NaN where none fell.
    """
    out = []
    patches = (maps is not None or aggregate == "patch_weights") and _patch_capable(net)
    with torch.inference_mode():
        for b in range(x.shape[0]):
            images = (x[b],) if ref is None else (x[b], ref[b])
            size = net.net_input.size
            crops, where, shape = _crops_of(
                images, size, protocol, sampling, n_crops, seed, overlap
            )
            scores, patch_scores, patch_weights = _run(net, crops, batch_size, patches)
            if aggregate == "patch_weights":
                out.append((patch_scores * patch_weights).sum() / patch_weights.sum())
            else:
                out.append(scores.mean())
            if maps is not None:
                painted = _paint(patch_scores if patches else scores, where, size, shape)
                if shape != tuple(x.shape[-2:]):  # back from the official resize
                    painted = F.interpolate(painted[None, None], size=x.shape[-2:])[0, 0]
                maps.append(painted)
    return torch.stack(out).to(torch.float32)


def score_uiqa(
    x: torch.Tensor, *, net: torch.nn.Module, protocol: TestProtocol, seed: int, salient: str
) -> torch.Tensor:
    """UIQA's three views of each image (fragment offsets seeded per image) -> ``[B]``."""
    from .uiqa import views

    with torch.inference_mode():
        scores = [
            net(*views(x[b : b + 1], torch.Generator().manual_seed(seed), salient))
            for b in range(x.shape[0])
        ]
    return torch.cat(scores).to(torch.float32)

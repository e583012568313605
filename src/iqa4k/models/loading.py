"""Releases -> networks: find a release's files, read them (no code run), build and load.

A deep metric's setup (:func:`setup`) loads the network once, when the metric is created, so a
missing file fails there with instructions. :func:`convert` writes any checkpoint the metric
reads as ours (safetensors + JSON metadata), the format training writes too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from .. import weights
from ..metric_spec import MetricSpec, Setup
from .checkpoint import CheckpointError, load_into, read_checkpoint, read_meta, save_checkpoint
from .entry import ModelEntry
from .inference import prepare_for_scoring, with_precision


def weights_on_disk(entry: ModelEntry, release: str) -> bool:
    """Whether the files a release scores with are in the cache (no download)."""
    needed = (release, *entry.releases[release].needs)
    return all(weights.available(entry.file_name(key)) for key in needed)


def missing_weights(spec: MetricSpec) -> str:
    """Why the metric of ``spec`` cannot run without a download ("" when its files are in the
    cache, or it is not a deep metric)."""
    if spec.model is None:
        return ""
    from . import get_entry

    model, release = spec.model
    if weights_on_disk(get_entry(model), release):
        return ""
    return (
        f"its weights ({model}, release {release}) are not in the iqa4k cache; pass "
        f"--weights {spec.name}=FILE, or put them in the cache (iqa4k weights list)"
    )


def load_network(entry: ModelEntry, release: str, path: str | Path = "") -> torch.nn.Module:
    """The network of ``entry`` with the weights of ``release`` (or the file ``path``).

    Without ``path`` the release file comes from the cache, or is downloaded into it when the
    release has a direct link (never when ``IQA4K_OFFLINE`` is set). Build options are the
    release's, overridden by those saved in the file (our checkpoints record them).
    """
    file = weights.resolve(entry.file_name(release), path or None, download=True)
    state, meta = read_checkpoint(file)
    _check_finite(state, file)
    options = {**entry.releases[release].options, **meta.get("options", {})}
    try:
        net = entry.build(**options)
    except (TypeError, ValueError) as err:  # options edited by hand, or of another version
        raise CheckpointError(
            f"{file}: its build options {options} do not build {entry.name}: {err}"
        ) from None
    if entry.load is not None:  # official files of the model's own layout

        def fetch(key: str) -> Mapping[str, Any]:
            return read_checkpoint(weights.resolve(entry.file_name(key), download=True))[0]

        entry.load(net, state, fetch)
    else:
        load_into(net, state, f"{file}")
    return net.eval().requires_grad_(False)


def _check_finite(state: Mapping[str, Any], file: Path) -> None:
    """Refuse NaN or infinite weights: they would score every image NaN without a word."""
    for name, value in state.items():
        if isinstance(value, Mapping):  # several state_dicts in one file (AHIQ)
            _check_finite(value, file)
        elif isinstance(value, torch.Tensor) and value.is_floating_point():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise CheckpointError(f"{file}: {bad} non-finite values in {name}")


def import_weights(name: str, source: str | Path) -> Path:
    """Copy a file obtained by hand into the cache as registry file ``name``, after checking
    it: not a web page, the known SHA-256 if any, and for a model release, that it loads into
    the network with every parameter name and shape matching."""
    from . import ENTRIES

    for entry in ENTRIES.values():
        for key, release in entry.releases.items():
            if entry.file_name(key) == name and release.metric:
                if weights.is_html(source):
                    break  # install() says so
                load_network(entry, key, source)  # raises on a wrong or damaged file
    return weights.install(name, source)


def convert(entry: ModelEntry, release: str, source: str | Path, out: str | Path) -> Path:
    """Read a checkpoint of ``release`` (official or ours), check it, write ours. What a
    checkpoint of ours records beyond the network (training data, MOS scale) is kept; an
    existing ``out`` is replaced only when it is a safetensors file other than ``source``."""
    out = Path(out)
    if out.exists() and (out.suffix != ".safetensors" or out.resolve() == Path(source).resolve()):
        raise CheckpointError(f"{out} exists and is not another .safetensors file: not overwritten")
    net = load_network(entry, release, source)
    meta = {**read_meta(source), **checkpoint_meta(entry, release)}
    meta.update(source=Path(source).name, source_sha256=weights.sha256_of(source))
    return save_checkpoint(out, net.state_dict(), meta)


def checkpoint_meta(entry: ModelEntry, release: str) -> dict[str, Any]:
    """The metadata of our checkpoint of a network of ``entry`` built with ``release``'s
    options: what :func:`load_network` needs to read it back."""
    from .._version import __version__

    rel = entry.releases[release]
    return {
        "model": entry.name,
        "release": release,
        "metric": rel.metric,
        "options": rel.options,
        "note": rel.file.note,
        "iqa4k": __version__,
    }


def setup(entry: ModelEntry, release: str) -> Callable[[Mapping[str, Any]], Setup]:
    """The ``MetricSpec.setup`` of a release's metric: options -> the call with the network."""

    def build(options: Mapping[str, Any]) -> Setup:
        net = prepare_for_scoring(load_network(entry, release, options.get("weights", "")), entry)
        net = with_precision(net, entry, options.get("precision", "float32"))
        call = {k: v for k, v in options.items() if k not in ("weights", "precision")}
        return Setup(call={**call, "net": net}, modules={"net": net})

    return build


def load_pretrained(entry: ModelEntry, net: torch.nn.Module) -> list[str]:
    """Initialise the parts of ``net`` that official training starts from pretrained
    (``entry.pretrained``), from the weights cache (downloaded there when the file has a direct
    link and downloads are allowed); returns what was loaded. A missing file is a
    :class:`~iqa4k.errors.WeightsNotFoundError` that says where to put it."""
    loaded = []
    for init in entry.pretrained:
        path = weights.resolve(init.file, download=True)
        state, _ = read_checkpoint(path)
        state = {k: v for k, v in state.items() if not k.startswith(init.drop)}
        for pattern, replacement in init.rename:
            state = {re.sub(pattern, replacement, k): v for k, v in state.items()}
        part = net.get_submodule(init.part)
        own = part.state_dict()
        unknown = sorted(k for k in state if k not in own or own[k].shape != state[k].shape)
        if unknown:
            shown = ", ".join(unknown[:5]) + (
                f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else ""
            )
            raise CheckpointError(f"{path} does not fit {entry.name}.{init.part}: {shown}")
        part.load_state_dict(state, strict=False)
        loaded.append(f"{init.part} <- {path.name} ({len(state)} tensors)")
    return loaded

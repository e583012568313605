"""Deep IQA networks: one module per model, each ending with its :class:`ModelEntry`.

A model module holds the network (parameter names equal to the official checkpoint's) and
declares, as data beside it, one ``ENTRY``: builder, input convention and protocol, releases,
citation (see :mod:`.entry`). Everything else is derived from the entries: the model list
here, the metric table rows (:mod:`.table`), ``iqa4k info`` and the weights registry, in
which every release file is registered when the package is imported.

Adding a model: write its module and add its name to ``_MODULES``.

The metric table imports every model module, so a module imports timm and torchvision (a
second or more) inside the constructors that use them, never at the top.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from types import MappingProxyType

import torch

from .. import weights
from ..errors import OptionError
from . import backbones  # noqa: F401 - registers the shared pretrained files
from .entry import ModelEntry

_MODULES = ("maxiqa", "uiqa", "ahiq", "maniqa", "hyperiqa", "tres", "smalliqa")

ENTRIES: Mapping[str, ModelEntry] = MappingProxyType(
    {entry.name: entry for entry in (import_module(f".{m}", __name__).ENTRY for m in _MODULES)}
)
MODELS = tuple(ENTRIES)

for _entry in ENTRIES.values():
    for _file in _entry.files():
        weights.register(_file)


def get_entry(name: str) -> ModelEntry:
    """The entry of model ``name``, or an error listing the known models."""
    if name not in ENTRIES:
        raise OptionError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return ENTRIES[name]


def create_model(name: str, **options) -> torch.nn.Module:
    """The bare network ``name`` with random weights, for training and research."""
    return get_entry(name).build(**options)


def list_models() -> list[str]:
    """Names of the deep models."""
    return list(MODELS)

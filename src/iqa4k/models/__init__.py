"""Deep IQA networks: one module per model, built bare (random weights, never a download).

Each module defines its network class, whose parameter names equal the official checkpoint's,
and beside it, as data: ``NET_INPUT`` (crop size and normalisation), ``PROTOCOL`` (the official
test-time sampling), ``RELEASES`` (official checkpoints) and ``build(**options)``.
Scoring with released weights goes through :func:`iqa4k.create_metric`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch

from ..errors import OptionError

# model name -> module in this package (imported on first use: timm is slow to import)
MODELS = ("maxiqa", "uiqa", "ahiq", "maniqa", "hyperiqa", "tres")


def model_module(name: str) -> ModuleType:
    """The module that defines model ``name``."""
    if name not in MODELS:
        raise OptionError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return importlib.import_module(f".{name}", __name__)


def create_model(name: str, **options) -> torch.nn.Module:
    """The bare network ``name`` with random weights, for training and research."""
    return model_module(name).build(**options)


def list_models() -> list[str]:
    """Names of the deep models."""
    return list(MODELS)

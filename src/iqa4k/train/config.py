"""What a training run does, as data: :class:`TrainConfig`, read from YAML or a preset.

Every field has a default and a meaning; a YAML file may set any of them and nothing else (an
unknown key is an error naming the file, line and key, before anything is trained).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from ..errors import OptionError


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe: model, loss, optimiser, schedule, sampling and stopping."""

    model: str  # a model entry (iqa4k.models)
    release: str  # the release whose build options and metric the trained network takes
    loss: Literal["mse", "l1", "fidelity", "tres"] = "mse"  # see iqa4k.train.losses
    pair_weight: float = 1.0  # fidelity: weight of the pair term
    regression_weight: float = 1.0  # fidelity: weight of the squared errors
    optimizer: Literal["adam", "adamw", "sgd"] = "adamw"
    lr: float = 1e-4
    weight_decay: float = 0.0
    schedule: Literal["cosine", "step", "none"] = "cosine"
    schedule_unit: Literal["epoch", "iteration"] = "iteration"  # when the scheduler steps
    cosine_period: int = 0  # T_max of the cosine, in schedule units; 0: the whole run
    step_size: int = 10  # StepLR: epochs (or iterations) between decays
    gamma: float = 0.1  # StepLR decay factor
    epochs: int = 10
    batch_size: int = 16  # the global batch, whatever the number of processes
    accumulate: int = 1  # batches whose gradients add up before one optimiser step
    crops_per_image: int = 1  # training samples drawn from each image per epoch
    flip: Literal["none", "horizontal"] = "horizontal"  # random left-right flip of a sample
    flip_probability: float = 0.5
    resize_to: int = 0  # training images resized to this square side first (0: as they are)
    pretrained: bool = False  # start the model's pretrained parts from their files (official)
    freeze_pretrained: bool = False  # and keep them fixed, in eval mode (AHIQ's backbones)
    head_lr_ratio: float = 1.0  # learning rate of the other layers, relative to lr (HyperIQA 10)
    val_fraction: float = 0.1  # content groups of the training part kept for validation
    early_stop: int = 0  # stop after this many epochs without a better validation SRCC; 0: never
    eval_batch_size: int = 16  # crops per forward pass when predicting
    seed: int = 0
    amp: bool = True  # bfloat16/float16 autocast on a GPU (ignored on the CPU)
    description: str = ""

    def __post_init__(self) -> None:
        positive = (
            "lr",
            "epochs",
            "batch_size",
            "accumulate",
            "crops_per_image",
            "eval_batch_size",
        )
        for f in fields(self):  # inf or nan would train a NaN model without a word
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise OptionError(f"{f.name} must be a finite number, got {value!r}")
        for name in positive:
            if not getattr(self, name) > 0:
                raise OptionError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.weight_decay < 0:
            raise OptionError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.val_fraction < 1:
            raise OptionError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (each a known field, coerced to the field's type)."""
        return from_dict({**dataclasses.asdict(self), **changes}, "overrides")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = {f.name: f for f in fields(TrainConfig)}
# The allowed values of the fields typed as a Literal (loss, optimizer, schedule, ...).
_CHOICES = {
    name: typing.get_args(hint)
    for name, hint in typing.get_type_hints(TrainConfig).items()
    if typing.get_origin(hint) is Literal
}


def from_dict(
    values: dict[str, Any], source: str, lines: dict[str, int] | None = None
) -> TrainConfig:
    """A config from ``values``; unknown keys and values of the wrong type are errors that
    name ``source`` (and the line, when ``lines`` gives it)."""

    def where(key: str) -> str:
        return f"{source}:{lines[key]}" if lines and key in lines else source

    for key in values:
        if key not in _FIELDS:
            raise OptionError(
                f"{where(key)}: unknown key {key!r}; valid keys: {', '.join(_FIELDS)}"
            )
    for required in ("model", "release"):
        if required not in values:
            raise OptionError(f"{source}: {required!r} is required")
    typed = {}
    for key, value in values.items():
        default = _FIELDS[key].default
        kind = type(default) if default is not dataclasses.MISSING else str
        coerced = _coerce(kind, value)
        if coerced is None:
            article = "an" if kind is int else "a"
            raise OptionError(
                f"{where(key)}: {key} must be {article} {kind.__name__}, got {value!r}"
            )
        if key in _CHOICES and coerced not in _CHOICES[key]:
            raise OptionError(
                f"{where(key)}: {key} must be one of {', '.join(_CHOICES[key])}, got {value!r}"
            )
        typed[key] = coerced
    return TrainConfig(**typed)


def _coerce(kind: type, value: Any) -> Any:
    """``value`` as ``kind``, or None. Numbers may come as text: YAML 1.1 reads ``1e-3`` as a
    string."""
    if isinstance(value, bool) or kind is bool:
        return value if isinstance(value, kind) else None
    if kind in (int, float):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        if kind is int:
            return int(number) if number == int(number) else None
        return number
    return value if isinstance(value, kind) else None


def load_config(path: str | Path) -> TrainConfig:
    """A YAML file of TrainConfig keys (``model``, ``release``, ``lr``, ...)."""
    import yaml

    path = Path(path)
    text = path.read_text()
    try:
        node = yaml.compose(text)
        values = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise OptionError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(values, dict):
        raise OptionError(f"{path}: expected a mapping of keys to values")
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value}
    return from_dict(values, str(path), lines)

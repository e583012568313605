"""What is known about a metric before it is built: :class:`MetricSpec`, its options and setup."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from .errors import OptionError


@dataclass(frozen=True)
class Option:
    """One option of a metric: its default, its allowed values and what it means."""

    default: Any
    doc: str
    choices: tuple | None = None
    minimum: float | None = None
    rule: Callable[[Any], str] | None = None  # a further condition: why a value breaks it, or ""

    def check(self, metric: str, name: str, value: Any) -> Any:
        """Return ``value`` coerced to the default's type, or raise :class:`OptionError`."""
        if self.choices is not None and value not in self.choices:
            raise OptionError(f"{metric}: {name} must be one of {self.choices}, got {value!r}")
        if _non_finite(value):  # inf/nan would pass the type check and poison every score
            raise OptionError(f"{metric}: {name} must be a finite number, got {value!r}")
        coerced = self._coerce(value)
        if coerced is None:
            kind = type(self.default).__name__
            raise OptionError(f"{metric}: {name} must be of type {kind}, got {value!r}")
        if self.minimum is not None and coerced < self.minimum:
            raise OptionError(f"{metric}: {name} must be >= {self.minimum}, got {value!r}")
        broken = self.rule(coerced) if self.rule else ""
        if broken:
            raise OptionError(f"{metric}: {name} {broken}, got {value!r}")
        return coerced

    def _coerce(self, value: Any) -> Any:
        """``value`` as the default's type, or None when it cannot be one."""
        kind = type(self.default)
        if kind is bool:
            return value if isinstance(value, bool) else None
        if kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return None if kind is int and value != int(value) else kind(value)
        if kind is tuple:
            try:  # "(0.5,0.5)" on the command line arrives as ["(0.5", "0.5)"]
                return tuple(float(str(v).strip("()[] ")) for v in value)
            except (TypeError, ValueError):
                return None
        return value


def _non_finite(value: Any) -> bool:
    values = value if isinstance(value, tuple | list) else (value,)
    return any(isinstance(v, float) and not math.isfinite(v) for v in values)


@dataclass(frozen=True)
class Setup:
    """What a metric's setup prepares once: the keyword arguments of every call, and the
    modules among them (a deep metric's network), which follow ``Metric.to()``."""

    call: dict[str, Any]
    modules: dict[str, torch.nn.Module] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSpec:
    """Everything known about a metric before it is built."""

    name: str
    kind: Literal["FR", "NR"]
    higher_is_better: bool
    score_range: tuple[float, float]
    differentiable: bool
    summary: str
    citation: str
    function: Callable[..., torch.Tensor] = field(repr=False)
    options: Mapping[str, Option] = field(default_factory=dict)
    # Called once when the metric is built, with the resolved options (less range_option). A
    # metric that reads a parameter file loads it here, so a missing file fails at creation
    # rather than at the first image. None: the options are the call's keyword arguments.
    setup: Callable[[dict[str, Any]], Setup] | None = field(default=None, repr=False)
    # The option giving the value range of tensor/array inputs: the metric divides inputs by it
    # and ``function`` never sees it. None: inputs are in [0, 1].
    range_option: str | None = None
    # ``function`` takes ``maps=[]`` and appends one quality map [H,W] per image to it.
    has_maps: bool = False
    # Deep metrics: (model, release) in iqa4k.models; None for the classical metrics.
    model: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.range_option is not None and self.range_option not in self.options:
            raise ValueError(f"{self.name}: range_option {self.range_option!r} is not an option")

    @property
    def defaults(self) -> dict[str, Any]:
        """Default value of every option."""
        return {name: opt.default for name, opt in self.options.items()}

    def resolve(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults updated with ``overrides``, each checked; unknown names are an error."""
        unknown = sorted(set(overrides) - set(self.options))
        if unknown:
            valid = ", ".join(self.options) or "none"
            raise OptionError(f"{self.name}: unknown option(s) {unknown}; valid options: {valid}")
        resolved = self.defaults
        for key, value in overrides.items():
            resolved[key] = self.options[key].check(self.name, key, value)
        return resolved

"""The one error family of iqa4k: catch ``IQAError`` to catch them all."""

from __future__ import annotations


class IQAError(Exception):
    """Base class of every error raised on purpose by iqa4k."""


class OptionError(IQAError, ValueError):
    """An unknown metric name or option, or an option value out of its domain."""


class InputError(IQAError, ValueError):
    """An input the metrics cannot score: wrong shape, range, size or NaN values."""


class WeightsNotFoundError(IQAError, FileNotFoundError):
    """A metric's parameter file is not available; the message says how to provide it."""


class ImageReadError(InputError):
    """A file that cannot be decoded as an image (missing, unreadable, truncated, too large)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

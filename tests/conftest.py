"""Shared test helpers: the fixtures folder beside the project, read in place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# The suite never downloads: tests that exercise a download serve the file themselves and
# lift this with monkeypatch.
os.environ["IQA4K_OFFLINE"] = "1"

FIXTURES = Path(
    os.environ.get("IQA4K_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures")
)


def fixture_path(*parts: str) -> Path:
    """Path inside ../shared/fixtures, skipping the test when the folder is absent."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"fixture {path} is absent (tests read ../shared/fixtures in place)")
    return path


def python_words(code: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """What a fresh interpreter prints running ``code`` with ``args`` (from the project root,
    so ``tests`` imports), split into words."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def load_rgb(path: Path, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A file as a [1,3,H,W] tensor in [0,1], decoded independently of iqa4k.io."""
    array = np.array(Image.open(path).convert("RGB"))
    return torch.from_numpy(array).permute(2, 0, 1)[None].to(dtype) / 255.0


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def official_keys(model: str) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, shape)`` of each entry of the official checkpoint, from tests/data/models."""
    path = Path(__file__).parent / "data" / "models" / f"{model}_keys.txt"
    rows = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, shape = line.split("\t")
            rows.append((name, tuple(int(n) for n in shape.split(",") if n)))
    return rows


def posterised(height: int = 200, width: int = 300, seed: int = 5) -> torch.Tensor:
    """A synthetic posterised RGB image ``[1,3,H,W]`` in [0,1]: a smooth random field cut to
    five levels (wide flat areas whose 7x7 neighbourhoods are constant), a horizontal ramp
    (MSCN 0 in exact arithmetic without being flat) and a noisy corner."""
    g = torch.Generator().manual_seed(seed)
    field = torch.rand(1, 3, height // 25, width // 25, generator=g, dtype=torch.float64)
    field = torch.nn.functional.interpolate(field, size=(height, width), mode="bicubic")
    x = (field.clamp(0, 1) * 4).round() / 4
    x[..., : height // 4, width // 3 : 2 * width // 3] = (
        torch.arange(width // 3, dtype=torch.float64) * 2 + 40
    ) / 255
    x[..., -40:, -40:] = torch.rand(1, 3, 40, 40, generator=g, dtype=torch.float64)
    return x

"""Helpers shared by the benchmarks: the 4K test pair, timing, tables and JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch

from iqa4k.degrade import resample
from iqa4k.io import load_image

ROOT = Path(__file__).resolve().parent
UHD_PHOTO = ROOT.parents[1] / "shared" / "fixtures" / "uhd" / "uhd_photo_3840x2560.jpg"
UHD_SIZE = (2160, 3840)


def uhd_pair(path: Path = UHD_PHOTO) -> tuple[torch.Tensor, torch.Tensor]:
    """A 3840x2160 reference (centre crop of the UHD photo) and its x4 bicubic SR-style copy."""
    if not path.exists():
        raise SystemExit(f"needs the UHD photo at {path} (../shared/fixtures/uhd)")
    image = load_image(path)
    h, w = UHD_SIZE
    top, left = (image.shape[1] - h) // 2, (image.shape[2] - w) // 2
    ref = image[:, top : top + h, left : left + w].contiguous()
    return resample(ref, 4, "bicubic")[None].contiguous(), ref[None]


def time_call(fn: Callable[[], object], repeats: int = 5) -> tuple[float, float]:
    """(first call, median of the warm calls) in seconds."""
    start = time.perf_counter()
    fn()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - start)
    return cold, statistics.median(warm)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({threads} threads)"


def write_json(name: str, rows: list[dict]) -> Path:
    out = ROOT / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    payload = {"date": date.today().isoformat(), "machine": machine(), "rows": rows}
    out.write_text(json.dumps(payload, indent=2))
    return out


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def report(name: str, heading: str, rows: list[dict], *notes: str) -> Path:
    """Print ``heading`` with this machine, the rows as a Markdown table and the notes, and
    write them to ``results/<name>.json``."""
    print(f"{heading}; {machine()}\n")
    print(markdown_table(rows, list(dict.fromkeys(key for row in rows for key in row))))
    for note in notes:
        print(note)
    return write_json(name, rows)


def run_child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter (in this folder) with ``args``; the JSON object on
    the last line of its output."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def side_by_side(code: str, case: str, variants: tuple[str, str], key: str) -> tuple:
    """``case`` run by ``code`` in a fresh interpreter per variant: (the two ``key`` figures,
    their ratio, whether the two ``out`` values are equal)."""
    a, b = (run_child(code, case, variant) for variant in variants)
    return a[key], b[key], a[key] / b[key], a["out"] == b["out"]

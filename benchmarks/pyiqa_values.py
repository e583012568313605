"""pyiqa 0.1.16's scores beside MATLAB's and iqa4k's: the comparisons README and docs quote.

Run: ``python benchmarks/pyiqa_values.py`` after ``pip install -e '.[compare]'`` (``make
bench`` installs it), with ``../shared/fixtures`` beside the repository. pyiqa runs offline
with its defaults, ``pyiqa.create_metric(name)(path[, ref_path])``, on the image files as it
reads them; its NIQE reads the LIVE pristine model that iqa4k bundles, written where pyiqa
would download it. pyiqa's BRISQUE needs a download of its SVR weights, so it is not run.

Three tables, written to ``results/pyiqa_values.json``:

1. the calibration pairs I03 / I04: MATLAB's published value, iqa4k's and pyiqa's;
2. PIQE on three LIVE Challenge images where pyiqa's input handling departs from MATLAB's
   (docs/metrics.md, PIQE): iqa4k (MATLAB ``piqe``) and pyiqa;
3. SRCC / PLCC (5-parameter logistic fit) against MOS on the 400 LIVE Challenge images of
   ``clive_subset``, for NIQE and PIQE, iqa4k and pyiqa, as ``iqa4k evaluate`` computes them.
"""

from __future__ import annotations

import csv

import torch

import iqa4k
from _common import ROOT, markdown_table, write_json
from classic_4k import _import_pyiqa
from iqa4k import stats

FIXTURES = ROOT.parents[1] / "shared" / "fixtures"
PAIRS = ("I03.bmp", "I04.bmp")
PAIR_METRICS = ("ssim", "ms_ssim", "niqe", "piqe")
PIQE_IMAGES = ("1011.JPG", "1005.JPG", "1010.JPG")
CLIVE_METRICS = ("niqe", "piqe")


def _scorers(pyiqa, name: str):
    ours = iqa4k.create_metric(name)
    peer = pyiqa.create_metric(name, device="cpu")
    return (lambda *paths: ours(*paths).item()), (lambda *paths: peer(*paths).item())


def calibration_rows(pyiqa) -> list[dict]:
    folder = FIXTURES / "calibration"
    with open(folder / "reference_scores.csv", newline="") as f:
        published = {row["metric"]: row for row in csv.DictReader(f)}
    rows = []
    for name in PAIR_METRICS:
        ours, peer = _scorers(pyiqa, name)
        fr = iqa4k.create_metric(name).info.kind == "FR"
        for image in PAIRS:
            paths = [str(folder / "dist" / image)] + ([str(folder / "ref" / image)] if fr else [])
            rows.append(
                {
                    "metric": name,
                    "image": image,
                    "MATLAB": published.get(name, {}).get(image, "-"),
                    "iqa4k": f"{ours(*paths):.5f}",
                    "pyiqa": f"{peer(*paths):.5f}",
                }
            )
    return rows


def piqe_rows(pyiqa) -> list[dict]:
    ours, peer = _scorers(pyiqa, "piqe")
    rows = []
    for image in PIQE_IMAGES:
        path = str(FIXTURES / "clive_subset" / "images" / image)
        a, b = ours(path), peer(path)
        rows.append({"image": image, "iqa4k": f"{a:.2f}", "pyiqa": f"{b:.2f}"})
    return rows


def clive_rows(pyiqa) -> list[dict]:
    folder = FIXTURES / "clive_subset"
    with open(folder / "mos.csv", newline="") as f:
        mos = {row["image"]: float(row["mos"]) for row in csv.DictReader(f)}
    names = sorted(mos)
    rows = []
    for name in CLIVE_METRICS:
        scorers = _scorers(pyiqa, name)
        row = {"metric": name}
        for who, score in zip(("iqa4k", "pyiqa"), scorers, strict=True):
            with torch.no_grad():
                values = [score(str(folder / "images" / n)) for n in names]
            agreement = stats.evaluate(
                values, [mos[n] for n in names], n_boot=0, higher_is_better=False
            )
            row[f"{who} SRCC / PLCC"] = f"{agreement.srcc:.3f} / {agreement.plcc:.3f}"
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    if not FIXTURES.is_dir():
        raise SystemExit(f"needs the fixtures at {FIXTURES}")
    pyiqa = _import_pyiqa()
    if pyiqa is None:
        raise SystemExit("needs pyiqa: pip install -e '.[compare]'")
    tables = {
        "calibration pairs": calibration_rows(pyiqa),
        "PIQE where pyiqa's input handling differs": piqe_rows(pyiqa),
        "LIVE Challenge subset (400 images)": clive_rows(pyiqa),
    }
    for title, rows in tables.items():
        print(f"\n{title}\n")
        print(markdown_table(rows, list(rows[0])))
    path = write_json("pyiqa_values", [{"table": t, "rows": r} for t, r in tables.items()])
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()

"""Scoring throughput of the local engine and of Ray with 1 and 2 workers, in one run.

Run: ``python benchmarks/ray_scaling.py [--images 200] [--metrics niqe,brisque,piqe]``.
The images are the first N of the CLIVE subset in the fixtures (500x500 JPEG). The Ray
runtime is started once before timing (its start-up is reported apart); each Ray run includes
starting its actors and building the metrics in them, as a real run does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ray

from _common import ROOT, report
from iqa4k.scoring import score_files

CLIVE = ROOT.parents[1] / "shared" / "fixtures" / "clive_subset" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--metrics", default="niqe,brisque,piqe")
    args = parser.parse_args()
    images = sorted(CLIVE.glob("*.JPG"))[: args.images]
    if not images:
        raise SystemExit(f"needs the CLIVE subset at {CLIVE}")
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, namespace="iqa4k", log_to_driver=False)
    startup = time.perf_counter() - start
    rows, texts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for engine, workers in (("local", None), ("ray", 1), ("ray", 2)):
            out = Path(tmp) / f"{engine}{workers}.csv"
            start = time.perf_counter()
            score_files(images, args.metrics, out, engine=engine, workers=workers, progress=False)
            seconds = time.perf_counter() - start
            texts.append(out.read_text())
            rows.append(
                {
                    "engine": engine if workers is None else f"ray, {workers} worker(s)",
                    "seconds": round(seconds, 2),
                    "images/s": round(len(images) / seconds, 2),
                    "ms/image": round(1000 * seconds / len(images), 1),
                }
            )
    base = rows[0]["seconds"]
    for row in rows:
        row["speed-up vs local"] = round(base / row["seconds"], 2)
    same = all(t == texts[0] for t in texts)
    heading = f"{len(images)} images, {args.metrics}; Ray start-up {startup:.1f} s"
    report("ray_scaling", heading, rows, f"identical CSVs: {same}")


if __name__ == "__main__":
    main()

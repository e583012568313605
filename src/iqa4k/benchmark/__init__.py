"""``iqa4k benchmark``: a paper's results table for a dataset, as one command.

:func:`benchmark` scores the dataset with each metric (:mod:`.run`, reusing finished rows),
measures each metric's cost at 4K (:mod:`.cost`), sets cross-validation runs beside the metrics
on the same folds (:mod:`.crossval`) and writes the CSV, Markdown, plots and HTML page
(:mod:`.files`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data.dataset import Dataset
from .run import Benchmark, run_benchmark, unavailable

__all__ = ["Benchmark", "benchmark", "unavailable"]


def benchmark(
    dataset: Dataset,
    metrics: str | Sequence[str],
    out: str | Path,
    *,
    crossval: Sequence[str | Path] = (),
    cost: bool = True,
    **options: Any,
) -> Benchmark:
    """Benchmark ``metrics`` on ``dataset`` into ``out`` (see the module doc). ``crossval``:
    ``iqa4k crossval`` folders; ``cost=False`` skips the timing at 4K; ``options`` are those of
    :func:`.run.run_benchmark` (weights, mos_direction, fit, n_boot, device, progress, log)."""
    from .cost import measure_costs
    from .crossval import check_folder, crossval_tables
    from .files import write_all

    for folder in crossval:  # before any scoring: a wrong folder should not cost an hour
        check_folder(Path(folder), dataset)
    bench = run_benchmark(dataset, metrics, out, **options)
    bench.crossval = crossval_tables(bench, list(crossval))
    if cost:
        bench.costs = measure_costs(
            list(bench.scores), bench.out, weights=bench.weights, device=options.get("device")
        )
    write_all(bench)
    return bench

"""Scoring on a Ray cluster (or a local Ray runtime): a pool of actors, each building every
metric once and reading its images itself, so the driver ships paths and gets rows back.

The rows come back in input order and are written by the driver as for the local engine, so
``resume`` and error rows behave the same. Each actor scores its chunk with the very code of
the local engine (:func:`iqa4k.scoring.score_chunk`, handed to the actors), so the values
are the same. An actor
that dies is restarted by Ray and its in-flight chunk retried (scoring is idempotent): a
chunk's rows are written once, when its result arrives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from ..errors import OptionError

__all__ = ["ACTOR_PREFIX", "ray_row_batches"]

ACTOR_PREFIX = "iqa4k-scorer-"  # actors are named, so that an operator can find them
_NAMESPACE = "iqa4k"


def _ray():
    try:
        import ray
    except ImportError:
        raise OptionError(
            "--engine ray needs Ray: pip install 'iqa4k[ray]' (or pip install ray)"
        ) from None
    return ray


def _connect(ray, address: str | None, workers: int) -> None:
    """Join the cluster at ``address`` ('auto': the one this machine belongs to), or start a
    local runtime with ``workers`` CPUs when no address is given."""
    if ray.is_initialized():
        return
    common = {"namespace": _NAMESPACE, "log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, **common)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, **common)


class _Scorer:
    """One worker: the metrics, built once; ``score`` turns a chunk of pairs into rows."""

    def __init__(
        self,
        names: Sequence[str],
        options: Mapping[str, dict],
        device: str | None,
        score_chunk: Callable,
    ):
        import torch

        from ..metric import create_metric
        from ..process import tune_process

        tune_process()  # as the command does: the same speed in a worker
        if device is None or device == "cpu":
            torch.set_num_threads(1)  # one core per actor: Ray schedules one CPU for each
        self.models = {n: create_metric(n, device=device, **options[n]) for n in names}
        self.score_chunk = score_chunk

    def pid(self) -> int:
        return os.getpid()

    def score(self, chunk: list[tuple[Path, Path | None, str]], batch_size: int) -> list[dict]:
        return self.score_chunk(chunk, self.models, batch_size)


def ray_row_batches(
    pairs: Sequence[tuple[Path, Path | None, str]],
    names: Sequence[str],
    options: Mapping[str, dict],
    score_chunk: Callable,
    *,
    device: str | None,
    batch_size: int,
    address: str | None = None,
    workers: int | None = None,
    gpus_per_worker: float = 0.0,
    chunk_size: int = 16,
) -> Iterator[list[dict[str, str]]]:
    """Rows of ``pairs`` scored by ``workers`` actors, a chunk at a time, in input order;
    each actor runs ``score_chunk(chunk, models, batch_size)`` (the local engine's)."""
    ray = _ray()
    from ray.util import ActorPool

    workers = workers or os.cpu_count() or 1
    _connect(ray, address, workers)
    if gpus_per_worker and device is None:
        device = "cuda"
    remote = ray.remote(num_cpus=1, num_gpus=gpus_per_worker, max_restarts=-1, max_task_retries=-1)
    actor = remote(_Scorer)
    actors = [
        actor.options(name=f"{ACTOR_PREFIX}{os.getpid()}-{i}").remote(
            names, options, device, score_chunk
        )
        for i in range(workers)
    ]
    chunk = max(chunk_size, batch_size)
    chunks = [list(pairs[i : i + chunk]) for i in range(0, len(pairs), chunk)]
    try:
        pool = ActorPool(actors)
        yield from pool.map(lambda a, c: a.score.remote(c, batch_size), chunks)
    finally:
        for a in actors:
            ray.kill(a)

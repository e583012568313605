"""One training run: a model entry, a dataset split and a config in; checkpoints, logs and
test predictions out. The same code runs as one process or under ``torchrun`` (DDP).

Determinism. Every random draw of an epoch (sample order, crop positions, flips, dropout) comes
from generators seeded by (seed, epoch, sample position), never from state carried across
epochs, so a run resumed from its last epoch checkpoint after ``kill -9`` ends with the same
weights as an uninterrupted one, and a global batch gives the same gradient, up to the order of
floating-point sums, whether one process or several compute it. That order also follows the
thread count, which long runs amplify: runs record it (``threads``).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..data.dataset import Dataset, Sample
from ..data.scaling import MosScale
from ..data.splits import Split
from ..errors import ImageReadError, InputError, IQAError
from ..io import load_image
from ..models import get_entry
from ..models.checkpoint import save_checkpoint
from ..models.entry import ModelEntry
from ..models.loading import checkpoint_meta, load_pretrained
from .config import TrainConfig
from .losses import step_loss

LOG_COLUMNS = ("epoch", "train_loss", "val_srcc", "val_plcc", "lr", "seconds")
STATE = "state.pt"  # the resumable state, rewritten after every epoch
BEST, LAST = "best.safetensors", "last.safetensors"


@dataclass
class RunResult:
    """What a finished run leaves: where, its epochs, and its test figures (when it had a
    test part): ``test["best"]`` for the model selected on validation, ``test["last"]`` for
    the last epoch's."""

    out: Path
    epochs: int
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    test: dict[str, dict[str, float]] = field(default_factory=dict)


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _generator(*keys: int) -> torch.Generator:
    seed = 0
    for k in keys:
        seed = (seed * 1_000_003 + int(k)) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


def _load(sample: Sample, entry: ModelEntry) -> tuple[torch.Tensor, ...]:
    """The sample's image (and, for a full-reference model, its reference) as ``[1,3,H,W]``
    tensors in [0, 1]."""
    paths = (sample.image, sample.ref) if entry.kind == "FR" else (sample.image,)
    return tuple(load_image(p)[None] for p in paths)


@contextlib.contextmanager
def naming(sample: Sample):
    """An error about a sample's pixels (too small for the model, ...) names its file, as a
    decoding error already does."""
    try:
        yield
    except ImageReadError:
        raise
    except InputError as e:
        raise InputError(f"{sample.image}: {e}") from None


def _training_sample(
    entry: ModelEntry, sample: Sample, config: TrainConfig, g: torch.Generator
) -> list[torch.Tensor]:
    """One augmented training sample: the entry's training inputs, then a random flip."""
    with naming(sample):
        images = _load(sample, entry)
        if config.resize_to:  # the whole image to a square first (MANIQA's KonIQ recipe)
            side = (config.resize_to, config.resize_to)
            images = tuple(
                F.interpolate(x, size=side, mode="bicubic", align_corners=False).clamp(0, 1)
                for x in images
            )
        inputs = entry.inputs.training_inputs(images, g)
    if config.flip == "horizontal" and torch.rand((), generator=g) < config.flip_probability:
        inputs = [x.flip(-1) for x in inputs]
    return inputs


def _optimizer(
    config: TrainConfig, entry: ModelEntry, net: torch.nn.Module
) -> torch.optim.Optimizer:
    """The optimiser over the trainable parameters: pretrained parts at ``lr``, the other
    layers at ``lr * head_lr_ratio`` (one group when there is no pretrained part)."""
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    pretrained = {
        id(p) for init in entry.pretrained for p in net.get_submodule(init.part).parameters()
    }
    backbone = [p for p in net.parameters() if id(p) in pretrained and p.requires_grad]
    rest = [p for p in net.parameters() if id(p) not in pretrained and p.requires_grad]
    groups = [{"params": rest, "lr": config.lr * config.head_lr_ratio}]
    if backbone:
        groups.insert(0, {"params": backbone, "lr": config.lr})
    return kind[config.optimizer](groups, lr=config.lr, weight_decay=config.weight_decay)


def _scheduler(config: TrainConfig, optimizer, steps_per_epoch: int):
    units = config.epochs * (steps_per_epoch if config.schedule_unit == "iteration" else 1)
    if config.schedule == "cosine":
        period = config.cosine_period or units
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=period)
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def predict(
    entry: ModelEntry, net: torch.nn.Module, samples: Sequence[Sample], config: TrainConfig
) -> list[float]:
    """The entry's test-time score of each sample (its official protocol), on the training
    targets' scale; under DDP each process scores a share and every process gets all."""
    rank, world = _world()
    device = next(net.parameters()).device
    net.eval()
    mine = {}
    for i in range(rank, len(samples), world):
        with naming(samples[i]):
            images = [x.to(device) for x in _load(samples[i], entry)]
            options = _score_options(entry, config)
            mine[i] = entry.inputs.score(*images, net=net, **options).item()
    if world > 1:
        parts: list[dict[int, float]] = [{} for _ in range(world)]
        dist.all_gather_object(parts, mine)
        mine = {k: v for part in parts for k, v in part.items()}
    return [mine[i] for i in range(len(samples))]


def _score_options(entry: ModelEntry, config: TrainConfig) -> dict[str, Any]:
    """Test-time options: the official protocol (views: the default options)."""
    options = {name: opt.default for name, opt in entry.inputs.options.items()}
    if "batch_size" in options:
        options["batch_size"] = config.eval_batch_size
    return options


def figures(pred: Sequence[float], mos: Sequence[float]) -> dict[str, Any]:
    """SRCC, KRCC, and PLCC and RMSE after the 5-parameter logistic fit (``fit`` says when it
    failed and the line was used), ``pred`` on the MOS scale and direction; only ``n`` when
    the points cannot be evaluated (fewer than 3, or constant)."""
    from .. import stats

    if len(pred) < 3:
        return {"n": len(pred)}
    try:
        result = stats.evaluate(pred, mos, fit="5pl", n_boot=0)
    except InputError:
        return {"n": len(pred)}
    values = (result.srcc, result.plcc, result.krcc, result.rmse)
    out = dict(zip(("srcc", "plcc", "krcc", "rmse"), (float(v) for v in values), strict=True))
    return {"n": len(pred), **out, "fit": result.fit_status}


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` beside ``path``, then rename: a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _state_dict(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    module = net.module if hasattr(net, "module") else net  # DDP wraps the network
    return module.state_dict()


def train(
    config: TrainConfig,
    dataset: Dataset,
    split: Split,
    out: str | Path,
    *,
    device: str | torch.device | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Train ``config``'s model on ``split.train`` of ``dataset``, select on ``split.val``,
    test on ``split.test``; write ``out/{best,last}.safetensors`` (scored by
    ``create_metric(metric, weights=...)``), ``log.csv``, ``predictions.csv`` and
    ``result.json``. An existing ``out/state.pt`` of the same config resumes the run."""
    out = Path(out)
    rank, world = _world()
    entry = get_entry(config.model)
    release = entry.releases[config.release]
    if not release.metric:
        raise IQAError(f"{config.model} release {config.release!r} is not scored as a metric")
    if entry.kind == "FR" and not dataset.full_reference:
        raise IQAError(f"{entry.name} is full-reference; {dataset.spec} has no references")
    if config.batch_size % world:
        raise IQAError(f"batch_size {config.batch_size} is not divisible by {world} processes")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    train_samples = [dataset.samples[i] for i in split.train]
    scale = MosScale.fit([s.mos for s in train_samples], dataset.higher_is_better)
    targets = torch.tensor([scale.forward(s.mos) for s in train_samples], dtype=torch.float32)

    torch.manual_seed(config.seed)  # the same initial weights in every process
    net = entry.build(**release.options)
    frozen = [init.part for init in entry.pretrained] if config.freeze_pretrained else []
    if config.pretrained and not (out / STATE).is_file():  # a resumed run has its weights
        for line in load_pretrained(entry, net):
            if rank == 0:
                log(f"pretrained: {line}")
    for part in frozen:
        net.get_submodule(part).requires_grad_(False)
    net = net.to(device)
    model = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net)
    optimizer = _optimizer(config, entry, net)
    order_size = len(train_samples) * config.crops_per_image
    batches = math.ceil(order_size / config.batch_size)
    steps_per_epoch = math.ceil(batches / config.accumulate)
    scheduler = _scheduler(config, optimizer, steps_per_epoch)
    meta = {
        **checkpoint_meta(entry, config.release),
        "config": config.to_dict(),
        "dataset": dataset.spec,
        "split": split.name,
        "mos_scale": scale.to_dict(),
        # training repeats exactly only with the same thread count (float summation order)
        "threads": torch.get_num_threads(),
    }

    history: list[dict[str, float]] = []
    best = {"epoch": 0, "val_srcc": -math.inf}
    start = 0
    state_path = out / STATE
    data = _fingerprint(dataset, split)
    if state_path.is_file():
        saved = torch.load(state_path, map_location="cpu", weights_only=True)
        if saved["config"] != config.to_dict() or saved["split"] != split.name:
            raise IQAError(f"{state_path} belongs to another config or split; use a new --out")
        if saved.get("data", data) != data:  # (a state from before the record: taken as is)
            raise IQAError(
                f"{state_path} was trained on other images or labels than {dataset.spec} "
                "gives now; use a new --out"
            )
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        history, best, start = saved["history"], saved["best"], saved["epoch"]
        if rank == 0:
            log(f"resuming {out} after epoch {start}")
    if rank == 0 and world > 1:
        log(f"{world} processes, {config.batch_size // world} samples each per global batch")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)

    val = [dataset.samples[i] for i in split.val]
    if 0 < len(val) < 3:  # too few for a correlation: the last epoch is the selected one
        if rank == 0:
            log(f"note: {len(val)} validation image(s) cannot rank epochs; using the last epoch")
        val = []
    for epoch in range(start + 1, config.epochs + 1):
        if config.early_stop and val and epoch - best["epoch"] > config.early_stop:
            break
        began = time.perf_counter()
        loss = _train_epoch(
            entry,
            model,
            frozen,
            optimizer,
            scheduler,
            train_samples,
            targets,
            config,
            epoch,
            device,
            progress and rank == 0,
        )
        row = {"epoch": epoch, "train_loss": loss, "lr": optimizer.param_groups[0]["lr"]}
        if val:
            pred = predict(entry, net, val, config)
            fig = figures([scale.inverse(p) for p in pred], [s.mos for s in val])
            row.update(val_srcc=fig.get("srcc", math.nan), val_plcc=fig.get("plcc", math.nan))
        row["seconds"] = time.perf_counter() - began
        history.append(row)
        improved = not val or row["val_srcc"] > best["val_srcc"]
        if improved:
            best = {"epoch": epoch, "val_srcc": row.get("val_srcc", math.nan)}
        if rank == 0:
            weights = {k: v.detach().cpu() for k, v in _state_dict(model).items()}
            write = functools.partial(save_checkpoint, state=weights, meta={**meta, "epoch": epoch})
            for name in (LAST, BEST) if improved else (LAST,):
                _write_atomically(out / name, write)
            _write_atomically(out / "log.csv", lambda p: _write_log(p, history))
            state = (config, split, data, net, optimizer, scheduler, history, best, epoch)
            _save_state(state_path, *state)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch")
            log(f"epoch {epoch}/{config.epochs}: {shown}")
        if world > 1:
            dist.barrier()  # every process sees the files of this epoch before going on

    result = RunResult(out, len(history), best["epoch"], history)
    test = [dataset.samples[i] for i in split.test]
    if test:
        result.test = _test(entry, net, test, config, scale, out, rank)
    if rank == 0:
        doc = {
            "epochs": result.epochs,
            "best_epoch": result.best_epoch,
            "threads": torch.get_num_threads(),
            "test": result.test,
        }
        (out / "result.json").write_text(json.dumps(doc, indent=1))
    return result


def _train_epoch(
    entry: ModelEntry,
    model: torch.nn.Module,
    frozen: Sequence[str],
    optimizer: torch.optim.Optimizer,
    scheduler,
    samples: Sequence[Sample],
    targets: torch.Tensor,
    config: TrainConfig,
    epoch: int,
    device: torch.device,
    show: bool,
) -> float:
    """One pass over the training samples in global batches; returns the mean loss.

    Each process computes a contiguous share of every global batch; the loss is scaled so that
    the gradient DDP averages equals the global batch's mean (a process without a sample in the
    last batch runs one with weight 0, as every process must take part in each step).
    """
    from tqdm import tqdm

    rank, world = _world()
    model.train()
    net = model.module if hasattr(model, "module") else model
    for part in frozen:  # fixed parts keep their statistics, as in the official code
        net.get_submodule(part).eval()
    torch.manual_seed(config.seed * 1_000_003 + epoch)  # dropout, where a model has it
    n = len(samples)
    order = (
        torch.randperm(n * config.crops_per_image, generator=_generator(config.seed, epoch)) % n
    ).tolist()
    starts = range(0, len(order), config.batch_size)
    autocast = config.amp and device.type == "cuda"
    total = torch.zeros(2, dtype=torch.float64)
    for b, start in enumerate(tqdm(starts, desc=f"epoch {epoch}", disable=not show, leave=False)):
        positions = list(range(start, min(start + config.batch_size, len(order))))
        chunk = math.ceil(len(positions) / world)  # contiguous shares keep pairs together
        mine = positions[rank * chunk : (rank + 1) * chunk]
        share = len(mine) / len(positions)
        weights = torch.ones(len(mine)) if mine else torch.zeros(1)
        mine = mine or positions[:1]
        parts = [
            _training_sample(entry, samples[order[p]], config, _generator(config.seed, epoch, p))
            for p in mine
        ]
        inputs = [torch.cat(views).to(device) for views in zip(*parts, strict=True)]
        target = targets[[order[p] for p in mine]].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            per, batch_term = step_loss(config, model, inputs, target)
        losses = per.float().cpu() * weights
        loss = losses.sum().to(device) * world / len(positions) + batch_term * share * world
        (loss / config.accumulate).backward()
        last = b == len(starts) - 1
        if (b + 1) % config.accumulate == 0 or last:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if config.schedule_unit == "iteration":
                scheduler.step()
        total += torch.tensor([losses.sum().item(), weights.sum().item()], dtype=torch.float64)
    if config.schedule_unit == "epoch":
        scheduler.step()
    if world > 1:
        dist.all_reduce(total)
    return float(total[0] / total[1])


def _test(
    entry: ModelEntry,
    net: torch.nn.Module,
    samples: Sequence[Sample],
    config: TrainConfig,
    scale: MosScale,
    out: Path,
    rank: int,
) -> dict[str, dict[str, float]]:
    """Test figures of the last epoch's and the validation-selected weights, and the
    per-image predictions (MOS scale) in ``out/predictions.csv``."""
    from ..models.checkpoint import read_checkpoint

    mos = [s.mos for s in samples]
    predictions = {}
    for which, file in (("last", LAST), ("best", BEST)):
        state, _ = read_checkpoint(out / file)
        net.load_state_dict(state)
        predictions[which] = [scale.inverse(p) for p in predict(entry, net, samples, config)]
    if rank == 0:
        with open(out / "predictions.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("image", "mos", "best", "last"))
            for s, m, b, la in zip(
                samples, mos, predictions["best"], predictions["last"], strict=True
            ):
                writer.writerow((s.image.as_posix(), m, repr(b), repr(la)))
    return {which: figures(p, mos) for which, p in predictions.items()}


def _write_log(path: Path, history: Sequence[dict[str, float]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, LOG_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)


def _fingerprint(dataset: Dataset, split: Split) -> str:
    """What the run learns from and is tested on: its samples' files and labels, by split."""
    samples = dataset.samples
    parts = {
        name: [(str(samples[i].image), str(samples[i].ref or ""), samples[i].mos) for i in idx]
        for name, idx in (("train", split.train), ("val", split.val), ("test", split.test))
    }
    return hashlib.sha256(json.dumps(parts).encode("utf-8", "surrogateescape")).hexdigest()


def _save_state(path, config, split, data, net, optimizer, scheduler, history, best, epoch) -> None:
    """Everything a resumed run needs (written atomically: a kill never leaves half)."""
    state = {
        "config": config.to_dict(),
        "split": split.name,
        "data": data,
        "epoch": epoch,
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": history,
        "best": best,
    }
    _write_atomically(path, lambda p: torch.save(state, p))

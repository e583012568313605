"""The ``iqa4k`` command: argparse, one ``_cmd_*`` per subcommand, errors to exit codes.

User mistakes end in one ``error:`` line and exit 2 (usage) or 1 (bad input or failed images);
tracebacks are left for bugs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .engine import ENGINES
from .errors import IQAError, OptionError
from .evaluation import IMAGE_COLUMNS, evaluate_csv
from .process import tune_process
from .registry import METRICS, get_spec
from .report.maps import overlay_writer
from .report.plots import plot_evaluation
from .report.tables import (
    crossval_table,
    evaluation_table,
    metric_info,
    metric_table,
    score_summary,
)
from .results_file import FORMATS
from .scoring import metric_names, score_files

__all__ = ["build_parser", "main", "parse_value"]


# --------------------------------------------------------------------------------- options


def parse_value(text: str) -> Any:
    """``--opt`` text as bool, int, float, a comma-separated tuple, or else the string."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if "," in t:
        return tuple(parse_value(p) for p in t.split(","))
    for kind in (int, float):
        try:
            return kind(t)
        except ValueError:
            pass
    return t


def _parse_opts(pairs: Sequence[str], flag: str = "--opt") -> dict[str, Any]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise OptionError(f"{flag} expects name=value, got {pair!r}")
        out[name.strip()] = parse_value(value)
    return out


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


# -------------------------------------------------------------------------------- commands


def _cmd_list(args: argparse.Namespace) -> int:
    specs = [s for s in METRICS.values() if args.kind is None or s.kind == args.kind]
    if not specs:
        print(f"no {args.kind} metrics are registered yet")
        return 0
    print(metric_table(specs))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    print(metric_info(get_spec(args.metric)))
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    if args.ref and all(get_spec(m).kind == "NR" for m in metric_names(args.metrics)):
        print("note: --ref is ignored: no full-reference metric is selected", file=sys.stderr)
    run = score_files(
        args.dist,
        args.metrics,
        args.output,
        ref=args.ref,
        options=_parse_opts(args.opt),
        device=args.device,
        batch_size=args.batch_size,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        on_map=overlay_writer(args.maps) if args.maps else None,
        engine=args.engine,
        address=args.address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        fmt=args.format,
    )
    for image, reason in run.failures:
        print(f"error: {image}: {reason}", file=sys.stderr)
    # the summary goes to stderr when the rows themselves go to stdout
    print(score_summary(run), file=sys.stderr if args.output == "-" else sys.stdout)
    return 1 if run.failures else 0


def _agreement_options(args: argparse.Namespace) -> dict[str, Any]:
    """--fit, --boot and --mos-direction, as keywords of the evaluation functions."""
    if args.boot < 0:
        raise OptionError(f"--boot must be >= 0, got {args.boot}")
    return {"fit": args.fit, "n_boot": args.boot, "mos_direction": args.mos_direction}


def _mos_file_options(args: argparse.Namespace) -> dict[str, Any]:
    """--mos-column and --image-column, as keywords of the evaluation functions."""
    return {"mos_column": args.mos_column, "image_column": args.image_column}


def _cmd_evaluate(args: argparse.Namespace) -> int:
    run = evaluate_csv(
        args.scores,
        args.mos,
        **_mos_file_options(args),
        **_agreement_options(args),
    )
    if args.json:
        print(json.dumps(run.to_dict(), indent=2))
    else:
        print(evaluation_table(run))
    if args.plot:
        paths = plot_evaluation(run, Path(args.plot))
        print(f"wrote {len(paths)} plot(s) to {args.plot}", file=sys.stderr)
    return 1 if any(e.result is None for e in run.metrics) else 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .models import get_entry
    from .models.loading import convert

    spec = get_spec(args.metric)
    if spec.model is None:
        raise OptionError(f"{spec.name} is not a deep model; it has no checkpoint to convert")
    model, release = spec.model
    out = convert(get_entry(model), release, args.file, args.output)
    print(f"{args.file} -> {out} ({spec.name}: {spec.model[0]}, release {spec.model[1]})")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from .data import ADAPTERS, open_dataset
    from .report.cells import format_table
    from .report.tables import dataset_summary

    if args.dataset is None:
        rows = [(a.name, a.layout) for a in ADAPTERS.values()]
        print(format_table([("adapter", "expected under ROOT (--dataset NAME:ROOT)"), *rows]))
        return 0
    print(dataset_summary(open_dataset(args.dataset)))
    return 0


def _training_config(args: argparse.Namespace):
    from .train.config import load_config
    from .train.presets import get_preset

    if (args.config is None) == (args.preset is None):
        raise OptionError("give a CONFIG file or --preset NAME (one of them)")
    config = get_preset(args.preset) if args.preset else load_config(args.config)
    return config.replace(**_parse_opts(args.set, "--set")) if args.set else config


def _is_first_process() -> bool:
    """Rank 0 (or no torchrun): the process that prints and writes summaries."""
    import os

    return os.environ.get("RANK", "0") == "0"


def _with_process_group(run):
    """``run()``, inside the process group when launched by torchrun (WORLD_SIZE > 1)."""
    import os

    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return run()
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        return run()
    finally:
        dist.destroy_process_group()


def _cmd_train(args: argparse.Namespace) -> int:
    from .data import open_dataset
    from .data.splits import kfold, official, train_on_all
    from .train.trainer import train

    config = _training_config(args)
    dataset = open_dataset(args.dataset)
    fold = re.fullmatch(r"fold(\d+)", args.split)
    if args.split == "official":
        split = official(dataset)
    elif args.split == "all":
        split = train_on_all(dataset.groups(), config.seed, config.val_fraction)
    elif fold and int(fold[1]) < args.folds:
        split = kfold(dataset.groups(), args.folds, config.seed, config.val_fraction)[int(fold[1])]
    else:
        raise OptionError(
            f"--split must be official, all or fold0 .. fold{args.folds - 1}, got {args.split!r}"
        )
    result = _with_process_group(
        lambda: train(
            config, dataset, split, args.out, device=args.device, progress=not args.no_progress
        )
    )
    if not _is_first_process():
        return 0
    for which, fig in result.test.items():
        print(f"test ({which}): " + ", ".join(f"{k} {v:.4g}" for k, v in fig.items() if k != "fit"))
    print(
        f"weights: {Path(args.out) / 'best.safetensors'} (score with -m {config.model} "
        f"--opt weights=...)"
    )
    return 0


def _cmd_crossval(args: argparse.Namespace) -> int:
    from .data import open_dataset
    from .train.crossval import crossval

    config = _training_config(args)
    dataset = open_dataset(args.dataset)
    compare = [m for m in (args.compare or "").split(",") if m]
    summary = _with_process_group(
        lambda: crossval(
            config,
            dataset,
            args.folds,
            args.out,
            preset=args.preset or "",
            compare=compare,
            device=args.device,
            progress=not args.no_progress,
        )
    )
    if _is_first_process():
        print(crossval_table(summary))
    return 0


def _cmd_test(args: argparse.Namespace) -> int:
    from .data import open_dataset
    from .train.transfer import score_checkpoint

    doc = score_checkpoint(args.weights, open_dataset(args.dataset), args.out)
    shown = ", ".join(f"{k} {doc[k]:.4g}" for k in ("srcc", "plcc", "krcc", "rmse") if k in doc)
    print(f"{doc['metric']} on {doc['dataset']} ({doc['n']} images): {shown}")
    if "note" in doc:
        print(f"note: {doc['note']}")
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from .benchmark import benchmark
    from .benchmark.files import agreement_notes_of
    from .data import open_dataset
    from .report.cells import as_text
    from .report.sections import agreement_table

    weights = {}
    for pair in args.weights or []:
        metric, sep, path = pair.partition("=")
        if not sep or not metric or not path:
            raise OptionError(f"--weights takes METRIC=CHECKPOINT, got {pair!r}")
        weights[metric] = path
    bench = benchmark(
        open_dataset(args.dataset),
        args.metrics,
        args.out,
        weights=weights,
        crossval=args.crossval or [],
        cost=not args.no_cost,
        device=args.device,
        progress=not args.no_progress,
        **_agreement_options(args),
    )
    table = agreement_table(bench.evaluations, bench.versus_best, agreement_notes_of(bench))
    print(as_text(table))
    print(f"\nwrote {Path(args.out) / 'results.md'}, results.csv, plots/ and report.html")
    failed = bench.skipped or any(bench.failures.values())
    return 0 if bench.evaluations and not failed else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from .report.pages import scores_page

    out = scores_page(
        args.scores,
        args.output,
        mos=args.mos,
        **_mos_file_options(args),
        **_agreement_options(args),
    )
    print(f"wrote {out}")
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    from . import models, weights  # noqa: F401 - importing models registers their files
    from .models.loading import import_weights
    from .report.cells import format_table

    known = list(weights.REGISTRY)
    names = args.names or (known if args.action in ("list", "verify") or args.all else [])
    unknown = [n for n in names if n not in weights.REGISTRY]
    if unknown:
        raise OptionError(
            f"no parameter file called {', '.join(unknown)}; known: {', '.join(known)}"
        )
    if args.action == "import":
        if len(names) != 1 or not args.file:
            raise OptionError("usage: iqa4k weights import NAME FILE")
        print(f"{args.file} -> {import_weights(names[0], args.file)}")
        return 0
    if args.action == "fetch":
        if not names:
            raise OptionError("name the files to fetch (see `iqa4k weights list`), or --all")
        failed = 0
        for name in names:
            try:
                print(f"{name}: {weights.resolve(name, download=True)}")
            except IQAError as e:
                failed += 1
                print(f"{name}: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1 if failed else 0
    rows = [("name", "file", "read by", "status", "checked by", "where from")]
    for name in names:
        entry = weights.REGISTRY[name]
        source = "direct link" if entry.direct else ("a page: by hand" if entry.url else "training")
        readers = ", ".join(entry.metrics) or "training"
        check = entry.checked_by or "nothing known"
        rows.append((name, entry.filename, readers, weights.status(name), check, source))
    print(format_table(rows))
    print(f"cache: {weights.cache_dir()} (IQA4K_HOME moves it)")
    return 1 if any("WRONG" in r[3] for r in rows[1:]) else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo_main  # loaded only for this command

    return demo_main(args.out)


# --------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of the ``iqa4k`` command."""
    from ._version import __version__

    p = argparse.ArgumentParser(
        prog="iqa4k", description="Image quality assessment for 4K/UHD and super-resolved images."
    )
    p.add_argument("--version", action="version", version=f"iqa4k {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("list", help="list the metrics")
    s.add_argument("--kind", type=str.upper, choices=("FR", "NR"), help="only FR or NR metrics")
    s.set_defaults(func=_cmd_list)

    s = sub.add_parser("info", help="everything about one metric: options, range, citation")
    s.add_argument("metric")
    s.set_defaults(func=_cmd_info)

    s = sub.add_parser("score", help="score images into a CSV file")
    s.add_argument(
        "dist",
        nargs="+",
        metavar="DIST",
        help="image files, folders, quoted globs ('shots/*.jpg') or a manifest CSV of paths",
    )
    s.add_argument("-m", "--metrics", required=True, help="comma-separated metric names")
    s.add_argument("--ref", help="reference file or folder (paired by file name; FR metrics)")
    s.add_argument(
        "-o",
        "--output",
        default="-",
        help="output file, .csv, .jsonl or .parquet (default -: stdout)",
    )
    s.add_argument(
        "--format", choices=FORMATS, help="csv, jsonl or parquet (default: from the file name; csv)"
    )
    s.add_argument("--device", help="torch device, e.g. cpu or cuda:0")
    s.add_argument(
        "--batch-size",
        type=_positive_int,
        default=1,
        help="same-size images scored together (default 1)",
    )
    mode = s.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume", action="store_true", help="keep the finished rows of OUTPUT and score the rest"
    )
    mode.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    s.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="metric option, repeatable; METRIC.NAME=VALUE for one metric (see `iqa4k info`)",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument(
        "--maps",
        metavar="DIR",
        help="save quality-map overlays (deep crop-based metrics) as DIR/<image>.<metric>.png",
    )
    s.add_argument(
        "--engine", choices=ENGINES, default="local", help="where to score (default local)"
    )
    s.add_argument(
        "--address",
        help="Ray cluster to join (auto, or HOST:PORT); default: start a local Ray runtime",
    )
    s.add_argument(
        "--workers", type=_positive_int, help="Ray actors (default: the CPUs of this machine)"
    )
    s.add_argument(
        "--gpus-per-worker", type=float, default=0.0, metavar="F", help="GPUs per Ray actor"
    )
    s.set_defaults(func=_cmd_score)

    def agreement(s: argparse.ArgumentParser) -> None:
        s.add_argument(
            "--mos-direction",
            choices=("higher", "lower"),
            help="is a higher MOS better? (default: lower for a dmos column, else higher)",
        )
        s.add_argument(
            "--fit",
            choices=("5pl", "4pl", "none"),
            default="5pl",
            help="logistic map before PLCC/RMSE (default 5pl)",
        )
        s.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (0: no CIs)")

    def mos_file(s: argparse.ArgumentParser) -> None:
        s.add_argument(
            "--mos",
            help="CSV with an image and a MOS column (default: the scores file's own mos or "
            "dmos column, as `iqa4k benchmark` writes it)",
        )
        s.add_argument("--mos-column", help="MOS column (default: first of mos, dmos, score, MOS)")
        s.add_argument(
            "--image-column",
            help="image column of the MOS file (default: first of "
            + ", ".join(IMAGE_COLUMNS)
            + ")",
        )

    s = sub.add_parser("evaluate", help="agreement of scores with MOS (SRCC, PLCC, ...)")
    s.add_argument("scores", help="CSV from `iqa4k score`")
    mos_file(s)
    agreement(s)
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument("--plot", metavar="DIR", help="write one scatter plot PNG per metric")
    s.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser(
        "convert-checkpoint", help="official checkpoint -> iqa4k safetensors (checked on load)"
    )
    s.add_argument("metric", metavar="MODEL", help="deep metric whose release it is, e.g. maniqa")
    s.add_argument("file", help="the official checkpoint file")
    s.add_argument("-o", "--output", required=True, help="output .safetensors file")
    s.set_defaults(func=_cmd_convert)

    s = sub.add_parser("datasets", help="dataset adapters, or check and summarise one dataset")
    s.add_argument("dataset", nargs="?", metavar="NAME:ROOT", help="e.g. koniq:/data/koniq10k")
    s.set_defaults(func=_cmd_datasets)

    def recipe(s: argparse.ArgumentParser) -> None:
        s.add_argument("config", nargs="?", help="YAML training config (or --preset)")
        s.add_argument("--preset", help="a training preset, e.g. cpu-small (see docs/training.md)")
        s.add_argument("--dataset", required=True, metavar="NAME:ROOT", help="see `iqa4k datasets`")
        s.add_argument("--out", required=True, help="output folder (a rerun resumes it)")
        s.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config key, repeatable (e.g. --set epochs=5)",
        )
        s.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
        s.add_argument("--no-progress", action="store_true", help="no progress bars")

    s = sub.add_parser("train", help="train a model on a dataset (torchrun for several processes)")
    recipe(s)
    s.add_argument(
        "--split",
        default="official",
        help="official (the dataset's), foldI (k-fold part I), or all (no test part)",
    )
    s.add_argument("--folds", type=int, default=5, help="k of --split foldI")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("crossval", help="content-disjoint k-fold cross-validation of a recipe")
    recipe(s)
    s.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    s.add_argument("--compare", metavar="METRICS", help="metrics scored on the same test folds")
    s.set_defaults(func=_cmd_crossval)

    s = sub.add_parser("test", help="score a dataset with a trained checkpoint (cross-dataset)")
    s.add_argument("--weights", required=True, help="a checkpoint written by iqa4k train")
    s.add_argument("--dataset", required=True, metavar="NAME:ROOT")
    s.add_argument("--out", required=True, help="output folder")
    s.set_defaults(func=_cmd_test)

    s = sub.add_parser("report", help="an HTML page of a scores CSV (with MOS: its agreement)")
    s.add_argument("scores", help="CSV from `iqa4k score`")
    s.add_argument("-o", "--output", required=True, help="output HTML file")
    mos_file(s)
    agreement(s)
    s.set_defaults(func=_cmd_report)

    s = sub.add_parser(
        "benchmark", help="score a dataset with metrics: results table, plots, cost, HTML page"
    )
    s.add_argument("--dataset", required=True, metavar="NAME:ROOT", help="see `iqa4k datasets`")
    s.add_argument("-m", "--metrics", required=True, help="comma-separated metric names")
    s.add_argument("--out", required=True, help="output folder (a rerun reuses its scores)")
    s.add_argument(
        "--weights",
        action="append",
        metavar="METRIC=CKPT",
        help="score a deep metric with this checkpoint (repeatable)",
    )
    s.add_argument(
        "--crossval",
        action="append",
        metavar="DIR",
        help="an `iqa4k crossval` folder to report beside the metrics (repeatable)",
    )
    s.add_argument("--no-cost", action="store_true", help="skip the cost table (timing at 4K)")
    agreement(s)
    s.add_argument("--device", help="torch device, e.g. cpu or cuda:0")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_benchmark)

    s = sub.add_parser(
        "weights", help="parameter files: list, fetch, verify, import one saved by hand"
    )
    s.add_argument("action", choices=("list", "fetch", "verify", "import"))
    s.add_argument("names", nargs="*", metavar="NAME", help="registry names (see `list`)")
    s.add_argument("--file", help="import: the file you downloaded")
    s.add_argument("--all", action="store_true", help="fetch: every file with a direct link")
    s.set_defaults(func=_cmd_weights)

    s = sub.add_parser("demo", help="degrade a sample photo, score it with every metric")
    s.add_argument("--out", default="demo-out", help="output folder (default demo-out)")
    s.set_defaults(func=_cmd_demo)
    return p


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _file_in_the_way(path: str | None) -> str:
    """The existing file on ``path``'s way (``out.png`` in ``out.png/s.csv``), or ``path``."""
    p = Path(path or "")
    for candidate in (p, *p.parents):
        if candidate.is_file():
            return str(candidate)
    return str(p)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failures, 2 usage)."""
    tune_process()  # before torch starts its threads, which copy the subnormal setting
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed its message (or --help/--version)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    try:
        return args.func(args)
    except OptionError as e:
        return _fail(str(e), 2)
    except IQAError as e:
        return _fail(str(e), 1)
    except (FileExistsError, NotADirectoryError) as e:  # a folder wanted where a file is
        return _fail(f"{_file_in_the_way(e.filename)} is a file, not a folder", 1)
    except OSError as e:  # e.g. the output folder is read-only
        return _fail(f"{e.filename or ''}: {e.strerror or e}".lstrip(": "), 1)
    except KeyboardInterrupt:
        out = getattr(args, "output", None)
        hint = f"; finished rows are in {out}, continue with --resume" if out else ""
        return _fail("interrupted" + hint, 130)


if __name__ == "__main__":
    sys.exit(main())

"""The file a scoring run writes: CSV (the default), JSON lines (``.jsonl``) or Parquet
(``.parquet``), or standard output; its columns, the rows kept by ``resume``, and the lock that
keeps a second writer out.

A row counts as finished only when it was written whole (a line cut by a kill is scored
again), has every metric's number and no error. A JSON-lines file has one object per image
with every column (null: no score), and no header line. A Parquet file cannot be appended to
row by row, so its rows go to ``<name>.partial.jsonl`` beside it as they are scored (that is
what ``resume`` continues) and become the Parquet file, written whole and renamed into place,
when the run ends; metric columns are float64 (null: no score), the others strings. Each
metric's options go to ``<name>.options.json`` beside the file, so that ``resume`` refuses to
add rows scored another way.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from .errors import OptionError

__all__ = [
    "ERROR",
    "FORMATS",
    "IMAGE",
    "REF",
    "ResultsFile",
    "is_number",
    "output_lock",
    "read_csv",
    "read_scores",
]

# Fixed columns; one column per metric goes between REF and ERROR.
IMAGE, REF, ERROR = "image", "ref", "error"
FORMATS = ("csv", "jsonl", "parquet")

# File names are bytes on POSIX: one that is not UTF-8 is kept as such in the file (Python's
# surrogate escapes), so it is written, read back and resumed like any other.
_TEXT = {"encoding": "utf-8", "errors": "surrogateescape"}

Row = dict[str, str]  # cells as text: metric values are repr(float), "" when there is none


def is_number(cell: str) -> bool:
    """Whether a cell's text is a number (``inf`` and ``nan`` included, as ``float`` reads)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_csv(path: Path, sniff: bool = False) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file (a BOM from spreadsheet exports is dropped). ``sniff``
    also accepts ';' and tab separators, for label files made by other tools.
    """
    with open(path, newline="", encoding="utf-8-sig", errors=_TEXT["errors"]) as f:
        dialect: Any = csv.excel
        if sniff:
            sample = f.read(8192)
            f.seek(0)
            with contextlib.suppress(csv.Error):  # one column, or nothing to go by: commas
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        reader = csv.DictReader(f, dialect=dialect)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        return header, list(reader)


def read_scores(path: Path) -> tuple[list[str], list[Row]]:
    """Header and rows of a scoring run's file, CSV, JSON lines or Parquet (by its suffix)."""
    results = ResultsFile(path)
    if results.format == "csv":
        return read_csv(path)
    if results.format == "parquet":
        return _read_parquet(path)
    return results.read_back()


class ResultsFile:
    """Where a run's rows go: ``out`` (CSV, or JSON lines for ``.jsonl``/``.ndjson``, Parquet
    for ``.parquet``, or as ``fmt`` says), or standard output when ``out`` is ``"-"``."""

    def __init__(self, out: str | Path, fmt: str | None = None) -> None:
        self.stdout = str(out) == "-"
        self.path = Path(out)
        if fmt is None:
            if self.path.suffix.lower() == ".json":  # one JSON document cannot grow row by row
                raise OptionError(
                    f"{self.path}: rows are written as CSV (.csv), JSON lines (.jsonl) or "
                    "Parquet (.parquet); name the file for one of those"
                )
            fmt = _SUFFIXES.get(self.path.suffix.lower(), "csv")
        if fmt not in FORMATS:
            raise OptionError(f"the output format is one of {', '.join(FORMATS)}, got {fmt!r}")
        if fmt == "parquet":
            if self.stdout:
                raise OptionError("Parquet output needs a file (-o FILE.parquet)")
            _pyarrow()
        self.format = fmt
        # the file the rows are appended to: a Parquet file's is its staging JSON-lines file
        self.lines = (
            self.path.with_name(self.path.name + ".partial.jsonl")
            if fmt == "parquet"
            else self.path
        )
        if not self.stdout and self.path.is_dir():
            raise OptionError(
                f"{self.path} is a folder; the output is a file, e.g. {self.path / 'scores.csv'}"
            )

    def __str__(self) -> str:
        return "standard output" if self.stdout else str(self.path)

    def lock(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext() if self.stdout else output_lock(self.path)

    def prepare(
        self,
        columns: list[str],
        metrics: Sequence[str],
        resume: bool,
        overwrite: bool,
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> tuple[list[str], list[Row]]:
        """Columns to write and the finished rows kept from an earlier run (``resume``); the
        file then holds exactly those rows. ``options`` (each metric's) are recorded beside
        the file and must be those of the run that is resumed."""
        if self.stdout:
            if resume:
                raise OptionError("--resume needs an output file (-o FILE), not standard output")
            return columns, []
        header, kept = self._prepare(columns, metrics, resume, overwrite, options)
        if options is not None:
            self.options_path.write_text(json.dumps(_plain(options), indent=1), **_TEXT)
        return header, kept

    @property
    def options_path(self) -> Path:
        return self.path.with_name(self.path.name + ".options.json")

    def _prepare(
        self,
        columns: list[str],
        metrics: Sequence[str],
        resume: bool,
        overwrite: bool,
        options: Mapping[str, Mapping[str, Any]] | None,
    ) -> tuple[list[str], list[Row]]:
        out = self.path
        if _has_data(out) or _has_data(self.lines):
            if not resume:
                if not overwrite:
                    raise OptionError(f"{out} exists: pass --resume to continue it or --overwrite")
            else:
                header, rows = self.read_back()
                if not header:  # not one whole row yet: start afresh
                    header = columns
                if set(header) != set(columns):
                    raise OptionError(
                        f"cannot resume {out}: it has columns {','.join(header)} but this run "
                        f"writes {','.join(columns)} (use the same -m, or --overwrite)"
                    )
                self._check_options(options)
                # Keep the file's column order; drop failed and half-written rows so they are
                # scored again and every image ends up with exactly one row.
                kept = [r for r in rows if _is_done(r, metrics)]
                self._rewrite(header, kept)
                return header, kept
        out.parent.mkdir(parents=True, exist_ok=True)
        if self.lines != out:
            out.unlink(missing_ok=True)  # an overwritten run's file must not look resumable
        self._rewrite(columns, [])
        return columns, []

    def _check_options(self, options: Mapping[str, Mapping[str, Any]] | None) -> None:
        """Refuse to resume a file whose recorded options differ from this run's (a file
        without a record, from elsewhere, is taken as it is)."""
        if options is None or not self.options_path.is_file():
            return
        try:
            then = json.loads(self.options_path.read_text(**_TEXT))
        except (OSError, ValueError):
            return
        now = _plain(options)
        changed = [
            f"{m}.{k}: {then.get(m, {}).get(k)!r} then, {now[m][k]!r} now"
            for m in now
            for k in now[m]
            if m in then and then[m].get(k) != now[m][k]
        ]
        if changed:
            raise OptionError(
                f"cannot resume {self.path}: it was scored with other options ("
                + "; ".join(changed)
                + "): use the same --opt, or --overwrite"
            )

    @contextlib.contextmanager
    def appender(self, columns: Sequence[str]) -> Iterator[Callable[[Sequence[Row]], None]]:
        """A function that appends rows and flushes them (a killed run keeps every one)."""
        if self.stdout:
            yield self._writer(sys.stdout, columns, header=self.format == "csv")
            return
        with open(self.lines, "a", newline="", **_TEXT) as f:
            yield self._writer(f, columns, header=False)
            os.fsync(f.fileno())  # the finished file is on disk before the run reports it
        if self.format == "parquet":
            self._publish(columns)

    def _publish(self, columns: Sequence[str]) -> None:
        """The staged rows as the Parquet file (written beside, then renamed)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        _, rows = self._read_lines()
        texts = (IMAGE, REF, ERROR)
        table = pa.table(
            {
                c: pa.array(
                    [r.get(c) or "" for r in rows]
                    if c in texts
                    else [float(r[c]) if r.get(c) else None for r in rows],
                    type=pa.string() if c in texts else pa.float64(),
                )
                for c in columns
            }
        )
        tmp = self.path.with_name(self.path.name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, self.path)
        self.lines.unlink()

    def _writer(self, f: TextIO, columns: Sequence[str], header: bool):
        if self.format == "csv":
            writer = csv.DictWriter(f, columns, extrasaction="ignore")
            if header:
                writer.writeheader()

            def write(rows: Sequence[Row]) -> None:
                writer.writerows(rows)
                f.flush()

        else:

            def write(rows: Sequence[Row]) -> None:
                f.writelines(
                    json.dumps(_as_json(r, columns), ensure_ascii=False) + "\n" for r in rows
                )
                f.flush()

        return write

    def _rewrite(self, columns: Sequence[str], rows: Sequence[Row]) -> None:
        # Write beside and rename: a crash while rewriting must not lose the rows already done.
        tmp = self.lines.with_name(self.lines.name + ".tmp")
        with open(tmp, "w", newline="", **_TEXT) as f:
            write = self._writer(f, columns, header=self.format == "csv")
            write(rows)
        os.replace(tmp, self.lines)

    def read_back(self) -> tuple[list[str], list[Row]]:
        """Header and rows of the file, less a last row cut short by a kill (Parquet: its
        staged rows while a run is unfinished)."""
        if self.format == "parquet" and not _has_data(self.lines):
            return _read_parquet(self.path)
        return self._read_lines()

    def _read_lines(self) -> tuple[list[str], list[Row]]:
        out = self.lines
        whole = _ends_with_newline(out)
        if self.format == "csv":
            try:
                header, rows = read_csv(out)
            except csv.Error as e:
                raise OptionError(
                    f"cannot resume {out}: it is not a CSV file ({e}); use another output"
                ) from None
            return header, rows if whole or not rows else rows[:-1]
        with open(out, encoding=_TEXT["encoding"], errors=_TEXT["errors"]) as f:
            lines = f.read().splitlines()
        if not whole:
            lines = lines[:-1]
        try:
            docs = [json.loads(line) for line in lines]
        except json.JSONDecodeError as e:
            raise OptionError(f"cannot resume {out}: it is not a JSON-lines file ({e})") from None
        if not all(isinstance(d, dict) for d in docs):
            raise OptionError(f"cannot resume {out}: its lines are not JSON objects")
        return (list(docs[0]) if docs else []), [_from_json(d) for d in docs]


_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def _pyarrow():
    try:
        import pyarrow.parquet
    except ImportError:
        raise OptionError("Parquet output needs pyarrow: pip install pyarrow") from None
    return pyarrow.parquet


def _read_parquet(path: Path) -> tuple[list[str], list[Row]]:
    try:
        table = _pyarrow().read_table(path)
    except (OSError, ValueError) as e:  # pyarrow's errors derive from these
        raise OptionError(f"cannot read {path}: it is not a Parquet file ({e})") from None
    return table.column_names, [_from_json(d) for d in table.to_pylist()]


def _has_data(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def _as_json(row: Row, columns: Sequence[str]) -> dict[str, Any]:
    """A row as JSON: numbers as numbers (null when missing; inf as a string, not valid JSON)."""
    doc: dict[str, Any] = {}
    for c in columns:
        cell = row.get(c) or ""
        if c in (IMAGE, REF, ERROR):
            doc[c] = cell
        elif not cell:
            doc[c] = None
        else:
            v = float(cell)
            doc[c] = v if math.isfinite(v) else cell
    return doc


def _from_json(doc: Mapping[str, Any]) -> Row:
    out = {}
    for k, v in doc.items():
        out[k] = "" if v is None else (repr(v) if isinstance(v, float | int) else str(v))
    return out


def _is_done(row: Mapping[str, str | None], metrics: Sequence[str]) -> bool:
    if (row.get(ERROR) or "").strip() or not (row.get(IMAGE) or "").strip():
        return False
    for m in metrics:
        try:
            float(row.get(m) or "")
        except ValueError:  # empty or cut short by a killed run
            return False
    return True


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold ``out``.lock for the duration: a second writer of the same file (which would
    replace it under the first one, whose rows would then be lost) is refused with the
    holder's pid. POSIX only (fcntl); elsewhere nothing is locked."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    lock = out.with_name(out.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise OptionError(
                f"{out} is being written by another iqa4k process (pid {holder}); wait for it "
                "to finish or write elsewhere"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)  # still locked: a waiting writer fails, never races


def _plain(options: Mapping[str, Mapping[str, Any]]) -> dict:
    """``options`` as JSON gives them back (tuples as lists), for comparison with a record."""
    return json.loads(json.dumps(options, default=str))

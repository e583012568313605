"""Readers of the real file layouts of IQA datasets, one :class:`Adapter` each.

Every adapter knows its dataset's label files, where images and references live, the score
direction and range, and the content group of each image (its reference or scene), and reports
every problem it finds at once (:class:`~.dataset.DatasetError`) before anything is trained.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..evaluation import IMAGE_COLUMNS, MOS_COLUMNS, mos_higher_is_better
from ..results_file import is_number, read_csv
from .dataset import Dataset, Problems, Sample, check_samples, parse_score

REF_COLUMNS = ("ref", "ref_name", "ref_img", "reference")  # first match wins, as the others


@dataclass(frozen=True)
class Adapter:
    """A dataset layout: its name, the files it expects and its reader."""

    name: str
    layout: str  # the expected files under ROOT, shown by `iqa4k datasets`
    read: Callable[[Path, Problems], Dataset]

    def open(self, root: Path, problems: Problems) -> Dataset:
        """Read the dataset at ``root`` as the files are now (folder listings read afresh)."""
        _lowercase_listing.cache_clear()
        return self.read(root, problems)


def _find(root: Path, name: str, folders: Iterable[str]) -> Path:
    """``name`` in the first of ``folders`` (under ``root``) that holds it, matching case only
    when no exact match exists (TID2013 mixes cases); the first candidate when none does."""
    candidates = [root / f / name if f else root / name for f in folders]
    for path in candidates:
        if path.is_file():
            return path
    for path in candidates:
        match = _lowercase_listing(path.parent).get(name.lower())
        if match is not None:
            return match
    return candidates[0]


@functools.lru_cache(maxsize=64)
def _lowercase_listing(folder: Path) -> dict[str, Path]:
    """A folder's files by lower-cased name, read once per folder (not once per image)."""
    if not folder.is_dir():
        return {}
    return {entry.name.lower(): entry for entry in folder.iterdir()}


def _label_lines(path: Path, problems: Problems) -> list[tuple[str, str, str]]:
    """``(where, first, second)`` per non-empty line of a comma- or space-separated list."""
    if not path.is_file():
        problems.add(f"{path}: label file missing")
        return []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        problems.add(f"{path}: not a UTF-8 text file (byte {e.start}: {e.object[e.start]:#04x})")
        return []
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
        if len(parts) < 2:
            problems.add(f"{path}:{number}: expected two fields, got {line.strip()!r}")
            continue
        out.append((f"{path}:{number}", parts[0], parts[1]))
    return out


def _column(header: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {h.lower(): h for h in header}
    return next((lowered[n.lower()] for n in names if n.lower() in lowered), None)


def _columns(file: Path, header: list[str], wanted: dict[str, tuple[str, ...]], problems):
    """The header's column for each role of ``wanted`` (any of its names, any case); a role
    with none is one problem naming what the file has, raised before its rows are read."""
    found = {role: _column(header, names) for role, names in wanted.items()}
    missing = [f"{role} ({' or '.join(wanted[role])})" for role, col in found.items() if not col]
    if missing:
        problems.add(f"{file}: no {', no '.join(missing)} column; it has {', '.join(header)}")
        problems.raise_if_any()
    return found


# ------------------------------------------------------------------------------ generic CSV


def read_csv_dataset(path: Path, problems: Problems) -> Dataset:
    """``csv:PATH``: a CSV file, or a folder holding ``mos.csv``; columns ``image, mos[, ref]
    [, group]``; images relative to the CSV's folder or its ``images/`` subfolder. A column
    named ``dmos`` is read as lower-is-better."""
    file = path / "mos.csv" if path.is_dir() else path
    if not file.is_file():
        problems.add(f"{file}: no such CSV file")
        problems.raise_if_any()
    header, rows = read_csv(file, sniff=True)
    image_col = _column(header, IMAGE_COLUMNS)
    score_col = _column(header, MOS_COLUMNS)
    ref_col = _column(header, REF_COLUMNS)
    group_col = _column(header, ("group", "content", "scene"))
    if image_col is None or score_col is None:
        problems.add(
            f"{file}: needs an image column ({', '.join(IMAGE_COLUMNS)}) and a score column "
            f"({', '.join(MOS_COLUMNS)}); header is {', '.join(header)}"
        )
        problems.raise_if_any()
    base = file.parent
    folders = ("", "images")
    samples = []
    for number, row in enumerate(rows, 2):
        where = f"{file}:{number}"
        name = (row.get(image_col) or "").strip()
        if not name:
            problems.add(f"{where}: empty image name")
            continue
        mos = parse_score(row.get(score_col) or "", where, problems)
        if mos is None:
            continue
        ref = None
        if ref_col and (row.get(ref_col) or "").strip():
            ref = _find(base, row[ref_col].strip(), folders)
        group = (row.get(group_col) or "").strip() if group_col else ""
        group = group or (ref.name if ref is not None else name)
        samples.append(Sample(_find(base, name, folders), mos, group, ref))
    higher = mos_higher_is_better(score_col)
    return _dataset("csv", base, samples, higher, problems, full_reference=ref_col is not None)


def _dataset(
    adapter: str,
    root: Path,
    samples: list[Sample],
    higher_is_better: bool,
    problems: Problems,
    score_range: tuple[float, float] | None = None,
    full_reference: bool = False,
    notes: list[str] | None = None,
) -> Dataset:
    check_samples(samples, problems)
    problems.raise_if_any()
    scores = [s.mos for s in samples]
    observed = (min(scores), max(scores))
    notes = list(notes or [])
    if score_range and not score_range[0] <= observed[0] <= observed[1] <= score_range[1]:
        outside = sum(not score_range[0] <= v <= score_range[1] for v in scores)
        notes.append(
            f"{outside} score(s) outside the release's {score_range[0]:g} to {score_range[1]:g} "
            f"(observed {observed[0]:g} to {observed[1]:g}): another version of the labels?"
        )
    return Dataset(
        adapter, root, samples, higher_is_better, score_range or observed, full_reference, notes
    )


# ------------------------------------------------------------------------- named datasets


def read_pipal(root: Path, problems: Problems) -> Dataset:
    """PIPAL: per-reference ``Train_Label/A0001.txt`` files (``name,elo``) or consolidated
    lists (``pipal*_train.txt`` / ``pipal*_val.txt``); distorted images in ``Train_Dis/``,
    ``Val_Dis/`` or ``Distortion1..4/``, references ``A0001.bmp`` in ``Train_Ref/``/``Val_Ref/``
    /``Reference/``. Elo scores, higher is better; the content group is the reference."""
    lists = [(p, "train") for p in sorted((root / "Train_Label").glob("*.txt"))]
    lists += [(p, "val") for p in sorted((root / "Val_Label").glob("*.txt"))]
    if not lists:
        lists = [(p, "train") for p in sorted(root.glob("pipal*_train*.txt"))]
        lists += [(p, "val") for p in sorted(root.glob("pipal*_val*.txt"))]
    if not lists:
        problems.add(f"{root}: no Train_Label/*.txt nor pipal*_train.txt / pipal*_val.txt lists")
        problems.raise_if_any()
    dist_dirs = ("Train_Dis", "Val_Dis", "Distortion1", "Distortion2", "Distortion3")
    dist_dirs += ("Distortion4", "Dis", "")
    ref_dirs = ("Train_Ref", "Val_Ref", "Reference", "Ref", "")
    samples = []
    for path, split in lists:
        for where, name, text in _label_lines(path, problems):
            mos = parse_score(text, where, problems)
            if mos is None:
                continue
            reference = name.split("_")[0]
            ref = _find(root, f"{reference}.bmp", ref_dirs)
            samples.append(Sample(_find(root, name, dist_dirs), mos, reference, ref, split))
    return _dataset("pipal", root, samples, True, problems, full_reference=True)


def read_sr4kiqa(root: Path, problems: Problems) -> Dataset:
    """SR4KIQA: ``MOS.csv`` rows ``name, score, x`` (score in the second field, as MaxIQA's
    loader reads it) and images in scene folders ``<Scene>/<Scene>_<Method>_x<s>.<ext>``.
    The release's MOS is already min-max normalised to [0, 1] (read as it is), higher is
    better; the group is the scene."""
    samples = []
    for where, name, text in _label_lines(root / "MOS.csv", problems):
        if where.endswith(":1") and not is_number(text):  # a header line
            continue
        mos = parse_score(text, where, problems)
        if mos is None:
            continue
        scene = name.split("_")[0]
        samples.append(Sample(_find(root, name, (scene, "")), mos, scene))
    return _dataset("sr4kiqa", root, samples, True, problems, (0.0, 1.0))


def read_qads(root: Path, problems: Problems) -> Dataset:
    """QADS: a list ``qads.txt`` (or ``mos_with_names.txt``) of ``name, score`` lines; SR
    images in ``super-resolved_images/`` (or ROOT), references in ``source_images/``. MOS in
    [0, 1], higher is better; the group is the reference (the name up to its first ``_``)."""
    label = next(
        (root / n for n in ("qads.txt", "mos_with_names.txt") if (root / n).is_file()), None
    )
    samples = []
    for where, first, second in _label_lines(label or root / "qads.txt", problems):
        name, text = (second, first) if is_number(first) else (first, second)
        mos = parse_score(text, where, problems)
        if mos is None:
            continue
        group = name.split("_")[0]
        image = _find(root, name, ("super-resolved_images", ""))
        samples.append(Sample(image, mos, group))
    notes = ["layout as MaxIQA's loader reads it; the official archive was not checked here"]
    return _dataset("qads", root, samples, True, problems, (0.0, 1.0), notes=notes)


def read_uhdiqa(root: Path, problems: Problems) -> Dataset:
    """UHD-IQA: the challenge metadata CSVs ``uhd-iqa-{training,validation,test}-metadata.csv``
    (``image_name, quality_mos, set``); images in ``<set>/``, ``images/`` or ROOT. MOS on 0-1,
    higher is better; every photo is its own content group. The official split is ``set``."""
    files = sorted(root.glob("uhd-iqa-*-metadata.csv")) + sorted(
        root.glob("csvfiles/uhd-iqa-*.csv")
    )
    if not files:
        problems.add(f"{root}: no uhd-iqa-*-metadata.csv file")
        problems.raise_if_any()
    split_names = {"training": "train", "validation": "val", "test": "test"}
    samples = []
    for file in files:
        _, rows = read_csv(file)
        for number, row in enumerate(rows, 2):
            where = f"{file}:{number}"
            mos = parse_score(row.get("quality_mos", ""), where, problems)
            if mos is None:
                continue
            split = split_names.get(row.get("set", "").strip(), row.get("set", "").strip())
            name = row.get("image_name", "").strip()
            image = _find(root, name, (row.get("set", "").strip(), "images", ""))
            samples.append(Sample(image, mos, name, split=split))
    return _dataset("uhdiqa", root, samples, True, problems, (0.0, 1.0))


def read_koniq(root: Path, problems: Problems) -> Dataset:
    """KonIQ-10k: ``koniq10k_distributions_sets.csv`` (``image_name, ..., MOS, SD, set``, MOS on
    0-100) with images in ``1024x768/``, ``512x384/`` or ``images/``. Higher is better; each
    photo is its own group; the official split is ``set`` (training / validation / test)."""
    file = root / "koniq10k_distributions_sets.csv"
    if not file.is_file():
        file = root / "metadata" / file.name
    if not file.is_file():
        problems.add(f"{root}: koniq10k_distributions_sets.csv missing")
        problems.raise_if_any()
    split_names = {"training": "train", "validation": "val", "test": "test"}
    samples = []
    header, rows = read_csv(file)
    cols = _columns(file, header, {"image": ("image_name",), "score": ("MOS",)}, problems)
    set_col = _column(header, ("set",))
    for number, row in enumerate(rows, 2):
        mos = parse_score(row.get(cols["score"], ""), f"{file}:{number}", problems)
        if mos is None:
            continue
        name = row.get(cols["image"], "").strip()
        image = _find(root, name, ("1024x768", "512x384", "images", ""))
        part = row.get(set_col, "").strip() if set_col else ""
        if part and part not in split_names:
            problems.add(f"{file}:{number}: set {part!r} is not one of {', '.join(split_names)}")
        samples.append(Sample(image, mos, name, split=split_names.get(part, "")))
    return _dataset("koniq", root, samples, True, problems, (0.0, 100.0))


def read_clive(root: Path, problems: Problems) -> Dataset:
    """LIVE In the Wild: ``Data/AllImages_release.mat`` and ``Data/AllMOS_release.mat`` with
    images in ``Images/``; the 7 training images (``t1.bmp`` ... in ``Images/trainingImages``)
    are left out, as is standard. MOS 0-100, higher is better; each photo its own group."""
    data = root / "Data"
    names_file, mos_file = data / "AllImages_release.mat", data / "AllMOS_release.mat"
    for file in (names_file, mos_file):
        if not file.is_file():
            problems.add(f"{file}: missing")
    problems.raise_if_any()
    names = [str(cell[0][0]) for cell in _mat_variable(names_file, "AllImages_release", problems)]
    scores = _mat_variable(mos_file, "AllMOS_release", problems).ravel().tolist()
    problems.raise_if_any()
    if len(names) != len(scores):
        problems.add(f"{names_file} lists {len(names)} images, {mos_file} {len(scores)} scores")
        problems.raise_if_any()
    samples = [
        Sample(_find(root, name, ("Images",)), float(mos), name)
        for name, mos in zip(names, scores, strict=True)
        if not re.fullmatch(r"t\d+\.bmp", name)
    ]
    notes = [f"left out the {len(names) - len(samples)} training images (t*.bmp)"]
    return _dataset("clive", root, samples, True, problems, (0.0, 100.0), notes=notes)


def _mat_variable(path: Path, name: str, problems: Problems):
    """Variable ``name`` of a MATLAB file, or an empty array and a problem saying why not."""
    import numpy as np
    from scipy.io import loadmat

    try:
        return loadmat(path, variable_names=[name])[name]
    except KeyError:
        problems.add(f"{path}: has no variable {name}")
    except Exception as e:  # scipy raises several kinds for a damaged or foreign file
        problems.add(f"{path}: not a readable MATLAB file ({type(e).__name__}: {e})")
    return np.empty((0, 1), dtype=object)


def read_kadid(root: Path, problems: Problems) -> Dataset:
    """KADID-10k: ``dmos.csv`` (``dist_img, ref_img, dmos, var``) with images in ``images/``.
    Its DMOS is on 1-5 with higher better (despite the name); the group is the reference."""
    file = root / "dmos.csv"
    if not file.is_file():
        problems.add(f"{file}: missing")
        problems.raise_if_any()
    header, rows = read_csv(file)
    wanted = {"image": IMAGE_COLUMNS, "reference": REF_COLUMNS, "score": ("dmos",)}
    cols = _columns(file, header, wanted, problems)
    samples = []
    for number, row in enumerate(rows, 2):
        mos = parse_score(row.get(cols["score"], ""), f"{file}:{number}", problems)
        if mos is None:
            continue
        ref = _find(root, row[cols["reference"]].strip(), ("images", ""))
        image = _find(root, row[cols["image"]].strip(), ("images", ""))
        samples.append(Sample(image, mos, ref.name, ref))
    return _dataset("kadid", root, samples, True, problems, (1.0, 5.0), full_reference=True)


def read_tid2013(root: Path, problems: Problems) -> Dataset:
    """TID2013: ``mos_with_names.txt`` lines ``5.51429 I01_01_1.bmp`` with distorted images in
    ``distorted_images/`` and references ``I01.BMP`` in ``reference_images/`` (names matched
    whatever their case). MOS 0-9, higher is better; the group is the reference."""
    samples = []
    for where, text, name in _label_lines(root / "mos_with_names.txt", problems):
        mos = parse_score(text, where, problems)
        if mos is None:
            continue
        reference = name.split("_")[0].upper()
        ref = _find(root, f"{reference}.BMP", ("reference_images", ""))
        image = _find(root, name, ("distorted_images", ""))
        samples.append(Sample(image, mos, reference, ref))
    return _dataset("tid2013", root, samples, True, problems, (0.0, 9.0), full_reference=True)


ADAPTERS = {
    a.name: a
    for a in (
        Adapter(
            "csv",
            "PATH = a CSV, or a folder with mos.csv: image, mos[, ref][, group]; "
            "images beside it or in images/",
            read_csv_dataset,
        ),
        Adapter(
            "pipal",
            "Train_Label/*.txt (or pipal*_train.txt, pipal*_val.txt); Train_Dis/, "
            "Train_Ref/ (or Distortion1..4/, Reference/)",
            read_pipal,
        ),
        Adapter("sr4kiqa", "MOS.csv (name, score, x); <Scene>/<image>", read_sr4kiqa),
        Adapter("qads", "qads.txt (name, score); super-resolved_images/", read_qads),
        Adapter(
            "uhdiqa",
            "uhd-iqa-{training,validation,test}-metadata.csv; <set>/ or images/",
            read_uhdiqa,
        ),
        Adapter(
            "koniq", "koniq10k_distributions_sets.csv; 1024x768/ (or 512x384/, images/)", read_koniq
        ),
        Adapter(
            "clive", "Data/AllImages_release.mat, Data/AllMOS_release.mat; Images/", read_clive
        ),
        Adapter("kadid", "dmos.csv (dist_img, ref_img, dmos); images/", read_kadid),
        Adapter(
            "tid2013", "mos_with_names.txt; distorted_images/, reference_images/", read_tid2013
        ),
    )
}

"""Parameter files that are too large or not ours to ship: where they live, how they arrive.

Each file has an entry in :data:`REGISTRY` (file name, public URL, a checksum when known,
licence).
:func:`resolve` finds it: an explicit path first, then the cache, then (only when asked) a
download into the cache. Nothing is ever fetched implicitly, and ``IQA4K_OFFLINE=1`` forbids
fetching altogether. When the file cannot be found the error says exactly how to provide it.

Environment:

- ``IQA4K_HOME``: the cache directory (default ``~/.cache/iqa4k``); entry ``name`` is kept at
  ``$IQA4K_HOME/<name>/<filename>``.
- ``IQA4K_OFFLINE``: any value but ``''``, ``0``, ``false`` or ``no`` disables downloads.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .errors import WeightsNotFoundError

_CHUNK = 1 << 20


# Hosts whose links lead to a page rather than the file (a preview, a folder listing, a virus
# scan warning): their files are fetched by hand.
_PAGE_HOSTS = ("drive.google.com", "www.dropbox.com", "dropbox.com")


@dataclass(frozen=True)
class WeightsFile:
    """One downloadable parameter file: where it is published, and which metrics read it."""

    filename: str  # the file's own name, as published
    url: str  # direct link when there is one, else the page it is published on; "": none
    sha256: str | None  # None: not known here (then the git blob id, if any, checks copies)
    licence: str  # licence and provenance, shown in error messages
    note: str = ""  # what the file holds and how it was trained or obtained
    # Set when registered (models register their releases under "<model>-<release>"):
    name: str = ""  # registry key, also the cache sub-directory
    # the metrics that read it, for the instructions in errors; () for a file only training
    # reads (a pretrained backbone)
    metrics: tuple[str, ...] = ()
    option: str = "weights"  # the metric option that passes a copy the user has
    download_option: str = ""  # the option that allows a download; "": allowed by default
    # Git's object id of the file where a repository publishes it (SHA-1 of "blob <size>\0"
    # and the contents, as `git ls-tree` lists it): pins the contents when no SHA-256 is known.
    git_blob: str | None = None

    @property
    def direct(self) -> bool:
        """Whether the URL serves the file itself (so iqa4k can fetch it): Dropbox links do
        with ``dl=1``; Google Drive folders and previews do not."""
        if not self.url:
            return False
        link = urlparse(self.url)
        if link.hostname in ("www.dropbox.com", "dropbox.com"):
            return "dl=1" in link.query.split("&")
        return link.hostname not in _PAGE_HOSTS

    @property
    def pass_as(self) -> str:
        """The call that passes a copy the user has ("" for a training-only file)."""
        if not self.metrics:
            return ""
        return f"create_metric('{self.metrics[0]}', {self.option}='/path/to/{self.filename}')"

    @property
    def fetch_as(self) -> str:
        """What downloads the file into the cache; "" when the URL is a page."""
        if not self.direct:
            return ""
        if not self.metrics:
            return "any `iqa4k train` run that starts from it"
        allow = f", {self.download_option}=True" if self.download_option else ""
        return f"create_metric('{self.metrics[0]}'{allow})"

    def matches(self, digest: str) -> bool:
        """Whether hex ``digest`` fits the known SHA-256 (full, or a torch.hub-style prefix)."""
        return self.sha256 is None or digest.lower().startswith(self.sha256.lower())

    @property
    def checked_by(self) -> str:
        """The kind of checksum copies are checked against; "" when none is known."""
        if self.sha256:
            return "SHA-256" if len(self.sha256) == 64 else "SHA-256 prefix"
        return "git blob id" if self.git_blob else ""

    @property
    def checksum(self) -> str:
        """The checksum copies are checked against, for messages; "" when none is known."""
        return f"{self.checked_by} {self.sha256 or self.git_blob}" if self.checked_by else ""


REGISTRY: dict[str, WeightsFile] = {}


def register(entry: WeightsFile) -> WeightsFile:
    """Add ``entry`` to :data:`REGISTRY`; called when the package is imported."""
    if not entry.name:
        raise ValueError(f"{entry.filename}: a registered file needs a name")
    if REGISTRY.get(entry.name, entry) != entry:
        raise ValueError(f"two different parameter files are called {entry.name!r}")
    REGISTRY[entry.name] = entry
    return entry


register(
    WeightsFile(
        name="nrqm",
        filename="model.mat",
        url="https://raw.githubusercontent.com/chaoma99/sr-metric/master/model.mat",
        # Not obtained where iqa4k was written, so its SHA-256 is unknown; the repository's
        # tree (commit 51218db) gives its git blob id, which checks downloads and copies.
        sha256=None,
        git_blob="a852aefb6a49e52703044fee4fa60c3f5b8d5adc",
        licence="MIT licence, (c) Chao Ma; github.com/chaoma99/sr-metric (Ma et al., CVIU 2017)",
        metrics=("nrqm", "pi"),
        option="model_path",
        download_option="download",
    )
)


def cache_dir() -> Path:
    """The cache directory: ``$IQA4K_HOME`` or ``~/.cache/iqa4k``."""
    return Path(os.environ.get("IQA4K_HOME") or "~/.cache/iqa4k").expanduser()


def cache_path(name: str) -> Path:
    """Where entry ``name`` is kept in the cache (whether or not it is there)."""
    entry = _entry(name)
    return cache_dir() / entry.name / entry.filename


def available(name: str) -> bool:
    """Whether entry ``name`` is in the cache (not verified: :func:`resolve` checks it)."""
    return cache_path(name).is_file()


def offline() -> bool:
    """True when ``IQA4K_OFFLINE`` forbids downloads."""
    return os.environ.get("IQA4K_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_of(path: str | Path) -> str:
    """Git's object id of a file: hex SHA-1 of ``blob <size>\\0`` followed by its bytes."""
    digest = hashlib.sha1(f"blob {os.path.getsize(path)}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _mismatch(entry: WeightsFile, path: Path) -> str:
    """What ``path`` has instead of the entry's known checksum ("" when it fits or none is
    known): the SHA-256 when one is known, else the git blob id."""
    if entry.sha256:
        actual = sha256_of(path)
        return "" if entry.matches(actual) else f"SHA-256 {actual}"
    if entry.git_blob:
        actual = git_blob_of(path)
        return "" if actual == entry.git_blob else f"git blob id {actual}"
    return ""


def resolve(name: str, path: str | Path | None = None, download: bool = False) -> Path:
    """The local path of parameter file ``name``, or :class:`WeightsNotFoundError`.

    Order: ``path`` when given (it must exist); the cache file when present (checked against
    the registry's checksum when known); a download into the cache when ``download`` is true
    and ``IQA4K_OFFLINE`` is not set. Otherwise the error explains how to provide the file.
    """
    entry = _entry(name)
    if path is not None and str(path) != "":
        given = Path(path).expanduser()
        if not given.is_file():
            raise WeightsNotFoundError(
                _instructions(entry, cache_path(name), f"{given} does not exist.", passed=True)
            )
        return given
    target = cache_path(name)
    if target.is_file():
        _verify(entry, target, "the cached copy")
        return target
    if download and not offline():
        return fetch(name)
    reason = f"{entry.filename} is not in the iqa4k cache ({target})"
    if download:
        reason += " and downloads are disabled by IQA4K_OFFLINE"
    raise WeightsNotFoundError(_instructions(entry, target, reason + "."))


def fetch(name: str) -> Path:
    """Download entry ``name`` into the cache and return its path (refused when offline).

    The bytes go to a hidden ``.<file>.part`` beside the destination, with a progress bar on
    a terminal. When a download breaks off, the bytes received are kept and the next call
    asks the server for the rest only (an HTTP range request; a server that ignores it sends
    the whole file again). The whole file is checked against the checksum when one is known
    and only then renamed into place, so nothing that looks valid is ever half-written. A
    lock on the part file makes a second process wait for the first one's download.
    """
    entry = _entry(name)
    target = cache_path(name)
    if offline():
        reason = f"cannot download {entry.filename}: downloads are disabled by IQA4K_OFFLINE."
        raise WeightsNotFoundError(_instructions(entry, target, reason))
    if not entry.url:
        reason = f"{entry.filename} is not in the iqa4k cache ({target})."
        raise WeightsNotFoundError(_instructions(entry, target, reason))
    if not entry.fetch_as:
        reason = f"{entry.filename} is published on a page ({entry.url}), not as a direct link."
        raise WeightsNotFoundError(_instructions(entry, target, reason))
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{entry.filename}.part")
    while True:
        if target.is_file():  # already here, or another process has just finished it
            _verify(entry, target, "the cached copy")
            return target
        with open(part, "ab") as out:
            _lock(out)  # waits while another process downloads the same file
            ours = part.exists() and os.path.samestat(os.fstat(out.fileno()), part.stat())
            if target.is_file() or not ours:
                if ours and not out.tell():
                    part.unlink()  # opened just after the other process had finished
                continue  # finished (above) or dropped as bad: then a new part file
            try:
                _download(entry.url, out)
            except (OSError, http.client.HTTPException) as err:  # URLError is an OSError
                kept = f"; the {out.tell()} bytes received are kept in {part}, and the next "
                kept += "fetch resumes from there"
                reason = f"could not download {entry.url}: {err}{kept if out.tell() else ''}."
                raise WeightsNotFoundError(
                    _instructions(entry, target, reason, fetched=True)
                ) from err
            out.flush()
            wrong = _mismatch(entry, part)
            if wrong:
                part.unlink()
                reason = (
                    f"download of {entry.url} has {wrong}, expected {entry.checksum}; nothing "
                    "was saved."
                )
                raise WeightsNotFoundError(_instructions(entry, target, reason, fetched=True))
            os.replace(part, target)
            return target


def _lock(file) -> None:
    """An exclusive lock on an open file, held until it is closed (POSIX; elsewhere none)."""
    try:
        import fcntl
    except ImportError:
        return
    fcntl.flock(file.fileno(), fcntl.LOCK_EX)


def _download(url: str, out) -> None:
    """Append the bytes of ``url`` that ``out`` (opened for appending) does not hold yet."""
    from tqdm import tqdm

    start = out.seek(0, os.SEEK_END)
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:  # nothing after ``start``: the file is whole
            return
        raise
    with response:
        resumed = response.headers.get("Content-Range", "").startswith(f"bytes {start}-")
        if start and not (response.status == 206 and resumed):
            out.seek(0)  # the server sent the whole file again
            out.truncate()
            start = 0
        size = response.headers.get("Content-Length")
        total = start + int(size) if size else None
        name = url.rsplit("/", 1)[-1].split("?")[0]
        # disable=None: a bar on a terminal only, not in logs
        with tqdm(
            total=total,
            initial=start,
            unit="B",
            unit_scale=True,
            desc=name,
            disable=None,
            leave=False,
        ) as bar:
            for block in iter(lambda: response.read(_CHUNK), b""):
                out.write(block)
                bar.update(len(block))
    if total is not None and out.tell() != total:
        raise OSError(f"the connection closed after {out.tell()} of {total} bytes")


def install(name: str, source: str | Path) -> Path:
    """Copy a file you obtained yourself into the cache (checked when a checksum is known)."""
    entry = _entry(name)
    if is_html(source):
        raise WeightsNotFoundError(
            f"{source} is an HTML page, not {entry.filename}: the link opened a preview or a "
            "sign-in page; use the page's download button and import the file it gives"
        )
    _verify(entry, Path(source), str(source))
    target = cache_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def is_html(path: str | Path) -> bool:
    """Whether a file is a web page (what a browser saves from a preview link)."""
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml"))


def status(name: str) -> str:
    """``missing``, ``present, verified``, ``present, WRONG <kind of checksum>`` or ``present
    (checksum not known)``."""
    entry, path = _entry(name), cache_path(name)
    if not path.is_file():
        return "missing"
    if not entry.checked_by:
        return "present (checksum not known)"
    return f"present, WRONG {entry.checked_by}" if _mismatch(entry, path) else "present, verified"


def _entry(name: str) -> WeightsFile:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no parameter file called {name!r}; known: {', '.join(REGISTRY)}") from None


def _verify(entry: WeightsFile, path: Path, what: str) -> None:
    wrong = _mismatch(entry, path)
    if wrong:
        reason = (
            f"{what} of {entry.filename} ({path}) has {wrong}, expected {entry.checksum}: it "
            "is another version or damaged; delete it and provide it again."
        )
        raise WeightsNotFoundError(_instructions(entry, cache_path(entry.name), reason))


def _instructions(
    entry: WeightsFile, target: Path, reason: str, passed: bool = False, fetched: bool = False
) -> str:
    """``reason`` on one line, then how to provide the file: where from, where to, or how.
    What has just failed is not suggested as such: ``passed`` (a path was given and was
    wrong) drops passing one, ``fetched`` (a download failed) offers it again as a retry."""
    metric, *others = entry.metrics or ("training that starts from it",)
    also = f" (likewise for {', '.join(repr(m) for m in others)})" if others else ""
    check = (
        f"checked against {entry.checksum}"
        if entry.checksum
        else "not verified: no checksum of it is known to iqa4k"
    )
    if not entry.url:  # nothing published: weights come from a training run
        return "\n".join(
            [
                reason,
                f"{metric} has no published weights: {entry.note}.",
                f"  Pass the checkpoint of a training run: {entry.pass_as}{also}",
            ]
        )
    lines = [
        reason,
        f"{' and '.join([metric, *others])} need{'' if others else 's'} the file "
        f"{entry.filename} ({entry.licence}). Either:",
        f"  - fetch it by hand from {entry.url} and save it as {target}",
        f"    (that is the cache directory {target.parent.parent}; IQA4K_HOME moves it);",
    ]
    lines.append(
        f"  - or put your copy in the cache: iqa4k weights import {entry.name} --file PATH"
    )
    if entry.pass_as and not passed:
        lines.append(
            f"  - or pass your copy: {entry.pass_as}{also}, on the command line "
            f"--opt {entry.option}=PATH"
        )
    if entry.fetch_as and fetched:
        lines.append(
            f"  - or try the download again later: iqa4k weights fetch {entry.name} (a broken "
            "download resumes where it stopped)."
        )
    elif entry.fetch_as:
        lines.append(
            f"  - or let iqa4k fetch it once into the cache: iqa4k weights fetch {entry.name}, "
            f"or {entry.fetch_as} (needs network access and IQA4K_OFFLINE unset; the download "
            f"is {check})."
        )
    return "\n".join(lines)

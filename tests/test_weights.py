"""The parameter-file cache: explicit paths, cache hits, checked downloads, offline mode."""

from __future__ import annotations

import functools
import http.server
import io
import os
import socket
import sys
import threading
import time
import urllib.request

import pytest
import torch

from iqa4k import weights
from iqa4k.errors import WeightsNotFoundError


@pytest.fixture
def weight_entry(tmp_path, monkeypatch):
    """A registry entry pointing at a local file, with the cache in tmp_path."""
    source = tmp_path / "src" / "params.bin"
    source.parent.mkdir()
    source.write_bytes(os.urandom(3000) + b"iqa4k")
    monkeypatch.setenv("IQA4K_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("IQA4K_OFFLINE", raising=False)
    entry = weights.WeightsFile(
        name="testfile",
        filename="params.bin",
        url=source.as_uri(),
        sha256=weights.sha256_of(source),
        licence="test data",
        metrics=("dummy",),
        option="model_path",
        download_option="download",
    )
    monkeypatch.setitem(weights.REGISTRY, "testfile", entry)
    return entry, source


def test_resolve_prefers_an_explicit_path(weight_entry, tmp_path):
    _, source = weight_entry
    assert weights.resolve("testfile", source) == source
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        weights.resolve("testfile", tmp_path / "nope.bin")


def test_resolve_without_download_explains_how_to_provide_the_file(weight_entry, tmp_path):
    entry, _ = weight_entry
    with pytest.raises(WeightsNotFoundError) as err:
        weights.resolve("testfile")
    text = str(err.value)
    assert entry.url in text and str(tmp_path / "cache" / "testfile" / "params.bin") in text
    assert "model_path=" in text and "download=True" in text


def test_download_from_a_file_url_verifies_and_caches(weight_entry, tmp_path):
    _, source = weight_entry
    assert not weights.available("testfile")
    path = weights.resolve("testfile", download=True)
    assert weights.available("testfile")
    assert path == tmp_path / "cache" / "testfile" / "params.bin"
    assert path.read_bytes() == source.read_bytes()
    assert weights.resolve("testfile") == path  # now a cache hit, checked again
    assert weights.fetch("testfile") == path  # nothing to fetch
    assert list(path.parent.iterdir()) == [path]  # no part file left


def test_download_with_a_wrong_checksum_saves_nothing(weight_entry, monkeypatch):
    entry, _ = weight_entry
    bad = weights.WeightsFile(**{**entry.__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(weights.REGISTRY, "testfile", bad)
    with pytest.raises(WeightsNotFoundError, match="expected SHA-256 0000"):
        weights.resolve("testfile", download=True)
    folder = weights.cache_path("testfile").parent
    assert not folder.exists() or list(folder.iterdir()) == []


def test_cached_file_with_a_wrong_checksum_is_refused(weight_entry):
    target = weights.cache_path("testfile")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"something else")
    with pytest.raises(WeightsNotFoundError, match="another version or damaged"):
        weights.resolve("testfile")


def test_download_over_http_from_localhost(weight_entry, monkeypatch):
    entry, source = weight_entry
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(source.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/params.bin"
        served = weights.WeightsFile(**{**entry.__dict__, "url": url})
        monkeypatch.setitem(weights.REGISTRY, "testfile", served)
        path = weights.resolve("testfile", download=True)
        assert path.read_bytes() == source.read_bytes()
    finally:
        server.shutdown()
        server.server_close()


class _RangeServer(http.server.BaseHTTPRequestHandler):
    """Serves ``data`` with HTTP range requests; the first ``cuts`` responses break off
    after half their bytes. Records the Range header of every request."""

    data, cuts, ranges, honour_ranges, delay = b"", 0, [], True, 0.0

    def do_GET(self):
        asked = self.headers.get("Range")
        type(self).ranges.append(asked)
        start = int(asked[6:-1]) if asked and self.honour_ranges else 0
        body = self.data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header(
                "Content-Range", f"bytes {start}-{len(self.data) - 1}/{len(self.data)}"
            )
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        time.sleep(self.delay)
        if type(self).cuts:
            type(self).cuts -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("honour_ranges", [True, False])
def test_a_broken_download_resumes_where_it_stopped(weight_entry, monkeypatch, honour_ranges):
    entry, source = weight_entry
    handler = type("Handler", (_RangeServer,), {})
    handler.data, handler.cuts, handler.ranges = source.read_bytes(), 1, []
    handler.honour_ranges = honour_ranges
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/params.bin"
        monkeypatch.setitem(
            weights.REGISTRY, "testfile", weights.WeightsFile(**{**entry.__dict__, "url": url})
        )
        half = len(handler.data) // 2
        with pytest.raises(WeightsNotFoundError, match=f"the {half} bytes received are kept") as e:
            weights.fetch("testfile")
        # the download that just failed is offered as a retry, not as a first try
        assert "try the download again later: iqa4k weights fetch testfile" in str(e.value)
        assert "fetch it once" not in str(e.value)
        part = weights.cache_path("testfile").with_name(".params.bin.part")
        assert part.read_bytes() == handler.data[:half] and not weights.available("testfile")
        path = weights.fetch("testfile")
        assert path.read_bytes() == handler.data and not part.exists()
        # the second request asked for the rest only; a server that ignores it sent it all
        assert handler.ranges == [None, f"bytes={half}-"]
    finally:
        server.shutdown()
        server.server_close()


def test_two_fetches_of_one_file_download_it_once(weight_entry, monkeypatch):
    entry, source = weight_entry
    handler = type("Handler", (_RangeServer,), {})
    handler.data, handler.ranges, handler.delay = source.read_bytes(), [], 0.3
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/params.bin"
        served = weights.WeightsFile(**{**entry.__dict__, "url": url})
        monkeypatch.setitem(weights.REGISTRY, "testfile", served)
        paths = []
        fetchers = [threading.Thread(target=lambda: paths.append(weights.fetch("testfile")))]
        fetchers.append(threading.Thread(target=lambda: paths.append(weights.fetch("testfile"))))
        for t in fetchers:
            t.start()
        for t in fetchers:
            t.join()
        assert len(paths) == 2 and paths[0] == paths[1]
        assert paths[0].read_bytes() == handler.data
        assert handler.ranges == [None]  # the second waited for the first's file
    finally:
        server.shutdown()
        server.server_close()


def test_a_download_shows_a_progress_bar_on_a_terminal(weight_entry, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen, log = Terminal(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", screen)
    weights.fetch("testfile")
    assert "params.bin:" in screen.getvalue() and "/3.00k" in screen.getvalue()  # of 3005 bytes
    weights.cache_path("testfile").unlink()
    monkeypatch.setattr(sys, "stderr", log)  # not a terminal: no bar in logs
    weights.fetch("testfile")
    assert log.getvalue() == ""


def test_offline_forbids_any_download(weight_entry, monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError("network used while IQA4K_OFFLINE is set")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("IQA4K_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="IQA4K_OFFLINE"):
        weights.resolve("testfile", download=True)
    with pytest.raises(WeightsNotFoundError, match="IQA4K_OFFLINE"):
        weights.fetch("testfile")
    assert attempts == []


def test_a_hash_prefix_is_checked_like_torch_hub(weight_entry):
    entry, _ = weight_entry
    assert entry.matches(entry.sha256) and entry.matches(entry.sha256.upper())
    short = weights.WeightsFile(**{**entry.__dict__, "sha256": entry.sha256[:8]})
    assert short.matches(entry.sha256)
    other = "0" * 64 if not entry.sha256.startswith("0") else "1" * 64
    assert not short.matches(other)


def test_git_blob_id_is_what_git_lists(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    # git's id of the empty blob, the same in every repository
    assert weights.git_blob_of(empty) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    text = tmp_path / "text"
    text.write_bytes(b"what is up, doc?")
    # git hash-object of these 16 bytes (Pro Git, "Git Objects")
    assert weights.git_blob_of(text) == "bd9dbf5aae1a3862dd1526723246b20206e5fc37"


def test_a_git_blob_id_checks_copies_when_no_sha256_is_known(weight_entry, monkeypatch, tmp_path):
    entry, source = weight_entry
    pinned = weights.WeightsFile(
        **{**entry.__dict__, "sha256": None, "git_blob": weights.git_blob_of(source)}
    )
    monkeypatch.setitem(weights.REGISTRY, "testfile", pinned)
    assert pinned.checked_by == "git blob id"
    path = weights.resolve("testfile", download=True)
    assert weights.status("testfile") == "present, verified"
    path.write_bytes(source.read_bytes()[:-1])  # truncated
    assert weights.status("testfile") == "present, WRONG git blob id"
    with pytest.raises(WeightsNotFoundError, match="has git blob id .*, expected git blob id"):
        weights.resolve("testfile")
    other = tmp_path / "other.bin"
    other.write_bytes(b"not the file")
    with pytest.raises(WeightsNotFoundError, match="git blob id"):
        weights.install("testfile", other)


def test_a_file_published_on_a_page_is_never_fetched(weight_entry, monkeypatch):
    entry, _ = weight_entry
    page = weights.WeightsFile(**{**entry.__dict__, "url": "https://drive.google.com/drive/x"})
    monkeypatch.setitem(weights.REGISTRY, "testfile", page)
    with pytest.raises(WeightsNotFoundError, match="published on a page") as err:
        weights.resolve("testfile", download=True)
    assert "download=True" not in str(err.value) and "model_path=" in str(err.value)


# ------------------------------------------------------------------------ iqa4k weights


def test_weights_command_lists_imports_and_verifies(tmp_path, monkeypatch, capsys):
    import iqa4k
    from iqa4k.cli import main
    from iqa4k.models import ENTRIES
    from iqa4k.models.checkpoint import save_checkpoint
    from iqa4k.models.loading import checkpoint_meta
    from iqa4k.testing import deterministic_init

    monkeypatch.setenv("IQA4K_HOME", str(tmp_path / "cache"))
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "maniqa-koniq" in out and "ckpt_koniq10k.pt" in out and "missing" in out

    page = tmp_path / "ckpt.pt"
    page.write_text("<!DOCTYPE html><html><body>Google Drive preview</body></html>")
    assert main(["weights", "import", "smalliqa-trained", "--file", str(page)]) == 1
    assert "is an HTML page, not smalliqa.safetensors" in capsys.readouterr().err

    entry = ENTRIES["smalliqa"]
    good = save_checkpoint(
        tmp_path / "s.safetensors",
        deterministic_init(entry.build()).state_dict(),
        checkpoint_meta(entry, "trained"),
    )
    wrong = save_checkpoint(tmp_path / "w.safetensors", {"x": torch.zeros(2)}, {})
    assert main(["weights", "import", "smalliqa-trained", "--file", str(wrong)]) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert main(["weights", "import", "smalliqa-trained", "--file", str(good)]) == 0
    capsys.readouterr()
    iqa4k.create_metric("smalliqa")  # found in the cache now, no option needed
    assert main(["weights", "verify", "smalliqa-trained"]) == 0
    assert "present (checksum not known)" in capsys.readouterr().out
    assert main(["weights", "fetch", "maniqa-koniq"]) == 1  # IQA4K_OFFLINE in the tests
    assert "disabled by IQA4K_OFFLINE" in capsys.readouterr().err
    assert main(["weights", "list", "nope"]) == 2


def test_which_links_serve_the_file_itself():
    def link(url: str) -> bool:
        return weights.WeightsFile(filename="f.pth", url=url, sha256=None, licence="").direct

    assert link("https://download.pytorch.org/models/resnet50-0676ba61.pth")
    assert link("https://www.dropbox.com/scl/fi/x/UIQA.pth?rlkey=k&dl=1")
    assert not link("https://www.dropbox.com/scl/fi/x/UIQA.pth?rlkey=k&dl=0")  # a preview page
    assert not link("https://drive.google.com/drive/folders/1fFv3BFGcDvrerYEMK9wWPuJzqtF9aRN_")
    assert not link("")

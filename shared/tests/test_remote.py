"""Remote fetching against a local server that misbehaves on purpose: resume, retries, mirrors,
bad hashes, concurrency, cache corruption, offline. Never contacts a real host."""

import hashlib
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import typing
from pathlib import Path

import pytest
from astrobench import data
from astrobench.data import DataError, RemoteSpec, remote

PAYLOAD = bytes(range(256)) * 4000  # 1 MB


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``files``; ``faults[path]`` is a queue of 'ok' | '500' | '404' | 'truncate' | 'slow'."""

    files: typing.ClassVar[dict] = {}
    faults: typing.ClassVar[dict] = {}
    log: typing.ClassVar[list] = []
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        action = self.faults.get(self.path, []).pop(0) if self.faults.get(self.path) else "ok"
        rng = self.headers.get("Range")
        type(self).log.append((self.path, rng, action))
        if self.path not in self.files or action in ("404", "500"):
            self.send_response(404 if action != "500" else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.files[self.path]
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        chunk = body[start:]
        if action == "truncate":  # promise everything, send half, hang up
            self.wfile.write(chunk[: len(chunk) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if action == "slow":
            for i in range(0, len(chunk), 1 << 16):
                self.wfile.write(chunk[i : i + (1 << 16)])
                time.sleep(0.02)
            return
        self.wfile.write(chunk)


@pytest.fixture
def server():
    Handler.files, Handler.faults, Handler.log = {"/a/file.bin": PAYLOAD, "/b/file.bin": PAYLOAD}, {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def spec(urls, sha=SHA, name="remote-test"):
    return RemoteSpec(name=name, version="1", description="test file", tracks=("tests",), urls=tuple(urls),
                      filename="file.bin", size_bytes=len(PAYLOAD), sha256=sha, hash_source="test",
                      licence="CC0", citation="-", offline_alternative="galaxies")


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(remote, "BACKOFF", 0.01)


@pytest.fixture
def registered():
    names = []

    def _register(s):
        data.register(s)
        names.append(s.name)
        return s.name

    yield _register
    for n in names:
        data.unregister(n)


def gets(path="/a/file.bin"):
    return [entry for entry in Handler.log if entry[0] == path]


def test_good_file_downloads_once(server, cache, registered):
    name = registered(spec([f"{server}/a/file.bin"]))
    path = data.fetch(name, progress=False)
    assert path.read_bytes() == PAYLOAD and path.is_relative_to(cache)
    data.fetch(name, progress=False)
    assert len(gets()) == 1  # the second fetch is served from the cache
    assert [r["verified"] for r in data.status() if r["name"] == name] == [True]


def test_truncated_download_resumes_with_range(server, cache, registered, fast_retries):
    Handler.faults["/a/file.bin"] = ["truncate"]
    name = registered(spec([f"{server}/a/file.bin"]))
    path = data.fetch(name, progress=False)
    assert path.read_bytes() == PAYLOAD
    log = gets()
    assert [a for _, _, a in log] == ["truncate", "ok"]
    resumed_at = int(log[1][1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(PAYLOAD) // 2  # resumed from what had been written, not from zero
    assert not list(path.parent.glob("*.part"))


def test_server_errors_retry_with_backoff(server, cache, registered, fast_retries):
    Handler.faults["/a/file.bin"] = ["500", "500"]
    name = registered(spec([f"{server}/a/file.bin"]))
    assert data.fetch(name, progress=False).read_bytes() == PAYLOAD
    assert [a for _, _, a in gets()] == ["500", "500", "ok"]


def test_404_on_primary_falls_back_to_mirror(server, cache, registered):
    name = registered(spec([f"{server}/gone/file.bin", f"{server}/b/file.bin"]))
    assert data.fetch(name, progress=False).read_bytes() == PAYLOAD
    assert [p for p, _, _ in Handler.log] == ["/gone/file.bin", "/b/file.bin"]


def test_hash_mismatch_names_file_and_hashes_and_caches_nothing(server, cache, registered):
    wrong = "0" * 64
    name = registered(spec([f"{server}/a/file.bin"], sha=wrong))
    with pytest.raises(DataError) as err:
        data.fetch(name, progress=False)
    msg = str(err.value)
    assert "file.bin" in msg and wrong in msg and f"got {SHA}" in msg and "\n" not in msg
    assert not [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock")]


def test_corrupted_cache_is_detected_and_refetched(server, cache, registered):
    name = registered(spec([f"{server}/a/file.bin"]))
    path = data.fetch(name, progress=False)
    with open(path, "r+b") as f:
        f.write(b"bitrot")
    assert data.fetch(name, progress=False).read_bytes() == PAYLOAD
    assert len(gets()) == 2


def test_trust_on_first_use_records_the_hash(server, cache, registered):
    name = registered(spec([f"{server}/a/file.bin"], sha=None))
    path = data.fetch(name, progress=False)
    record = json.loads(path.with_name("file.bin.sha256.json").read_text())
    assert record["sha256"] == SHA and record["trust"] == "first-use"
    assert remote.expected_hash(data.registry.get(name)) == (SHA, "trust-on-first-use")
    Handler.files["/a/file.bin"] = b"changed upstream"
    path.write_bytes(b"corrupt")  # forces a re-fetch, which must match the recorded hash
    with pytest.raises(DataError, match=f"expected sha256 {SHA}"):
        data.fetch(name, progress=False)


def test_unreachable_host_is_one_line_naming_the_offline_alternative(cache, registered, fast_retries):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = registered(spec([f"http://127.0.0.1:{port}/a/file.bin"]))
    with pytest.raises(DataError, match=r"127\.0\.0\.1:\d+ is unreachable.*'galaxies' instead") as err:
        data.fetch(name, progress=False)
    assert "\n" not in str(err.value)
    assert not (cache / "remote" / name / "file.bin").exists()


WORKER = """
import sys
from astrobench import data
from astrobench.data import RemoteSpec
data.register(RemoteSpec(name="remote-test", version="1", description="", tracks=(), urls=({url!r},),
    filename="file.bin", size_bytes=0, sha256={sha!r}, hash_source="", licence="", citation="",
    offline_alternative="galaxies"))
print(data.fetch("remote-test", progress=False))
"""


def test_two_processes_download_once(server, cache):
    Handler.faults["/a/file.bin"] = ["slow"]
    code = WORKER.format(url=f"{server}/a/file.bin", sha=SHA)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1] and Path(outs[0]).read_bytes() == PAYLOAD
    assert len(gets()) == 1

"""Remote files through pooch, against a local http.server: download, cache, bad hash, offline."""

import functools
import hashlib
import http.server
import socket
import threading
import typing
from pathlib import Path

import pytest
from astrobench import data
from astrobench.data import DataError, RemoteSpec


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requests_seen: typing.ClassVar[list] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests_seen.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "good.bin").write_bytes(b"galaxy survey bytes " * 500)
    _Quiet.requests_seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def make_spec(url, sha, name="remote-test"):
    return RemoteSpec(name=name, version="1", description="test file", tracks=("tests",), urls=(url,),
                      filename="good.bin", size_bytes=10000, sha256=sha, hash_source="test",
                      licence="CC0", citation="-", offline_alternative="galaxies")


@pytest.fixture
def register():
    names = []

    def _register(spec):
        data.register(spec)
        names.append(spec.name)
        return spec.name

    yield _register
    for n in names:
        data.unregister(n)


def test_good_file_downloads_once(server, cache, register):
    base, root = server
    sha = hashlib.sha256((root / "good.bin").read_bytes()).hexdigest()
    name = register(make_spec(f"{base}/good.bin", sha))
    path = data.fetch(name, progress=False)
    assert path.read_bytes() == (root / "good.bin").read_bytes()
    assert path.is_relative_to(cache)
    data.fetch(name, progress=False)
    assert _Quiet.requests_seen == ["/good.bin"]  # the second fetch is served from the cache
    assert [r["verified"] for r in data.status() if r["name"] == name] == [True]


def test_corrupted_file_names_file_and_hashes_and_caches_nothing(server, cache, register):
    base, _ = server
    wrong = "0" * 64
    name = register(make_spec(f"{base}/good.bin", wrong))
    with pytest.raises(DataError) as err:
        data.fetch(name, progress=False)
    msg = str(err.value)
    assert "good.bin" in msg and wrong in msg and "got " in msg and "\n" not in msg
    actual = msg.split("got ")[1].split(";")[0]
    assert len(actual) == 64 and actual != wrong
    assert not [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock")]


def test_unreachable_host_names_offline_alternative(cache, register):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = register(make_spec(f"http://127.0.0.1:{port}/good.bin", "0" * 64))
    with pytest.raises(DataError, match=r"unreachable.*use the simulated offline dataset 'galaxies' instead"):
        data.fetch(name, progress=False)
    assert not Path(cache / "remote" / name / "good.bin").exists()

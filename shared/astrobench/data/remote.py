"""Remote files: checksummed, mirrored, resumable downloads through pooch that lose nothing.

How a fetch goes (``fetch(spec)``):
- one process at a time per file (a file lock); a second process waits, then finds the file;
- each URL is tried in order (primary, then mirrors); a 404 moves on to the next mirror;
- the download streams into ``<file>.part`` beside the cache entry, resuming with an HTTP Range
  request after a broken connection, retrying 5xx answers and timeouts with exponential backoff;
- pooch then checks the sha256 and only a verified file is moved to its final name; a mismatch
  deletes the download and raises an error naming the file and both hashes;
- files with no published hash are trusted on first use: the hash computed then is recorded
  beside the file (``<file>.sha256.json``) and checked from then on;
- a cached file whose size or mtime changed since it was last verified is hashed again on load;
  if it no longer matches it is deleted and fetched anew.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import urlparse

from .cache import cache_dir, locked, sha256_file
from .errors import DataError

RETRIES = 4  # per URL, for 5xx answers, timeouts and broken connections
BACKOFF = 1.0  # seconds; doubles after each retry
TIMEOUT = 30.0  # seconds without data before a request counts as failed
CHUNK = 1 << 16  # small reads: a broken connection loses at most this much


class _NotFound(Exception):
    """The server answered 404/403/410: try the next mirror, do not retry."""


class _Retryable(Exception):
    """A 5xx answer, a timeout or a broken connection."""


def remote_path(spec) -> Path:
    return cache_dir() / "remote" / spec.name / spec.filename


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def expected_hash(spec) -> tuple[str | None, str]:
    """(sha256, origin): the published hash, else the one recorded on first use, else (None, ...)."""
    if spec.sha256:
        return spec.sha256.lower(), "published"
    record = _record_path(remote_path(spec))
    if record.is_file():
        return json.loads(record.read_text())["sha256"], "trust-on-first-use"
    return None, "none yet"


def is_cached(spec) -> bool:
    return remote_path(spec).is_file()


class ResumableDownloader:
    """A pooch downloader that resumes into a ``.part`` file and retries with backoff."""

    def __init__(self, part: Path, progress: bool = True, retries: int | None = None, backoff: float | None = None):
        self.part = part
        self.progress = progress
        self.retries = RETRIES if retries is None else retries
        self.backoff = BACKOFF if backoff is None else backoff

    def __call__(self, url, output_file, pooch_obj=None, check_only=False):
        last = None
        for attempt in range(self.retries + 1):
            try:
                self._get(url)
                Path(self.part).replace(output_file)  # pooch verifies the hash, then renames
                return
            except _Retryable as err:
                last = err
                if attempt < self.retries:
                    time.sleep(self.backoff * 2**attempt)
        raise _Retryable(f"{url}: gave up after {self.retries + 1} attempts ({last})")

    def _get(self, url):
        import requests
        from tqdm.auto import tqdm

        have = self.part.stat().st_size if self.part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with requests.get(url, stream=True, headers=headers, timeout=TIMEOUT) as r:
                if r.status_code in (403, 404, 410):
                    raise _NotFound(f"{url}: HTTP {r.status_code}")
                if r.status_code == 416:  # our partial file is no prefix of theirs: start over
                    self.part.unlink()
                    raise _Retryable(f"{url}: HTTP 416, restarting")
                if r.status_code >= 500:
                    raise _Retryable(f"{url}: HTTP {r.status_code}")
                r.raise_for_status()
                if have and r.status_code != 206:  # the server ignored Range: restart cleanly
                    have = 0
                length = int(r.headers.get("Content-Length", 0)) or None
                total = have + length if length else None
                with open(self.part, "ab" if have else "wb") as f, tqdm(
                    total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=Path(urlparse(url).path).name, disable=not self.progress,
                ) as bar:
                    for block in r.iter_content(CHUNK):
                        f.write(block)
                        bar.update(len(block))
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError) as err:
            raise _Retryable(f"{url}: {type(err).__name__}") from None
        size = self.part.stat().st_size
        if total is not None and size < total:
            raise _Retryable(f"{url}: connection closed at {size} of {total} bytes")


def _verified(spec, path: Path) -> bool:
    """Check a cached file against its expected hash, hashing only when size/mtime changed."""
    sha, _ = expected_hash(spec)
    stamp = path.with_name(path.name + ".verified")
    stat = path.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha}
    if stamp.is_file() and json.loads(stamp.read_text()) == key:
        return True
    ok = sha is None or sha256_file(path) == sha
    if ok:
        stamp.write_text(json.dumps(key))
    return ok


def fetch(spec, progress: bool = True) -> Path:
    """The verified local copy of ``spec``'s file, downloading it (once, for all processes) if needed."""
    import pooch

    pooch.get_logger().setLevel("WARNING")
    path = remote_path(spec)
    with locked(path):
        if path.is_file():
            if _verified(spec, path):
                return path
            print(f"astrobench: cached {path.name} no longer matches its sha256; fetching it again")
            path.unlink()
        sha, _ = expected_hash(spec)
        part = path.with_name(path.name + ".part")
        errors = []
        for url in spec.urls:
            try:
                pooch.retrieve(url, known_hash=f"sha256:{sha}" if sha else None, fname=path.name,
                               path=path.parent, progressbar=False,
                               downloader=ResumableDownloader(part, progress=progress))
            except ValueError as err:  # pooch: hash mismatch; it has deleted the download
                raise DataError(
                    f"{spec.filename} from {url} failed its checksum: expected sha256 {sha}, "
                    f"got {_actual_hash(str(err), sha)}; nothing was cached"
                ) from None
            except _NotFound as err:
                errors.append(str(err))
                part.unlink(missing_ok=True)  # a mirror may serve other bytes: never mix them
                continue
            except _Retryable as err:
                errors.append(str(err))
                continue
            if not spec.sha256:  # trust on first use: record what we got
                _record_path(path).write_text(json.dumps(
                    {"sha256": sha256_file(path), "trust": "first-use", "url": url,
                     "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=1))
            _verified(spec, path)
            return path
    if all("HTTP 4" in e for e in errors):
        raise DataError(f"cannot download {spec.name!r}: not found at any of its {len(spec.urls)} URLs "
                        f"({'; '.join(errors)}); use the simulated offline dataset {spec.offline_alternative!r}")
    host = urlparse(spec.urls[0]).netloc
    raise DataError(f"cannot download {spec.name!r}: host {host} is unreachable ({errors[-1]}); "
                    f"use the simulated offline dataset {spec.offline_alternative!r} instead")


def _actual_hash(message: str, expected: str | None) -> str:
    """The computed hash from pooch's mismatch message (the 64-hex token that is not expected)."""
    for token in re.findall(r"[0-9a-fA-F]{64}", message):
        if token.lower() != (expected or "").lower():
            return token.lower()
    return "unknown"


def verify(spec) -> bool:
    """True when the cached file exists and matches its published (or first-use) hash."""
    path = remote_path(spec)
    return path.is_file() and _verified(spec, path)

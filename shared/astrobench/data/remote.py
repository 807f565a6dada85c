"""Remote datasets: checksummed downloads through pooch, with clear errors.

A download lands in a temporary file and is moved into the cache only after its sha256 has
been checked (pooch's behaviour), under a file lock, so the cache never holds a partial or
corrupted file. Real survey entries are added by the real-data issue; the mechanism is here.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

from .cache import cache_dir, locked, sha256_file
from .errors import DataError

DATASETS: list = []  # RemoteSpec entries for real survey data


def remote_path(spec) -> Path:
    return cache_dir() / "remote" / spec.name / spec.filename


def is_cached(spec) -> bool:
    return remote_path(spec).is_file()


def fetch(spec, progress: bool = True) -> Path:
    """Download ``spec`` into the cache once, verify its sha256, and return the local path."""
    import pooch
    import requests

    path = remote_path(spec)
    with locked(path):
        if path.is_file():
            return path
        known = f"sha256:{spec.sha256}" if spec.sha256 else None
        last_error = None
        for url in spec.urls:
            try:
                pooch.retrieve(url, known_hash=known, fname=path.name, path=path.parent,
                               progressbar=progress)
                return path
            except ValueError as err:  # pooch: hash mismatch; the bad file is already deleted
                actual = _actual_hash(str(err), spec.sha256)
                raise DataError(
                    f"{spec.filename} from {url} failed its checksum: expected sha256 {spec.sha256}, "
                    f"got {actual}; nothing was cached"
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as err:
                last_error = err
            except requests.exceptions.HTTPError as err:
                last_error = err
        host = urlparse(spec.urls[0]).netloc
        raise DataError(
            f"cannot download {spec.name!r}: host {host} is unreachable ({type(last_error).__name__}); "
            f"use the simulated offline dataset {spec.offline_alternative!r} instead"
        )


def _actual_hash(message: str, expected: str | None) -> str:
    """The computed hash from pooch's mismatch message (the 64-hex token that is not expected)."""
    for token in re.findall(r"[0-9a-fA-F]{64}", message):
        if token.lower() != (expected or "").lower():
            return token.lower()
    return "unknown"


def verify(spec) -> bool:
    """True when the cached file exists and matches the published hash (if any)."""
    path = remote_path(spec)
    return path.is_file() and (spec.sha256 is None or sha256_file(path) == spec.sha256)

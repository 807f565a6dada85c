"""Where datasets live on disk, and how they get there without half-written files.

Writes go to a temporary sibling directory which is renamed into place (atomic on one file
system), under a file lock, so two kernels asking for the same new dataset produce one copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

ENV_VAR = "ASTROBENCH_DATA"


def cache_dir() -> Path:
    """``$ASTROBENCH_DATA`` if set, else the user cache dir (e.g. ~/.cache/astrobench)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("astrobench"))


def check_writable(path: Path) -> None:
    """A DataError (one line) unless ``path``'s folder can be created or written: checked before generating or
    downloading, so a cache pointed at a file or a read-only place fails at once, with nothing half-written."""
    from .errors import DataError

    problem = unwritable(path)
    if problem:
        raise DataError(f"dataset cache {cache_dir()} (${ENV_VAR}): {problem}; expected a writable folder")


def unwritable(path) -> str | None:
    """Why the folder ``path`` could not be created or written into, or None. Probes with a temporary file in the
    nearest existing ancestor (permission bits alone say yes to root, even in /proc)."""
    parent = Path(path).expanduser()
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file"
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError:
        return f"{parent} is not writable"
    return None


@contextmanager
def locked(path: Path, timeout: float = 3600):
    """Hold ``<path>.lock`` while creating ``path``."""
    check_writable(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=timeout):
        yield


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextmanager
def atomic_dir(final: Path):
    """Yield a temporary directory that becomes ``final`` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def swap_in(tmp: Path, out: Path) -> None:
    """Replace the folder ``out`` by the finished folder ``tmp`` (its sibling): the old one is moved aside first and
    deleted after, so ``out`` is never half-written (a site, a leaderboard)."""
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)


def write_manifest(directory: Path, meta: dict) -> dict:
    """Hash every file in ``directory`` and write ``manifest.json`` (files, sha256, metadata)."""
    files = {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file()}
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    manifest = {"files": files, "sha256": digest, **meta}
    with open(directory / "manifest.json", "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True, default=str)
    return manifest


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0

"""Datasets: ``list()``, ``info(name)``, ``load(name, split, fast=None)``, ``fetch(name)``.

>>> from astrobench import data
>>> train = data.load("galaxies", "train")   # generated on first use, then cached
>>> train.images.shape, train.truth["z"][:3], train.meta["sha256"]
>>> data.register_arrays("mine", {"train": {"images": x, "truth": {"z": z}}, ...})  # your own data, same API
"""

from __future__ import annotations

import builtins
import functools
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import events, registry, remote, user
from .cache import atomic_dir, cache_dir, dir_size, locked, write_manifest
from .dataset import Dataset, _to_dataset
from .errors import DataError
from .registry import register, unregister
from .specs import RemoteSpec, SimulatedSpec

__all__ = [
    "DataError",
    "Dataset",
    "RemoteSpec",
    "SimulatedSpec",
    "cache_dir",
    "fetch",
    "identity",
    "info",
    "list",
    "load",
    "mismatch",
    "path_of",
    "register",
    "register_arrays",
    "register_files",
    "release_pages",
    "status",
    "unregister",
    "watching",
]


@functools.wraps(user.register_arrays)
def register_arrays(name: str, splits: dict, *args, **kwargs) -> Path:
    return user.register_arrays(name, splits, *args, reserved=registry.builtin_names(), **kwargs)


@functools.wraps(user.register_files)
def register_files(name: str, files: dict, *args, **kwargs) -> Path:
    return user.register_files(name, files, *args, reserved=registry.builtin_names(), **kwargs)


def list() -> builtins.list:
    """Names of all registered datasets."""
    return sorted(registry.all_specs())


def info(name: str) -> dict:
    """Registry entry and card of a dataset (no data is generated or downloaded)."""
    spec = registry.get(name)
    out = {"name": spec.name, "kind": spec.kind, "version": spec.version, "description": spec.description,
           "tracks": builtins.list(spec.tracks), "licence": spec.licence, "citation": spec.citation,
           "card": registry.card(name)}
    if spec.kind == "simulated":
        out.update(sizes=spec.sizes, seed=spec.seed)
    else:
        out.update(urls=builtins.list(spec.urls), size_bytes=spec.size_bytes, sha256=spec.sha256,
                   hash_source=spec.hash_source, offline_alternative=spec.offline_alternative)
    return out


def release_pages(*arrays) -> None:
    """Give back the pages of read-only memory-mapped arrays (``load``'s) that this process has read.

    They stay mapped, and counted in the process's resident memory, once read: streaming a 1 GB split batch by batch
    would leave ~1 GB resident (Binder allows 2 GB). Call it after each batch has been copied; the operating system
    keeps the file in its cache, so reading the rows again stays fast. Anything else (an in-memory array): no-op."""
    import mmap

    for array in arrays:
        mm = getattr(array, "_mmap", None)
        if getattr(array, "mode", None) == "r" and hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_DONTNEED)


def _resolve_fast(fast):
    if fast is None:
        from ..notebook import SettingError
        from ..notebook import fast as fast_mode

        try:
            return fast_mode()
        except SettingError as err:  # a bad ASTROBENCH_FAST: one line, not a traceback
            raise DataError(str(err)) from None
    return bool(fast)


def path_of(name: str, fast=None, seed: int | None = None) -> Path:
    """Cache directory of a simulated dataset variant (it may not exist yet)."""
    spec = registry.get(name)
    if spec.kind != "simulated":
        return remote.remote_path(spec)
    if getattr(spec, "path", None) is not None:  # user data (register_arrays): one folder for FAST and full
        return spec.path
    seed = spec.seed if seed is None else seed
    mode = "fast" if _resolve_fast(fast) else "full"
    return cache_dir() / spec.name / f"v{spec.version}-seed{seed}-{mode}"


def _generate(spec: SimulatedSpec, final: Path, fast: bool, seed: int, progress: bool) -> None:
    sizes = spec.sizes["fast" if fast else "full"]
    splits = spec.generate(dict(sizes), seed, progress)
    with atomic_dir(final) as tmp:
        for split, content in (splits.items() if isinstance(splits, dict) else splits):
            for key, value in content.items():
                if key == "truth":
                    cols = builtins.list(value)
                    rec = np.rec.fromarrays([np.asarray(value[c]) for c in cols], names=cols)
                    np.save(tmp / f"{split}.truth.npy", rec, allow_pickle=False)
                else:
                    np.save(tmp / f"{split}.{key}.npy", np.ascontiguousarray(value), allow_pickle=False)
            content = value = None  # a streaming generator then makes the next split without this one in memory
        write_manifest(tmp, {"name": spec.name, "version": spec.version, "seed": seed, "fast": fast,
                             "sizes": sizes, "config": spec.config()})


def load(name: str, split: str = "train", fast=None, seed: int | None = None, progress: bool = True) -> Dataset:
    """Load one split of a dataset, generating (simulated) or downloading (remote) it on first use.

    ``fast=None`` follows FAST mode (``astrobench.notebook.fast()``). Arrays are memory-mapped,
    so a cached reload is instant and large sets fit in little RAM.
    """
    ds = _load(name, split, fast, seed, progress)
    for seen in _WATCHERS:
        seen.append(ds.meta)
    return ds


def _load(name: str, split: str, fast, seed: int | None, progress: bool) -> Dataset:
    spec = registry.get(name)
    if split not in spec.splits:
        raise DataError(f"unknown split {split!r} for dataset {name!r}; expected one of: {', '.join(spec.splits)}")
    fast = _resolve_fast(fast)
    if seed is None:  # $ASTROBENCH_EVENT: an event's secret test split instead of the public one (data.events)
        event = events.event_split(name, split, fast)
        if event is not None:
            return event
    if spec.kind == "remote":
        path = remote.fetch(spec, progress=progress)
        if spec.adapter is None:
            raise DataError(f"dataset {name!r} has no loader yet; the raw file is at {path}")
        content, config = spec.adapter(path, split, fast)
        meta = {"name": name, "version": spec.version, "split": split, "fast": fast, "path": str(path),
                "seed": config.get("split_seed"), "config": config,
                "sha256": remote.expected_hash(spec)[0], "hash_origin": remote.expected_hash(spec)[1],
                "kind": "remote"}
        return _to_dataset(name, split, content, meta)

    seed = spec.seed if seed is None else int(seed)
    final = path_of(name, fast=fast, seed=seed)
    if not (final / "manifest.json").is_file():
        with locked(final):
            if not (final / "manifest.json").is_file():  # another process may have made it meanwhile
                _generate(spec, final, fast, seed, progress)
    with open(final / "manifest.json") as f:
        manifest = json.load(f)
    content = {}
    for p in sorted(final.glob(f"{split}.*.npy")):
        key = p.name[len(split) + 1 : -4]
        content[key] = np.load(p, mmap_mode="r", allow_pickle=False)
    meta = {k: manifest[k] for k in ("name", "version", "seed", "fast", "sizes", "config", "sha256")}
    meta.update(split=split, path=str(final), kind="simulated",
                files={k: v for k, v in manifest["files"].items() if k.startswith(f"{split}.")})
    return _to_dataset(name, split, content, meta)


_WATCHERS: builtins.list = []


@contextmanager
def watching():
    """Yields a list that receives the ``meta`` of every split ``load`` returns inside the block (the scorers use it
    to learn which split they scored against, whatever loaded it)."""
    seen: builtins.list = []
    _WATCHERS.append(seen)
    try:
        yield seen
    finally:
        # by identity: nested watchers (event.using around metrics.score) may hold equal lists
        del _WATCHERS[next(i for i, w in enumerate(_WATCHERS) if w is seen)]


# ---------------------------------------------------------------- which inputs predictions were made on


def identity(meta: dict, inputs=()) -> dict:
    """What predictions record about the split they were made on (``predictions.npz``'s ``made_on``): the dataset,
    version, split, FAST/full, where it came from (the public set or an event) and the sha256 of each input array
    (``inputs``, e.g. ``("images",)``; none for samples that depend on no test input)."""
    return {"dataset": meta.get("name"), "version": meta.get("version"), "split": meta.get("split"),
            "fast": bool(meta.get("fast")), "source": _source(meta),
            "inputs": {k: _input_sha(meta, k) for k in inputs}}


def _source(meta: dict) -> str:
    return "event" if meta.get("kind") == "event" else "public"


def _input_sha(meta: dict, key: str):
    """sha256 of one input array of a split: the manifest's (or, for a downloaded set, the source file's)."""
    declared = (meta.get("inputs") or {}).get(key)  # a scorer's reference folder keeps only its inputs' hashes
    files = meta.get("files") or {}
    return declared or files.get(f"{meta.get('split')}.{key}.npy") or (None if files else meta.get("sha256"))


def describe(made: dict) -> str:
    """``the public FAST test split of galaxies-anomaly v1.2.0 (images sha256 3f2a9c01b2d4)``."""
    shas = ", ".join(f"{k} sha256 {str(v)[:12]}" for k, v in made.get("inputs", {}).items())
    mode = "FAST" if made.get("fast") else "full"
    where = "event's" if made.get("source") == "event" else "public"
    return (f"the {where} {mode} {made.get('split')} split of {made.get('dataset')} v{made.get('version')}"
            + (f" ({shas})" if shas else ""))


def mismatch(made: dict, meta: dict) -> str | None:
    """Why predictions ``made`` (an ``identity``) do not belong to the split ``meta``, or None when they do."""
    here = identity(meta, made.get("inputs", {}))
    # a downloaded set's FAST split is the first rows of the full one: the scorer tells them apart by their size
    keys = ("dataset", "version", "split") + (("fast",) if meta.get("kind") != "remote" else ())
    differ = [k for k in keys if made.get(k) != here[k]]
    differ += [k for k, sha in made.get("inputs", {}).items() if sha is None or sha != here["inputs"].get(k)]
    if not differ:
        return None
    return f"the predictions were made on {describe(made)}; this scores {describe(here)}"


def fetch(name: str, progress: bool = True) -> Path:
    """Make a dataset available offline: download a remote file, or generate a simulated set."""
    spec = registry.get(name)
    if spec.kind == "remote":
        return remote.fetch(spec, progress=progress)
    load(name, spec.splits[0], progress=progress)
    return path_of(name)


def status() -> builtins.list:
    """For every dataset: whether it is ready in the cache (per FAST/full variant for simulated sets)."""
    rows = []
    for name, spec in sorted(registry.all_specs().items()):
        if spec.kind == "simulated":
            for fast in (True, False):
                p = path_of(name, fast=fast)
                ready = (p / "manifest.json").is_file()
                rows.append({"name": name, "variant": "fast" if fast else "full", "ready": ready,
                             "bytes": dir_size(p) if ready else 0})
        else:
            ready = remote.is_cached(spec)
            rows.append({"name": name, "variant": "remote", "ready": ready,
                         "verified": remote.verify(spec) if ready else False,
                         "bytes": remote.remote_path(spec).stat().st_size if ready else 0})
    return rows

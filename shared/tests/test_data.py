"""Data layer: registry, deterministic cached generation, atomic locked writes."""

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astrobench import data
from astrobench.data import DataError

TESTS_DIR = Path(__file__).resolve().parent


def test_registry_lists_galaxies_with_a_card():
    assert "galaxies" in data.list()
    info = data.info("galaxies")
    assert info["kind"] == "simulated"
    assert info["sizes"]["full"]["train"] >= 20000 and info["sizes"]["full"]["test"] >= 2000
    assert sum(info["sizes"]["fast"].values()) <= 1000
    assert "Provenance" in info["card"] and "Licence" in info["card"]


def test_unknown_name_and_split_are_clear_errors(tiny):
    with pytest.raises(DataError, match=r"unknown dataset 'nope'; expected one of: .*galaxies"):
        data.load("nope")
    with pytest.raises(DataError, match=r"unknown split 'valid'.*train, test"):
        data.load(tiny, "valid")


def test_load_generates_once_then_reads_cache(tiny, cache):
    t0 = time.perf_counter()
    train = data.load(tiny, "train", fast=True, progress=False)
    first = time.perf_counter() - t0
    assert train.images.shape == (40, 3, 64, 64) and train.spectra.shape == (40, 512)
    assert len(train.truth) == 40 and "z" in train.truth.colnames
    assert train.meta["seed"] == 0 and len(train.meta["sha256"]) == 64 and train.meta["version"]
    mtime = (Path(train.meta["path"]) / "manifest.json").stat().st_mtime_ns
    t0 = time.perf_counter()
    again = data.load(tiny, "train", fast=True, progress=False)
    assert time.perf_counter() - t0 < min(1.0, first)
    assert (Path(again.meta["path"]) / "manifest.json").stat().st_mtime_ns == mtime
    assert np.array_equal(again.images, train.images)
    test = data.load(tiny, "test", fast=True, progress=False)
    assert len(test) == 10 and not np.array_equal(test.truth["z"][:10], train.truth["z"][:10])


def _hashes(directory: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_generation_is_bit_identical(tiny, cache, monkeypatch, tmp_path):
    a = Path(data.load(tiny, "train", fast=True, progress=False).meta["path"])
    monkeypatch.setenv("ASTROBENCH_DATA", str(tmp_path / "other"))
    b = Path(data.load(tiny, "train", fast=True, progress=False).meta["path"])
    assert a != b
    assert _hashes(a) == _hashes(b)
    c = Path(data.load(tiny, "train", fast=True, seed=1, progress=False).meta["path"])
    assert _hashes(c)["train.images.npy"] != _hashes(a)["train.images.npy"]


def test_failed_generation_leaves_nothing(tiny, cache, monkeypatch):
    spec = data.registry.get(tiny)
    original = spec.generate

    def broken(sizes, seed, progress):
        out = original(sizes, seed, progress)
        out["train"]["bad"] = object()  # np.save refuses objects without pickle, mid-write
        return out

    monkeypatch.setattr(spec, "generate", broken)
    with pytest.raises(ValueError, match="allow_pickle"):
        data.load(tiny, "train", fast=True, progress=False)
    assert not list(cache.rglob("*.npy")), "half-written arrays left in the cache"
    assert not [p for p in cache.rglob("*") if p.is_dir() and p.name != tiny], "temp or partial directory left"


WORKER = """
import hashlib, json, sys
sys.path.insert(0, {tests!r})
import _tiny
from astrobench import data
data.register(_tiny.spec())
ds = data.load(_tiny.NAME, "train", fast=True, progress=False)
print(json.dumps({{"path": ds.meta["path"], "images": hashlib.sha256(ds.images.tobytes()).hexdigest()}}))
"""


def test_two_processes_make_one_file(tiny, cache):
    code = WORKER.format(tests=str(TESTS_DIR))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert results[0] == results[1]
    variants = [p for p in (cache / tiny).iterdir() if p.is_dir()]
    assert [p.name for p in variants] == [Path(results[0]["path"]).name]  # one directory, no temp leftovers


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_release_pages_gives_back_what_a_memory_map_read(tmp_path):
    def file_rss_mb():  # pages of mapped files resident in this process
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(x for x in status if x.startswith("RssFile:")).split()[1]) / 1024

    np.save(tmp_path / "big.npy", np.ones((64, 1024, 1024), np.float32))  # 256 MB
    mm = np.load(tmp_path / "big.npy", mmap_mode="r")
    before = file_rss_mb()
    assert float(mm[::2].sum()) == 32 * 1024 * 1024  # reads (and maps) every page of half the rows and more
    read = file_rss_mb()
    data.release_pages(mm[:1], np.zeros(3))  # any view of the map releases it all; an in-memory array: a no-op
    assert read - before > 100 and file_rss_mb() - before < 10
    assert float(mm[0, 0, 0]) == 1.0  # still readable


def test_nested_watchers_each_see_the_loads_of_their_block(tiny):
    with data.watching() as outer:
        with data.watching() as inner:  # both empty, hence equal: each must leave by identity
            pass
        data.load(tiny, "test", progress=False)
    assert inner == [] and [m["name"] for m in outer] == [tiny] and not data._WATCHERS

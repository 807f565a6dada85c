"""Adapters of the real datasets, on small synthetic files in the real formats (same HDF5 keys and
per-row shapes as Galaxy10, same .npy layout as CAMELS CMD), served from 127.0.0.1."""

import dataclasses
import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest
from astrobench import data
from astrobench.data import real

h5py = pytest.importorskip("h5py")


@pytest.fixture
def serve(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def local_copy(name, root, base, filename):
    """The real registry entry, pointed at our file (its sha256 computed here)."""
    sha = hashlib.sha256((root / filename).read_bytes()).hexdigest()
    spec = dataclasses.replace(data.registry.get(name), name=f"{name}-local", urls=(f"{base}/{filename}",), sha256=sha)
    data.register(spec)
    return spec.name


def write_galaxy10(path, n, size):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 200, (n, size, size, 3), dtype=np.uint8)
    images[..., 0] = 250  # R channel: z (DECaLS) or i (SDSS) -> must end up last
    images[..., 2] = 10  # B channel: g -> must end up first
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["ans"] = rng.integers(0, 10, n).astype(np.uint8)
        for key in ("ra", "dec", "redshift", "pxscale"):
            f[key] = rng.uniform(0, 1, n)
    return images


@pytest.mark.parametrize(("name", "filename", "size"), [("galaxy10-decals", "Galaxy10_DECals.h5", 256),
                                                         ("galaxy10-sdss", "Galaxy10.h5", 69)])
def test_galaxy10_adapter(serve, cache, name, filename, size):
    root, base = serve
    write_galaxy10(root / filename, 30, size)
    local = local_copy(name, root, base, filename)
    try:
        train = data.load(local, "train", fast=False, progress=False)
        test = data.load(local, "test", fast=False, progress=False)
    finally:
        data.unregister(local)
    assert train.images.shape == (27, 3, 64, 64) and test.images.shape == (3, 3, 64, 64)
    assert train.images.dtype == np.float32 and isinstance(train.images, np.memmap)
    np.testing.assert_allclose(train.images[:, 0], 10 / 255, rtol=1e-6)  # g first
    np.testing.assert_allclose(train.images[:, 2], 250 / 255, rtol=1e-6)  # z / i last
    assert set(train.truth["source_index"]) | set(test.truth["source_index"]) == set(range(30))
    assert not set(train.truth["source_index"]) & set(test.truth["source_index"])
    assert {"label", "ra", "dec", "redshift", "pxscale"} <= set(train.truth.colnames)
    assert test.meta["sha256"] and test.meta["kind"] == "remote"


def test_galaxy10_decals_binning_preserves_the_mean(serve, cache):
    root, base = serve
    images = write_galaxy10(root / "Galaxy10_DECals.h5", 12, 256)
    local = local_copy("galaxy10-decals", root, base, "Galaxy10_DECals.h5")
    try:
        ds = data.load(local, "train", fast=False, progress=False)
    finally:
        data.unregister(local)
    row = int(ds.truth["source_index"][0])
    np.testing.assert_allclose(ds.images[0, 1].mean(), images[row, ..., 1].mean() / 255, rtol=1e-5)


def test_camels_adapter_tiles_normalises_and_splits_by_simulation(serve, cache):
    root, base = serve
    rng = np.random.default_rng(1)
    maps = rng.lognormal(0, 1, (30, 256, 256)).astype(np.float32) * 1e10  # two simulations x 15 maps
    np.save(root / "Maps_Mtot_IllustrisTNG_CV_z=0.00.npy", maps)
    local = local_copy("camels-cmd-mtot", root, base, "Maps_Mtot_IllustrisTNG_CV_z=0.00.npy")
    try:
        train = data.load(local, "train", fast=False, progress=False)
        test = data.load(local, "test", fast=False, progress=False)
    finally:
        data.unregister(local)
    assert train.hr.shape == (60, 1, 128, 128) and train.lr.shape == (60, 1, 32, 32)
    assert test.hr.shape == (60, 1, 128, 128)
    assert set(train.truth["simulation"]).isdisjoint(test.truth["simulation"])
    m = int(train.truth["map_index"][0])
    np.testing.assert_allclose(train.hr[0, 0], maps[m, :128, :128] / maps[m].astype(np.float64).mean(), rtol=1e-5)
    np.testing.assert_allclose(train.lr[:, 0].mean((1, 2)), train.hr[:, 0].mean((1, 2)), rtol=1e-5)  # flux kept


def test_fast_mode_takes_the_first_rows(serve, cache, monkeypatch):
    root, base = serve
    write_galaxy10(root / "Galaxy10.h5", 30, 69)
    monkeypatch.setattr(real, "FAST_SIZES", {"train": 5, "test": 2})
    local = local_copy("galaxy10-sdss", root, base, "Galaxy10.h5")
    try:
        full = data.load(local, "train", fast=False, progress=False)
        fast = data.load(local, "train", fast=True, progress=False)
    finally:
        data.unregister(local)
    assert len(fast) == 5 and np.array_equal(fast.images, full.images[:5])


def test_registry_entries_are_complete():
    for spec in real.DATASETS:
        assert spec.urls and spec.size_bytes > 0 and spec.licence and spec.citation and spec.hash_source
        assert spec.offline_alternative in data.list()
        if spec.sha256:
            assert len(spec.sha256) == 64 and "published" in spec.hash_source
        else:
            assert "trust on first use" in spec.hash_source
        assert "Provenance" in data.info(spec.name)["card"]

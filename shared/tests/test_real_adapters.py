"""Adapters of the real datasets, on small synthetic files in the real formats (same HDF5 keys and
per-row shapes as Galaxy10, same .npy layout as CAMELS CMD), served from 127.0.0.1."""

import numpy as np
import pytest
from astrobench import data
from astrobench.data import real
from astrobench.testing import local_real_dataset

h5py = pytest.importorskip("h5py")


@pytest.mark.parametrize("name", ["galaxy10-decals", "galaxy10-sdss"])
def test_galaxy10_adapter(tmp_path, cache, name):
    with local_real_dataset(name, tmp_path / "www", as_name=f"{name}-local", n=30) as local:
        train = data.load(local, "train", fast=False, progress=False)
        test = data.load(local, "test", fast=False, progress=False)
    assert train.images.shape == (27, 3, 64, 64) and test.images.shape == (3, 3, 64, 64)
    assert train.images.dtype == np.float32 and isinstance(train.images, np.memmap)
    np.testing.assert_allclose(train.images[:, 0], 10 / 255, rtol=1e-6)  # g first
    np.testing.assert_allclose(train.images[:, 2], 250 / 255, rtol=1e-6)  # z / i last
    assert set(train.truth["source_index"]) | set(test.truth["source_index"]) == set(range(30))
    assert not set(train.truth["source_index"]) & set(test.truth["source_index"])
    assert {"label", "ra", "dec", "redshift", "pxscale"} <= set(train.truth.colnames)
    assert test.meta["sha256"] and test.meta["kind"] == "remote"
    # the keys the tracks read from a simulated set's config, and super-resolution pairs (LR = 4x4 block mean)
    cfg = train.meta["config"]
    assert cfg["factor"] == 4 and cfg["extensive"] is False and cfg["channels"] == cfg["bands"]
    assert len(cfg["sky_sigma"]) == 3 and min(cfg["sky_sigma"]) > 0
    assert train.lr.shape == (27, 3, 16, 16) and test.lr.shape == (3, 3, 16, 16)
    np.testing.assert_allclose(train.lr, train.images.reshape(27, 3, 16, 4, 16, 4).mean((3, 5)), rtol=1e-5)


def test_border_noise_measures_the_background_sigma():
    rng = np.random.default_rng(3)
    images = 0.1 + rng.normal(0, [0.02, 0.05, 0.1], (200, 64, 64, 3)).transpose(0, 3, 1, 2)
    images[:, :, 20:44, 20:44] += 5.0  # a bright galaxy in the middle must not matter
    np.testing.assert_allclose(real.border_noise(images), [0.02, 0.05, 0.1], rtol=0.03)
    assert real.border_noise(np.full((5, 3, 64, 64), 0.2)) == [0.25 / 255] * 3  # flat sky: the floor, not 0


def test_galaxy10_decals_binning_preserves_the_mean(tmp_path, cache):
    with local_real_dataset("galaxy10-decals", tmp_path / "www", n=12) as local:
        ds = data.load(local, "train", fast=False, progress=False)
    with h5py.File(tmp_path / "www" / "Galaxy10_DECals.h5") as f:
        images = f["images"][:]
    row = int(ds.truth["source_index"][0])
    np.testing.assert_allclose(ds.images[0, 1].mean(), images[row, ..., 1].mean() / 255, rtol=1e-5)


def test_camels_adapter_tiles_normalises_and_splits_by_simulation(tmp_path, cache):
    with local_real_dataset("camels-cmd-mtot", tmp_path / "www", n=30) as local:  # two simulations x 15 maps
        train = data.load(local, "train", fast=False, progress=False)
        test = data.load(local, "test", fast=False, progress=False)
    maps = np.load(tmp_path / "www" / "Maps_Mtot_IllustrisTNG_CV_z=0.00.npy")
    assert train.hr.shape == (60, 1, 128, 128) and train.lr.shape == (60, 1, 32, 32)
    assert test.hr.shape == (60, 1, 128, 128)
    assert set(train.truth["simulation"]).isdisjoint(test.truth["simulation"])
    m = int(train.truth["map_index"][0])
    np.testing.assert_allclose(train.hr[0, 0], maps[m, :128, :128] / maps[m].astype(np.float64).mean(), rtol=1e-5)
    np.testing.assert_allclose(train.lr[:, 0].mean((1, 2)), train.hr[:, 0].mean((1, 2)), rtol=1e-5)  # flux kept
    cfg = train.meta["config"]  # the superres-fields keys
    assert (cfg["factor"], cfg["extensive"], cfg["channels"]) == (4, False, ["rho"])


def test_fast_mode_takes_the_first_rows(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(real, "FAST_SIZES", {"train": 5, "test": 2})
    with local_real_dataset("galaxy10-sdss", tmp_path / "www", n=30) as local:
        full = data.load(local, "train", fast=False, progress=False)
        fast = data.load(local, "train", fast=True, progress=False)
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


@pytest.mark.parametrize("name", ["camels-cmd-mtot", "galaxy10-decals"])
def test_superres_scorer_takes_real_pairs(tmp_path, cache, name):
    from astrobench.metrics import superres

    with local_real_dataset(name, tmp_path / "www", n=30) as local:
        test = data.load(local, "test", fast=False, progress=False)
        hr = np.asarray(test.hr if "hr" in test.arrays else test.images)
        perfect = superres.score({"sr": hr}, task=local)
        blurred = superres.score({"sr": superres.bicubic(np.asarray(test.lr), 4, False)}, task=local)
    assert perfect["psnr"] == np.inf and perfect["psnr_bicubic"] < np.inf
    assert blurred["psnr"] == pytest.approx(perfect["psnr_bicubic"])  # the reference is bicubic of LR
    assert perfect["fast"] is False and perfect["n"] == len(hr)
    assert ("pdf_w1" in perfect) == (name == "camels-cmd-mtot")  # density fields also get the one-point PDF


def test_anomaly_scorer_takes_galaxy10_decals_with_zoo_classes_as_anomalies(tmp_path, cache):
    from astrobench.metrics import ScoreInputError, anomaly, score

    with local_real_dataset("galaxy10-decals", tmp_path / "www", n=60):
        test = data.load("galaxy10-decals", "test", fast=False, progress=False)
        labels, types = anomaly.truth("galaxy10-decals")
        assert np.array_equal(labels, np.isin(test.truth["label"], [0, 1]))
        assert set(types[labels == 1]) <= {"disturbed", "merging"} and set(types[labels == 0]) == {"none"}
        perfect = score("anomaly:galaxy10-decals", {"score": labels + 0.1 * np.arange(len(labels)) / len(labels)})
        same = score("anomaly", {"score": labels.astype(float), "dataset": np.array("galaxy10-decals")})
        with pytest.raises(ScoreInputError, match="expected one of"):
            score("anomaly", {"score": labels.astype(float), "dataset": np.array("galaxies")})
    assert perfect["auroc"] == 1.0 and perfect["n_test"] == len(test) and same["auroc"] == 1.0


def test_one_pass_conversion_of_a_chunked_compressed_file(tmp_path, monkeypatch):
    """Blocks aligned with the HDF5 chunks, rows routed to their split in order: same arrays as converting each
    split's rows directly."""
    monkeypatch.setattr(real, "CHUNK", 10)  # several blocks, and a partial one at the end
    rng = np.random.default_rng(5)
    images = rng.integers(0, 255, (53, 256, 256, 3), dtype=np.uint8)
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f.create_dataset("images", data=images, chunks=(4, 64, 64, 3), compression="gzip")
    splits = {"train": np.array([0, 1, 5, 6, 7, 20, 33, 52]), "test": np.array([2, 3, 4, 40])}
    with h5py.File(tmp_path / "g.h5", "r") as f:
        real._write_images(tmp_path, f["images"], splits, real._galaxy10_bin4)
    for split, index in splits.items():
        hr, lr = (np.load(tmp_path / f"{split}.{key}.npy") for key in ("images", "lr"))
        np.testing.assert_array_equal(hr, real._galaxy10_bin4(images[index]))
        np.testing.assert_allclose(lr, hr.reshape(len(index), 3, 16, 4, 16, 4).mean((3, 5)), rtol=1e-6)

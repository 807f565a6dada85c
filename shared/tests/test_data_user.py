"""Your own data: `data.register_arrays` / `register_files` store arrays once (atomic, hashed) and `data.load`
returns them in any process; bad input gets one DataError line and leaves nothing behind."""

import subprocess
import sys

import numpy as np
import pytest
from astrobench import data


def splits(n_train=12, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    return {s: {"images": rng.normal(size=(n, 3, 8, 8)).astype(np.float32), "wavelength": np.linspace(4e3, 9e3, 7),
                "truth": {"z": rng.uniform(0, 1, n), "kind": np.array(["a", "bb"] * n)[:n]}}
            for s, n in (("train", n_train), ("test", n_test))}


def test_round_trip_in_this_and_another_process(cache):
    arrays = splits()
    path = data.register_arrays("mine", arrays, config={"sky_sigma": [1.0, 2.0, 3.0]}, description="test data")
    assert (path / "manifest.json").is_file() and "mine" in data.list()
    for fast in (True, False):  # FAST and full see the same arrays
        ds = data.load("mine", "test", fast=fast)
        assert np.array_equal(ds.images, arrays["test"]["images"]) and list(ds.truth["kind"]) == ["a", "bb"] * 2 + ["a"]
        assert np.array_equal(ds.wavelength, arrays["test"]["wavelength"])  # a constant, not one row per object
        assert ds.meta["config"] == {"sky_sigma": [1.0, 2.0, 3.0]} and ds.meta["sha256"]
    code = "from astrobench import data; print(data.load('mine', 'train').images.shape)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(12, 3, 8, 8)"
    version = data.info("mine")["version"]
    data.register_arrays("mine", splits(seed=1))  # new content: a new version, so no stale cache
    assert data.info("mine")["version"] != version
    data.unregister("mine")
    assert "mine" not in data.list() and not path.exists()


def test_register_files_reads_npz_with_truth_columns(cache, tmp_path):
    files = {}
    for split, content in splits().items():
        files[split] = tmp_path / f"{split}.npz"
        np.savez(files[split], images=content["images"], truth_z=content["truth"]["z"])
    data.register_files("from-files", files)
    ds = data.load("from-files", "train")
    assert ds.images.shape == (12, 3, 8, 8) and ds.truth.colnames == ["z"]


@pytest.mark.parametrize("name, content, message", [
    ("galaxies", None, "built-in dataset"),
    ("Bad Name", None, "expected lower-case letters"),
    ("x", {}, "expected splits as a dict"),
    ("x", {"train": {"truth": {"z": np.ones(3)}}}, "at least one array besides 'truth'"),
    ("x", {"train": {"images": np.ones((3, 2)), "truth": {"z": np.ones(4)}}}, "same first length"),
    ("x", {"train": {"images": np.ones((3, 2))}, "test": {"spectra": np.ones((3, 2))}}, "the same arrays in every"),
    ("x", {"train": {"images": np.ones((3, 2)), "truth": {"z": np.ones((3, 2))}}}, "expected 1-D"),
    ("x", {"train": {"images": np.array([None, 1, 2])}}, "dtype object"),
])
def test_bad_input_is_one_line_and_writes_nothing(cache, name, content, message):
    with pytest.raises(data.DataError, match=message) as err:
        data.register_arrays(name, splits() if content is None else content)
    assert "\n" not in str(err.value)
    root = data.cache_dir() / "user"
    assert not root.exists() or not any(root.iterdir())  # no half-written folder


def test_missing_or_broken_files(cache, tmp_path):
    with pytest.raises(data.DataError, match="not found"):
        data.register_files("x", {"train": tmp_path / "nope.npz"})
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(data.DataError, match=r"not a readable \.npz"):
        data.register_files("x", {"train": tmp_path / "bad.npz"})

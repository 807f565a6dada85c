"""The generative metric: statmorph agreement, floor, degraded samples, order invariance, CLI errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astrobench import cli, data
from astrobench.metrics import generative as G


@pytest.fixture(scope="module")
def fast_sets():
    test = data.load("galaxies", "test", fast=True)
    train = data.load("galaxies", "train", fast=True)
    sky = np.asarray(test.meta["config"]["sky_sigma"])
    return np.asarray(train.images[:200], dtype=np.float32), np.asarray(test.images), sky


def _with_clump(images, sky, rng):
    """Galaxies made asymmetric by an off-centre Gaussian clump (30-60 % of the r-band flux), plus sky noise,
    so that A is far from zero and a relative comparison is meaningful."""
    out = images.astype(np.float64).copy()
    yy, xx = np.mgrid[:64, :64]
    for img in out:
        r_flux = img[1].sum()
        ang, dist = rng.uniform(0, 2 * np.pi), rng.uniform(3, 6)
        blob = np.exp(-((xx - 31.5 - dist * np.cos(ang)) ** 2 + (yy - 31.5 - dist * np.sin(ang)) ** 2) / (2 * 1.5**2))
        img += rng.uniform(0.3, 0.6) * r_flux * blob[None] / blob.sum()
    return out


@pytest.mark.slow
def test_matches_statmorph_on_20_images():
    """An implementation check on single sources (statmorph measures one deblended source; the clump below is a
    share of the whole stamp's flux), so on the isolated-galaxy variant."""
    statmorph = pytest.importorskip("statmorph")
    iso = data.load("galaxies-isolated", "test", fast=True)
    test, sky = np.asarray(iso.images), np.asarray(iso.meta["config"]["sky_sigma"])
    order = np.argsort(-test[:, 1].sum((1, 2)))[:24]  # the brightest: well-measured morphology
    imgs = _with_clump(test[order], sky, np.random.default_rng(0))
    seg = G._segmap(imgs[:, 1], sky[1])
    ref = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for img, s in zip(imgs, seg):
            m = statmorph.source_morphology(img[1], s.astype(int), weightmap=np.full((64, 64), sky[1]),
                                            n_sigma_outlier=-1)[0]
            ref.append((m.concentration, m.asymmetry, m._sky_asymmetry, m.flag))
    ref = np.array(ref)
    good = ref[:, 3] <= 1  # statmorph flags 2 = unreliable (e.g. a mag-12 galaxy larger than the stamp)
    assert good.sum() >= 20
    imgs, seg, ref = imgs[good], seg[good], ref[good]
    mine = G.statistics(imgs, sky, segmap=seg, sky_asym=ref[:, 2])
    np.testing.assert_allclose(mine["concentration"], ref[:, 0], rtol=0.05)
    assert np.all(ref[:, 1] > 0.1)  # the clumps make A a meaningful quantity
    np.testing.assert_allclose(mine["asymmetry"], ref[:, 1], rtol=0.05)


def test_statistics_are_sane(fast_sets):
    _, test, sky = fast_sets
    st = G.statistics(test[:64], sky)
    assert set(st) == set(G.STATS)
    assert all(np.all(np.isfinite(v)) for v in st.values())
    assert np.all((st["mag_r"] > 10) & (st["mag_r"] < 23))  # the sample is r < 21; aperture flux is close
    assert np.all((st["concentration"] > 1.5) & (st["concentration"] < 5))
    assert np.all((st["ellipticity"] >= 0) & (st["ellipticity"] < 1))


@pytest.fixture(scope="module")
def real_score(fast_sets):
    return G.score({"images": fast_sets[0], "fast": np.bool_(True)})


def test_real_vs_test_scores_about_the_floor(real_score):
    m = real_score
    assert m["n_samples"] == 200 and m["reference"] == "galaxies test (FAST)"
    # 200 real images vs 200 test: the expected ratio is ~0.7 (the floor compares 100 vs 100)
    assert 0.3 < m["W_ratio"] < 1.3, m["W_ratio"]


def test_degraded_samples_score_clearly_worse(fast_sets, real_score):
    from scipy import ndimage

    train, _, sky = fast_sets
    blurred = ndimage.gaussian_filter(train, sigma=(0, 0, 2, 2)).astype(np.float32)
    noise = (np.random.default_rng(1).normal(size=train.shape) * sky[None, :, None, None]).astype(np.float32)
    real = real_score["W_ratio"]
    for fake in (blurred, noise):
        assert G.score({"images": fake, "fast": np.bool_(True)})["W_ratio"] > 3 * max(real, 1.0)


def test_score_is_invariant_to_order(fast_sets, real_score):
    train, _, _ = fast_sets
    perm = np.random.default_rng(2).permutation(len(train))
    a = real_score
    b = G.score({"images": train[perm], "fast": np.bool_(True)})
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-15) if isinstance(a[k], float) else a[k] == b[k]


def _no_reference(*args, **kwargs):
    raise AssertionError("the reference statistics were built before the input was checked")


@pytest.mark.parametrize("arrays, message", [
    ({"images": np.zeros((10, 3, 64, 64), np.float32)}, "expected at least 1000"),
    ({"images": np.zeros((1000, 3, 32, 32), np.float32)}, "expected Nx3x64x64"),
    ({"images": np.zeros((1000, 64, 64), np.float32)}, "expected Nx3x64x64"),
    ({"images": np.full((1000, 3, 64, 64), np.nan, np.float32)}, "NaN"),
    ({"images": np.zeros((1000, 3, 64, 64), np.int32)}, "expected a float"),
    ({"samples": np.zeros((1000, 3, 64, 64), np.float32)}, "missing key 'images'"),
    ({"images": np.zeros((1000, 3, 64, 64), np.float32), "fast": np.array([True, False])}, "expected a scalar"),
])
def test_cli_rejects_bad_samples_before_building_the_reference(tmp_path, capsys, monkeypatch, arrays, message):
    """Wrong keys, shapes, dtypes, NaNs or too few rows: one line and exit 2 at once, without the reference
    statistics (a minute for the full test split) or any dataset being loaded."""
    monkeypatch.setenv("ASTROBENCH_FAST", "0")  # the full rule: >= 1000 samples
    monkeypatch.setattr(G, "reference", _no_reference)
    monkeypatch.setattr(G, "statistics", _no_reference)
    monkeypatch.setattr(data, "load", _no_reference)
    path = tmp_path / "samples.npz"
    np.savez(path, **arrays)
    assert cli.main(["score", "generative", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_fast_split_needs_its_size(tmp_path, capsys, monkeypatch, fast_sets):
    train, _, _ = fast_sets
    monkeypatch.setattr(G, "reference", _no_reference)  # the size of the FAST split is known without it
    path = tmp_path / "few.npz"
    np.savez(path, images=train[:150], fast=np.bool_(True))
    assert cli.main(["score", "generative", str(path)]) == 2
    assert "expected at least 200" in capsys.readouterr().err

"""The galaxies-anomaly generator: each anomaly type does what the card says, labels stay in test."""

import numpy as np
import pytest
from astrobench.sim import anomalies as A
from astrobench.sim import galaxies as G


@pytest.fixture(scope="module")
def population():
    pop = G.draw_population(12, seed=5)
    images, _ = G.simulate(pop, seed=5, block=0, progress=False)
    return pop, images


def _row(pop, i):
    return {k: v[i] for k, v in pop.items()}


@pytest.mark.parametrize("kind", A.TYPES)
def test_every_type_changes_the_image_visibly(population, kind):
    pop, images = population
    comp = _row(pop, 11) if kind == "merger" else None
    new, snr = A.inject(kind, images[0], _row(pop, 0), np.random.default_rng(1), companion=comp)
    assert new.shape == images[0].shape and new.dtype == np.float32
    assert np.all(np.isfinite(new))
    assert snr > 3, f"{kind}: injected signal with S/N {snr:.1f} is invisible"
    changed = np.abs(new - images[0]).max(axis=(1, 2)) > 0
    one_band = {"cosmic_ray", "bad_pixels", "tracking_error"}
    assert changed.sum() == (1 if kind in one_band else 3), f"{kind} changed bands {changed}"


def test_injection_is_deterministic(population):
    pop, images = population
    a = A.inject("lensed_arc", images[1], _row(pop, 1), np.random.default_rng(7))
    b = A.inject("lensed_arc", images[1], _row(pop, 1), np.random.default_rng(7))
    np.testing.assert_array_equal(a[0], b[0])


def test_bleed_clips_at_full_well_and_conserves_charge():
    col = np.full((64, 5), 100.0)
    col[30:33, 2] = [3e5, 5e5, 3e5]
    out = A.bleed(col, 1e5)
    assert out.max() <= 1e5
    np.testing.assert_allclose(out.sum(), col.sum())  # the charge stays in the column (far from the edges)
    assert (out[:, 2] >= 1e5 - 1e-6).sum() > 3 * 3  # the trail extends beyond the saturated pixels
    np.testing.assert_array_equal(out[:, [0, 1, 3, 4]], col[:, [0, 1, 3, 4]])


def test_sis_without_lens_conserves_flux_and_lensing_magnifies(population):
    pop, _ = population
    row = _row(pop, 2)
    flux = np.array([1000.0, 2000.0, 3000.0])
    plain = A.sis_lensed_source(row, 0.0, (0.0, 0.0), 2.0, 1.0, 0.0, flux)
    np.testing.assert_allclose(plain.sum(axis=(1, 2)), flux, rtol=0.02)
    lensed = A.sis_lensed_source(row, 6.0, (1.0, 0.0), 1.0, 1.0, 0.0, flux)
    mu = lensed.sum(axis=(1, 2)) / flux  # SIS point source: mu = 2 theta_E / beta = 12
    assert np.all((mu > 6) & (mu < 14))
    ring = A.sis_lensed_source(row, 8.0, (0.0, 0.0), 0.5, 1.0, 0.0, flux)[1]
    y, x = np.mgrid[0:64, 0:64]
    r = np.hypot(x - 31.5 - row["dx"], y - 31.5 - row["dy"])
    assert abs(np.sum(r * ring) / ring.sum() - 8.0) < 1.0  # an Einstein ring at theta_E
    assert ring[r < 2].mean() < 0.5 * ring.max()  # a hole in the middle (PSF wings fill it partly)


def test_plan_fractions_shares_and_lens_hosts():
    rng = np.random.default_rng(0)
    is_red = rng.uniform(size=1000) < 0.3
    codes = A.plan(1000, 0.04, is_red, rng)
    assert (codes > 0).sum() == 40
    counts = np.bincount(codes, minlength=len(A.TYPES) + 1)[1:]
    assert counts.max() - counts.min() <= 1
    assert np.all(is_red[codes == A.TYPES.index("lensed_arc") + 1])


def test_generate_labels_only_in_test_and_deterministic():
    sizes = {"train": 100, "test": 50}
    a = A.generate(sizes, seed=3, progress=False)
    b = A.generate(sizes, seed=3, progress=False)
    np.testing.assert_array_equal(a["test"]["images"], b["test"]["images"])
    for col in A.ANOMALY_COLUMNS:
        assert col in a["test"]["truth"] and col not in a["train"]["truth"]
    t = a["test"]["truth"]
    assert t["is_anomaly"].sum() == 2 and set(t["anomaly_type"][t["is_anomaly"] == 1]) <= set(A.TYPES)
    assert np.all(t["anomaly_snr"][t["is_anomaly"] == 1] > 0) and np.all(t["anomaly_snr"][t["is_anomaly"] == 0] == 0)
    assert np.all(np.isfinite(a["train"]["images"]))


def test_registered_with_card_and_sky_sigma():
    from astrobench import data

    info = data.info(A.NAME)
    assert info["sizes"]["full"]["test"] == 10000 and "satellite_trail" in info["card"]
    assert len(A.config()["sky_sigma"]) == 3 and len(A.TYPES) >= 7

"""Physics checks of the `galaxies` simulator on a small population."""

import astropy.units as u
import numpy as np
import pytest
from astrobench.sim import galaxies as G


@pytest.fixture(scope="module")
def pop():
    truth = G.draw_population(60, seed=5)
    images, spectra = G.simulate(truth, seed=5, block=0, progress=False)
    return truth, images, spectra


def test_truth_columns_and_ranges(pop):
    truth, _, _ = pop
    assert set(G.TRUTH_COLUMNS) <= set(truth)
    assert np.all(truth["mag_r"] < G.MAG_LIMIT_R)
    assert np.all((truth["z"] > 0) & (truth["z"] < 1.5))
    assert np.all((truth["bulge_frac"] >= 0) & (truth["bulge_frac"] <= 1))
    assert np.all(np.hypot(truth["e1"], truth["e2"]) <= 0.8 + 1e-12)
    np.testing.assert_allclose(truth["g_r"], truth["mag_g"] - truth["mag_r"])
    coeff = np.stack([truth[f"coeff_{i}"] for i in range(5)], 1)
    np.testing.assert_allclose(coeff.sum(1), 1.0, rtol=1e-6)  # Dirichlet coefficients
    assert 7 < np.median(truth["log_mstar"]) < 12


def test_red_galaxies_are_redder_and_more_bulgy():
    truth = G.draw_population(600, seed=1)
    red = truth["is_red"] == 1
    assert np.median(truth["g_r"][red]) > np.median(truth["g_r"][~red])
    assert np.median(truth["bulge_frac"][red]) > np.median(truth["bulge_frac"][~red])


def test_image_flux_matches_magnitudes(pop):
    truth, images, _ = pop
    # sum over the stamp of the noiseless image recovers the catalogue flux for compact objects
    clean = G.simulate({k: v for k, v in truth.items()}, seed=5, block=0, progress=False)[0]
    assert np.array_equal(clean, images)  # same seed, same noise
    small = truth["hlr_arcsec"] < 0.8
    flux_nmgy = 10 ** (-0.4 * (truth["mag_r"][small] - 22.5))
    measured = images[small, 1].sum((-1, -2))
    noise = G.sky_sigma()[1] * 64
    assert np.all(np.abs(measured - flux_nmgy) < 0.03 * flux_nmgy + 5 * noise)


def test_background_noise_matches_sky(pop):
    _, images, _ = pop
    corners = np.concatenate([images[:, :, :8, :8], images[:, :, -8:, -8:]], axis=2)
    measured = corners.std(axis=(0, 2, 3))
    np.testing.assert_allclose(measured, G.sky_sigma(), rtol=0.1)


def test_spectrum_reproduces_photometry(pop):
    import speclite.filters

    truth, _, spectra = pop
    wave = np.geomspace(3000, 11500, 5000)
    flux = G.observed_spectrum(truth, wave=wave, oversample=1) * 1e-17 * u.erg / u.s / u.cm**2 / u.AA
    mags = speclite.filters.load_filters(*G.FILTERS).get_ab_magnitudes(flux, wave * u.AA)
    for band in G.BANDS:
        np.testing.assert_allclose(np.asarray(mags[f"decam2014-{band}"]), truth[f"mag_{band}"], atol=0.01)
    assert spectra.shape == (60, len(G.SPEC_WAVE)) and spectra.dtype == np.float32


def test_emission_line_lands_at_redshifted_wavelength(pop):
    truth, _, _ = pop
    clean = G.observed_spectrum(truth)
    # H-alpha sits in the band for z < 0.49: the spectrum peaks locally near 6563 (1+z)
    i = int(np.argmin(np.abs(truth["z"] - 0.1)))
    obs = 6562.8 * (1 + truth["z"][i])
    near = np.abs(G.SPEC_WAVE - obs) < 15
    side = (np.abs(G.SPEC_WAVE - obs) > 60) & (np.abs(G.SPEC_WAVE - obs) < 150)
    assert clean[i, near].max() > clean[i, side].mean()


def test_spectra_leave_no_garbage_holding_their_temporaries():
    """Each call's ~20 MB of template samples must be freed on return, not kept alive by reference cycles until a
    garbage collection (a fresh astropy cosmology per call did that: full sets peaked at 2.6 GB while generating)."""
    import gc
    import tracemalloc

    truth = G.draw_population(256, seed=0)
    G.observed_spectrum(truth)  # warm-up: lazy imports and caches
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        for _ in range(3):
            G.observed_spectrum(truth)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    assert held < 5e6, f"{held / 1e6:.0f} MB still held after three calls"

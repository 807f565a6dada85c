"""The `lightcurves` dataset: class models against their library or published numbers, the network's sampling,
load()'s arrays, and period recovery (astrobench.metrics.periods)."""

import dataclasses

import numpy as np
import pytest
from astrobench import data
from astrobench.metrics import periods as pm
from astrobench.sim import lightcurves as lc
from astrobench.sim import variability as var


@pytest.fixture(scope="module")
def split():
    return lc.make_split(400, 0.05, seed=0, block=0)


# --------------------------------------------------------------------------- class models


def test_transit_matches_batman():
    batman = pytest.importorskip("batman")
    t = np.linspace(-0.15, 0.15, 801)
    for rp, inc, u in ((0.1, 88.0, (0.45, 0.2)), (0.15, 86.5, (0.6, 0.15))):
        p = batman.TransitParams()
        p.t0, p.per, p.rp, p.a, p.inc, p.ecc, p.w, p.u, p.limb_dark = 0, 3.0, rp, 8.7, inc, 0, 90, list(u), "quadratic"
        ref = batman.TransitModel(p, t).light_curve(p)
        ours = var.transit_flux(t, 0.0, 3.0, rp, 8.7, inc, *u)
        assert np.abs(ours - ref).max() < 3e-4 * (1 - ref.min())


def test_transit_analytic_limits():
    # uniform source: the occulted fraction is the exact two-circle overlap over pi (Mandel & Agol 2002, eq. 1)
    z = np.array([0.0, 0.5, 0.85, 1.05])
    k0 = np.arccos((0.1**2 + z[3] ** 2 - 1) / (2 * 0.1 * z[3]))
    k1 = np.arccos((1 - 0.1**2 + z[3] ** 2) / (2 * z[3]))
    edge = (0.01 * k0 + k1 - 0.5 * np.sqrt(4 * z[3] ** 2 - (1 + z[3] ** 2 - 0.01) ** 2)) / np.pi
    np.testing.assert_allclose(var.occulted_fraction(z, 0.1, 0, 0), [0.01, 0.01, 0.01, edge], rtol=1e-9)
    # small planet at disk centre: depth = p^2 I(1) / <I> = p^2 / (1 - u1/3 - u2/6)
    d = var.occulted_fraction(0.0, 0.01, 0.4, 0.25, n_annuli=400)
    assert d == pytest.approx(1e-4 / (1 - 0.4 / 3 - 0.25 / 6), rel=1e-3)


def test_eclipsing_binary_depths():
    # a total secondary eclipse hides all of star 2: the drop is its share of the light
    r1, r2, u1, u2, sb = 0.2, 0.1, 0.4, 0.25, 0.5
    f = var.eclipsing_binary_flux(np.array([0.0, 0.5, 0.25]), 0.0, 1.0, r1, r2, 90.0, sb, 0.0, u1, u2)
    l2_share = sb * (r2 / r1) ** 2 / (1 + sb * (r2 / r1) ** 2)
    assert f[1] == pytest.approx(1 - l2_share, rel=1e-9) and f[2] == 1.0
    # primary eclipse of star 1 by a dark star 2 is a planet transit with a/R = 1/r1, p = r2/r1
    t = np.linspace(-0.05, 0.05, 11)
    dark = var.eclipsing_binary_flux(t, 0.0, 1.0, r1, r2, 89.0, 0.0, 0.0, u1, u2)
    np.testing.assert_allclose(dark, var.transit_flux(t, 0.0, 1.0, r2 / r1, 1 / r1, 89.0, u1, u2), atol=1e-12)
    assert var.planck_ratio(5800, 5800, 600) == 1 and var.planck_ratio(6000, 4000, 477) < 0.2


def test_rr_lyrae_templates_follow_the_published_relations(split):
    assert var.bailey_oo1(0.55) == pytest.approx(-2.627 - 22.046 * np.log10(0.55) - 30.876 * np.log10(0.55) ** 2)
    assert 0.9 < var.bailey_oo1(0.55) < 1.1 and var.bailey_oo1(0.7) < 0.3  # the Oosterhoff I Bailey locus
    # fit a sine series to a noiseless RRab V curve: phi31 gives back [Fe/H] through Jurcsik & Kovacs (1996)
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 30, 400))[None, :]
    flux, truth = var.rr_lyrae_ab(t, np.ones_like(t, dtype=int), None, rng)
    period = truth["period"][0]
    mag = -2.5 * np.log10(flux[0])
    w = 2 * np.pi * (t[0] - truth["t0"][0]) / period
    design = np.column_stack([np.ones(t.size)] + [f(k * w) for k in range(1, 5) for f in (np.sin, np.cos)])
    c = np.linalg.lstsq(design, mag, rcond=None)[0]
    phi = np.arctan2(c[2::2], c[1::2])  # A sin(x + phi) = A cos(phi) sin x + A sin(phi) cos x
    phi31 = (phi[2] - 3 * phi[0]) % (2 * np.pi)
    assert phi31 == pytest.approx(truth["phi31"][0] % (2 * np.pi), abs=1e-6)
    assert var.feh_jk96(period, truth["phi31"][0]) == pytest.approx(truth["feh"][0], abs=1e-9)
    assert np.ptp(mag) == pytest.approx(truth["amplitude"][0], rel=0.02)


def test_period_luminosity_relations():
    assert var.cepheid_mv(10.0) == pytest.approx(-4.05) and var.cepheid_mv(100.0) == pytest.approx(-6.48)
    assert var.dsct_mv(0.1) == pytest.approx(2.89 - 1.31)
    assert var.DSCT_OVERTONE_RATIO == pytest.approx(0.773, abs=0.005)


def test_macleod_drw_and_exact_ou_process():
    sf, tau = var.macleod_drw(-23.0, 1e9, 0.0, 400.0)  # the reference point: A coefficients only
    assert sf == pytest.approx(10**-0.51) and tau == pytest.approx(10**2.4)
    sf_b, tau_z = var.macleod_drw(-23.0, 1e9, 1.0, 400.0)
    assert sf_b == pytest.approx(10 ** (-0.51 - 0.479 * np.log10(0.5))) and tau_z == pytest.approx(
        2 * 10 ** (2.4 + 0.17 * np.log10(0.5)))
    # the recursion's statistics against OU theory: variance sigma^2, SF(dt) = sqrt(2) sigma sqrt(1 - e^{-dt/tau})
    rng = np.random.default_rng(0)
    t = np.tile(np.sort(rng.uniform(0, 400, 60)), (4000, 1))
    x = var.ou_process(t, 50.0, 0.2, rng)
    assert x.var() == pytest.approx(0.04, rel=0.05)
    for i, j in ((0, 1), (0, 10), (5, 40)):
        dt = t[0, j] - t[0, i]
        sf_emp = np.sqrt(((x[:, j] - x[:, i]) ** 2).mean())
        assert sf_emp == pytest.approx(np.sqrt(2) * 0.2 * np.sqrt(1 - np.exp(-dt / 50.0)), rel=0.06)


def test_davenport_flare_template():
    f = var.davenport_flare(np.array([-1.5, -1.0, -0.5, 0.0, 1e-9, 1.0, 10.0]))
    assert f[0] == 0 and f[1] == pytest.approx(0.005, abs=1e-9)  # rise polynomial at -1 t_1/2: ~0
    assert f[2] == pytest.approx(1 - 0.9705 - 0.04375 + 0.28075 - 0.0703125)
    assert f[3] == 1.0 and f[4] == pytest.approx(0.6890 + 0.3030, rel=1e-6)
    assert f[5] == pytest.approx(0.6890 * np.exp(-1.6) + 0.3030 * np.exp(-0.2783))
    # the template's time unit is the FWHM t_1/2; the fitted polynomials give 0.91 of it
    x = np.linspace(-1, 3, 40001)
    above = x[var.davenport_flare(x) >= 0.5]
    assert 0.85 < above.max() - above.min() < 1.0


def test_supernova_model_and_time_dilation():
    t = np.linspace(-30, 200, 2301)
    f = var.villar_sn(t, 1.0, -0.005, 10.0, 0.0, 3.0, 30.0)
    i1 = np.searchsorted(t, 10.0)
    assert abs(f[i1] - f[i1 - 1]) < 1e-3  # continuous at t1 = t0 + gamma
    sig = 1 / (1 + np.exp(-np.array([40.0, 10.0]) / 3.0))  # the rise term still grows a little after t1
    assert f[np.searchsorted(t, 10.0 + 30.0)] / f[i1] == pytest.approx(np.exp(-1) * sig[0] / sig[1], rel=1e-3)
    # (1 + z) stretch: every time scale x s gives the same curve at t x s (slope / s)
    s = 1.3
    np.testing.assert_allclose(var.villar_sn(t * s, 1.0, -0.005 / s, 10 * s, 0.0, 3 * s, 30 * s), f, atol=1e-12)
    from astropy.cosmology import Planck18

    z = np.array([0.01, 0.05, 0.1, 0.25])
    np.testing.assert_allclose(var.distmod(z), Planck18.distmod(z).value, atol=2e-3)


def test_paczynski_magnification():
    assert var.paczynski(0.0, 0.0, 1.0, 10.0) == pytest.approx(3 / np.sqrt(5))
    assert var.paczynski(0.0, 0.0, 1e-3, 10.0) == pytest.approx(1e3, rel=1e-5)  # A ~ 1/u for u << 1
    assert var.paczynski(10.0, 0.0, 0.0, 10.0) == pytest.approx(3 / np.sqrt(5))  # u = (t - t0)/tE
    t = np.array([[40.0, 100.0]])
    flux, truth = var.microlensing(t, np.ones((1, 2), int), None, np.random.default_rng(1))
    fs, a = truth["blend_r"][0], var.paczynski(t[0], truth["t0"][0], truth["u0"][0], truth["t_e"][0])
    base = 10 ** (-0.4 * (truth["mag"][0] - 23.9))
    np.testing.assert_allclose(flux[0], base * (fs * a + 1 - fs))


# --------------------------------------------------------------------------- the network


def test_visits_are_at_night_below_the_airmass_limit():
    import astropy.units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_sun
    from astropy.time import Time

    sch = lc.schedule(3, 0)
    pick = np.random.default_rng(0).choice(sch["time"].size, 40, replace=False)
    t = Time(lc.T_START, scale="utc") + sch["time"][pick] * u.day
    for s, (_, lon, lat, height, *_) in enumerate(lc.SITES):
        on = sch["site"][pick] == s
        frame = AltAz(obstime=t[on], location=EarthLocation.from_geodetic(lon, lat, height))
        sun = get_sun(t[on]).transform_to(frame).alt.deg
        alt = SkyCoord(*lc.FIELDS[3], unit="deg").transform_to(frame).alt.deg
        assert (sun < lc.SUN_ALT_MAX + 0.1).all()
        assert (1 / np.sin(np.radians(alt)) < lc.AIRMASS_MAX * 1.002).all()
        np.testing.assert_allclose(1 / np.sin(np.radians(alt)), sch["airmass"][pick][on], rtol=2e-3)
    assert set(np.unique(sch["site"])) == {0, 1, 2} and (np.diff(sch["time"]) >= 0).all()


def test_three_sites_cover_more_of_the_day_than_one():
    one, three = lc.coverage(sites=(0,)), lc.coverage()
    assert three["duty_cycle"] > 2 * one["duty_cycle"]
    assert three["window_1cd"] < 0.25 * one["window_1cd"]  # the daily alias fades with the network
    assert one["window_1cd"] > 0.3


# --------------------------------------------------------------------------- the split and load()


def test_split_arrays_truth_and_determinism(split):
    n = 400
    assert split["time"].shape == split["flux"].shape == split["mask"].shape and split["time"].shape[0] == n
    assert split["flux"].dtype == split["flux_err"].dtype == np.float32 and split["mask"].dtype == bool
    assert split["band"].dtype == split["site"].dtype == np.int8 and split["time"].dtype == np.float64
    m = split["mask"]
    assert np.isfinite(split["flux"]).all() and (split["flux_err"][m] > 0).all() and (split["flux_err"][~m] == 0).all()
    assert all((np.diff(row[mk]) >= 0).all() for row, mk in zip(split["time"], m))
    truth = split["truth"]
    assert set(np.unique(truth["class"])) == set(lc.CLASSES)  # 5 % rare: every rare type present
    assert truth["is_rare"].mean() == pytest.approx(0.05, abs=0.005)
    periodic = np.isin(truth["class"], ["transit", "eclipsing_binary", "rr_lyrae_ab", "rr_lyrae_c", "cepheid",
                                        "delta_scuti", "lpv"])
    assert np.isfinite(truth["period"][periodic]).all() and np.isnan(truth["period"][~periodic]).all()
    assert np.isfinite(truth["mag"]).all()
    again = lc.make_split(n, 0.05, seed=0, block=0)
    assert np.array_equal(again["flux"], split["flux"]) and np.array_equal(again["truth"]["t0"], truth["t0"],
                                                                           equal_nan=True)


def test_load_gives_the_padded_arrays(cache):
    spec = data.registry.get("lightcurves")
    small = dataclasses.replace(spec, name="lightcurves-small",
                                sizes={"full": {"train": 60, "test": 30}, "fast": {"train": 60, "test": 30}})
    data.register(small)
    try:
        test = data.load("lightcurves-small", "test", fast=True, progress=False)
        assert {"time", "flux", "flux_err", "band", "site", "mask"} <= set(test.arrays)
        assert test.flux.shape == (30, test.time.shape[1]) and len(test.truth) == 30
        assert {"class", "is_rare", "period", "amplitude", "t0", "mag", "snr", "feh"} <= set(test.truth.colnames)
        assert test.truth["is_rare"].sum() == round(0.04 * 30) and test.meta["version"] == "1.0.0"
        assert test.meta["config"]["sites"][1]["name"] == "SAAO Sutherland"
    finally:
        data.unregister("lightcurves-small")
    info = data.info("lightcurves")
    assert info["sizes"]["full"]["train"] + info["sizes"]["full"]["test"] >= 50000
    assert sum(info["sizes"]["fast"].values()) <= 2000 and "Provenance" in info["card"]


# --------------------------------------------------------------------------- period finding


def test_alias_labels():
    true = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 2.0, 0.5])
    found = np.array([0.503, 0.25, 1.0, 1 / 3.0, 1.0 / 1.0, 2.0 / 3.0, np.nan])
    labels = pm.classify(true, found)
    # 1/1.0 = 1 c/d is both 2P and f - 1 c/d for P = 0.5: double wins (the harmonic is the likelier cause)
    assert labels.tolist() == ["recovered", "half", "double", "daily_alias", "double", "daily_alias", "none"]
    assert pm.recovered(10.0, [10.09, 10.11]).tolist() == [True, False]
    rep = pm.report(true, found)
    assert rep["n"] == 7 and sum(rep[k] for k in pm.LABELS) == pytest.approx(1)


def test_reference_methods_recover_clean_periods(split):
    truth = split["truth"]
    picks = [i for c in ("rr_lyrae_ab", "rr_lyrae_c", "cepheid") for i in np.flatnonzero(truth["class"] == c)[:2]]
    found = [pm.find_period(split["time"][i], split["flux"][i], split["flux_err"][i], split["band"][i],
                            split["mask"][i], min_period=0.1, oversample=3)[0] for i in picks]
    assert pm.recovered(truth["period"][picks], found).all()
    # a clean, deep transit: BLS (a sinusoid fit would return a harmonic)
    rng = np.random.default_rng(2)
    t = np.sort(rng.uniform(0, 120, 400))
    f = var.transit_flux(t, 1.3, 3.7, 0.12, 10.0, 89.5, 0.4, 0.25) + rng.normal(0, 1e-3, t.size)
    p, _ = pm.find_period(t, f, np.full(t.size, 1e-3), method="bls", min_period=0.5, max_period=10)
    assert pm.recovered(3.7, p)


def test_multiband_lomb_scargle_shares_one_period():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 60, 200))
    band = (rng.random(200) < 0.5).astype(int)
    y = 10 + np.where(band == 0, 1.5, 1.0) * np.sin(2 * np.pi * t / 0.37) + rng.normal(0, 0.3, 200)
    p, _ = pm.find_period(t, y, np.full(200, 0.3), band, method="multiband", min_period=0.1, oversample=2)
    assert pm.recovered(0.37, p)
    with pytest.raises(ValueError, match="unknown method"):
        pm.find_period(t, y, method="pdm")

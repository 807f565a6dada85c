"""galaxies-multi: the space imager (Euclid VIS from galcheat) against GalSim, both instruments on one scene truth,
and the Galaxy-Zoo-like morphology answers' definitions."""

import numpy as np
import pytest
from astrobench.sim import galaxies, render, scene
from astrobench.sim import galaxies_multi as gm

galsim = pytest.importorskip("galsim")


def test_space_imager_takes_galcheats_euclid_vis_numbers():
    p = gm.space_params()
    assert (p["pixel_native"], p["psf_fwhm"], p["zeropoint"], p["exposure_s"]) == (0.1, 0.17, 25.91, 565.0)
    assert p["sky_mag_arcsec2"] == pytest.approx(22.3203) and p["obscuration"] == pytest.approx(0.36, abs=0.01)
    assert gm.SPACE_NPIX * gm.space_pixel() == pytest.approx(galaxies.NPIX * galaxies.PIXEL_SCALE, abs=0.05)
    # Kolmogorov(0.17") x Airy(lambda/D = 0.13"): broader than either; the table is GalSim's transform
    assert 0.2 < gm.psf_object().calculateFWHM() < 0.25
    k = np.array([0.0, 1.0, 2.5])
    ref = [gm.psf_object().kValue(galsim.PositionD(kk / 0.1, 0)).real for kk in k]
    np.testing.assert_allclose(gm.psf_k(k, 0.1), ref, atol=1e-4)


def test_vis_flux_is_a_nonnegative_mix_of_g_r_z():
    w, rms = gm.vis_mix()
    assert min(w) >= 0 and 0.9 < sum(w) < 1.25 and w[1] == max(w)  # VIS (550-900 nm) is closest to r
    assert rms < 0.15  # mag, over kcorrect's five templates at 0 < z < 1.5 (the extreme SEDs)


def test_space_image_matches_galsim_for_the_same_profile_and_psf():
    """Bulge + disk profiles and a star through the VIS PSF on the stored 0.2" pixels (rendered on 0.1", binned)."""
    rng = np.random.default_rng(7)
    n = 6
    hlr_b, hlr_d = rng.uniform(0.1, 0.6, n), rng.uniform(0.3, 2.0, n)  # arcsec
    fb, fd = rng.uniform(0, 2e4, (n, 1)), rng.uniform(1e4, 5e4, (n, 1))
    g1, g2 = rng.uniform(-0.4, 0.4, (2, n))
    dx, dy = rng.uniform(-0.5, 0.5, (2, n))  # stored pixels
    fb[-1], hlr_b[-1], hlr_d[-1] = 0.0, 0.0, 0.0  # the last one is a star
    grid = gm.space_params()["pixel_native"]
    p = dict(flux_bulge=fb, flux_disk=fd, hlr_bulge=hlr_b / grid, hlr_disk=hlr_d / grid, g1=g1, g2=g2,
             psf_fwhm=np.full((n, 1), gm.psf_object().calculateFWHM() / grid), dx=2 * dx, dy=2 * dy)
    view = gm.space_view(n)
    ours = scene._bin(scene.render_with_points(p, None, npix=gm.SPACE_NPIX * 2, psf=view["psf_k"]), 2)
    for i in range(n):
        gal = galsim.Add([galsim.Spergel(render.NU_BULGE, half_light_radius=hlr_b[i], flux=fb[i, 0]),
                          galsim.Spergel(render.NU_DISK, half_light_radius=hlr_d[i], flux=fd[i, 0])]
                         ).shear(g1=g1[i], g2=g2[i]) if i < n - 1 else galsim.DeltaFunction(flux=fd[i, 0])
        ref = galsim.Convolve(gal, gm.psf_object()).drawImage(nx=gm.SPACE_NPIX, ny=gm.SPACE_NPIX,
                                                             scale=gm.space_pixel(), offset=(dx[i], dy[i])).array
        assert np.abs(ours[i, 0] - ref).max() <= 0.01 * ref.max(), f"object {i}: pixel difference > 1% of peak"
        assert abs(ours[i, 0].sum() - ref.sum()) <= 0.005 * ref.sum(), f"object {i}: flux differs > 0.5%"


def _tiny_field(area_deg2, mag_limit_r, seed):
    """Two bright neighbours in place of SkyPy's field draw (the test needs the scene machinery, not the counts),
    flat in f_nu so that every object has the same VIS / r flux ratio."""
    rng = np.random.default_rng(seed)
    n = 2
    cols = {"z": np.array([0.1, 0.3]), "abs_mag_B": np.array([-20.0, -21.0]),
            "coeff": rng.dirichlet(np.ones(5), n), "mstar": np.array([1e10, 3e10]),
            "mags": np.array([[18.0, 18.0, 18.0], [18.8, 18.8, 18.8]]), "hlr": np.array([1.0, 0.6]),
            "ell": np.array([0.2, 0.4]), "is_red": np.array([False, True])}
    return galaxies._finish_truth(cols, rng)


def test_both_instruments_see_the_same_scene(monkeypatch):
    monkeypatch.setattr(galaxies, "draw_field", _tiny_field)
    monkeypatch.setattr(scene, "draw_stars", lambda n, area, rng: {k: np.zeros(0, int if k == "stamp" else float)
                                                                   for k in ("stamp", "mag_g", "mag_r", "mag_z")})
    monkeypatch.setattr(scene, "MARGIN", -24)  # neighbours within 2" of the centre: no light lost at the edges
    truth = _tiny_field(0, 0, 3)
    (ground, space), _, cols, (_, t_space) = scene.compose(
        truth, 0, 0, progress=False, morphology=True, views=[scene.decam_view(truth), gm.space_view(2)])
    assert ground.shape == (2, 3, 64, 64) and space.shape == (2, 1, gm.SPACE_NPIX, gm.SPACE_NPIX)
    assert {"knot_count", "arm_pitch_deg"} <= set(cols)
    # the target's VIS counts are its g, r, z fluxes mixed by vis_mix, at VIS's exposure zero point
    flux = np.stack([10 ** (-0.4 * (truth[f"mag_{b}"] - galaxies.EXPOSURE_ZP)) for b in galaxies.BANDS], 1)
    expected = flux @ np.array(gm.vis_mix()[0]) * gm.space_view(2)["flux"]
    np.testing.assert_allclose(t_space[:, 0], expected, rtol=0.03)  # (light beyond the stamp is lost)

    def centroid(img, pixel):  # flux-weighted centre of the whole scene, arcsec from the stamp centre
        y, x = np.indices(img.shape) - (img.shape[0] - 1) / 2
        return np.array([(x * img).sum(), (y * img).sum()]) / img.sum() * pixel

    for i in range(2):  # same objects at the same places: the scenes' light centres agree (PSFs and knots aside)
        c_g = centroid(ground[i, 1], galaxies.PIXEL_SCALE)
        c_s = centroid(space[i, 0], gm.space_pixel())
        assert np.hypot(*(c_g - c_s)) < 0.03, (i, c_g, c_s)


def test_morphology_answers_follow_their_definitions():
    t = {  # rows: smooth elliptical, edge-on disk, tight face-on spiral, loose spiral, clumpy disk, neighbour
        "bulge_frac": np.array([0.8, 0.1, 0.2, 0.05, 0.35, 0.6]),
        "e1": np.array([0.1, 0.7, 0.1, 0.0, 0.2, 0.0]), "e2": np.zeros(6),
        "has_arms": np.array([0, 1, 1, 1, 0, 0]), "has_knots": np.array([0, 0, 0, 0, 1, 0]),
        "arm_pitch_deg": np.array([np.nan, 25.0, 12.0, 28.0, np.nan, np.nan]),
        "bright_neighbour_5as": np.array([0, 0, 0, 0, 0, 1]),
    }
    a = gm.morphology(t)
    assert set(a) == set(gm.MORPHOLOGY)
    assert a["gz_featured"].tolist() == [0, 1, 1, 1, 1, 0]
    assert a["gz_edge_on"].tolist() == [0, 1, 0, 0, 0, 0]  # |g| = 0.7: axis ratio 0.18 < 0.25, B/T 0.1
    assert a["gz_spiral"].tolist() == [0, -1, 1, 1, 0, 0]  # not asked of the edge-on disk
    assert a["gz_arms_tight"].tolist() == [-1, -1, 1, 0, -1, -1]  # asked of spirals only
    assert a["gz_clumpy"].tolist() == [0, 0, 0, 0, 1, 0]
    assert a["gz_bulge"].tolist() == [3, 1, 1, 0, 2, 3]
    assert a["gz_neighbour"].tolist() == [0, 0, 0, 0, 0, 1]
    # a round bulge-dominated galaxy is never edge-on, however flat its shear
    assert gm.morphology({**t, "e1": np.full(6, 0.79)})["gz_edge_on"].tolist() == [0, 1, 1, 1, 0, 0]

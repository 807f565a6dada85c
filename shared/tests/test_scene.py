"""The scene components against GalSim (knots as galsim.RandomKnots, arm blobs as Gaussians, stars as the PSF),
and the star counts against the Bahcall & Soneira model they are drawn from."""

import numpy as np
import pytest
from astrobench.sim import render, scene

galsim = pytest.importorskip("galsim")


def one_galaxy(rng, hlr_disk=4.0, g=(0.2, -0.1)):
    return dict(flux_bulge=np.array([[300.0]]), flux_disk=np.array([[3000.0]]), hlr_bulge=np.array([1.0]),
                hlr_disk=np.array([hlr_disk]), g1=np.array([g[0]]), g2=np.array([g[1]]),
                psf_fwhm=np.array([[4.0]]), dx=rng.uniform(-0.5, 0.5, 1), dy=rng.uniform(-0.5, 0.5, 1))


def sub_from_points(points, fluxes, smooth, n_knots, arm_sigma=0.0, g=(0.2, -0.1)):
    """A substructure dict for given unsheared points (pixels) and fractions of the disk flux."""
    a, b, d = render.shear_matrix(np.array([g[0]]), np.array([g[1]]))
    x, y = points[:, 0], points[:, 1]
    pos = np.stack([a[0] * x + b[0] * y, b[0] * x + d[0] * y], axis=-1)[None]
    return {"pos": pos, "frac": np.asarray(fluxes, float)[None, :, None], "n_knots": n_knots,
            "arm_sigma": np.array([arm_sigma]), "smooth": np.array([[smooth]])}


def draw(obj, p):
    psf = galsim.Moffat(beta=render.MOFFAT_BETA, fwhm=p["psf_fwhm"][0, 0])
    return galsim.Convolve(obj, psf).drawImage(nx=64, ny=64, scale=1.0, offset=(p["dx"][0], p["dy"][0])).array


def compare(ours, ref):
    assert np.abs(ours - ref).max() <= 0.01 * ref.max(), "pixel difference > 1% of peak"
    assert abs(ours.sum() - ref.sum()) <= 0.005 * ref.sum(), "flux differs > 0.5%"
    assert abs(ours.max() - ref.max()) <= 0.01 * ref.max(), "peak differs > 1%"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knots_match_galsim_random_knots(seed):
    rng = np.random.default_rng(seed)
    p = one_galaxy(rng)
    smooth, n = 0.75, 20
    knots = galsim.RandomKnots(n, profile=galsim.Exponential(half_light_radius=4.0, flux=3000.0 * (1 - smooth)),
                               rng=galsim.BaseDeviate(seed + 1))
    ref_gal = galsim.Add([galsim.Spergel(render.NU_BULGE, half_light_radius=1.0, flux=300.0),
                          galsim.Spergel(render.NU_DISK, half_light_radius=4.0, flux=3000.0 * smooth),
                          knots]).shear(g1=0.2, g2=-0.1)
    sub = sub_from_points(knots.points, np.full(n, (1 - smooth) / n), smooth, n_knots=n)
    compare(scene.render_with_points(p, sub)[0, 0], draw(ref_gal, p))


def test_arm_blobs_match_galsim_gaussians():
    rng = np.random.default_rng(3)
    p = one_galaxy(rng, g=(0.0, 0.0))
    pts = rng.normal(0, 5, (40, 2))
    sigma, share = 0.8, 0.3
    blobs = [galsim.Gaussian(sigma=sigma, flux=3000.0 * share / 40).shift(x, y) for x, y in pts]
    ref_gal = galsim.Add([galsim.Spergel(render.NU_BULGE, half_light_radius=1.0, flux=300.0),
                          galsim.Spergel(render.NU_DISK, half_light_radius=4.0, flux=3000.0 * (1 - share)), *blobs])
    sub = sub_from_points(pts, np.full(40, share / 40), 1 - share, n_knots=0, arm_sigma=sigma, g=(0.0, 0.0))
    compare(scene.render_with_points(p, sub)[0, 0], draw(ref_gal, p))


def test_a_star_is_the_psf():
    rng = np.random.default_rng(4)
    p = one_galaxy(rng, g=(0.0, 0.0))
    p.update(flux_bulge=np.array([[0.0]]), flux_disk=np.array([[5000.0]]), hlr_bulge=np.array([0.0]),
             hlr_disk=np.array([0.0]))
    compare(scene.render_with_points(p)[0, 0], draw(galsim.DeltaFunction(flux=5000.0), p))


def test_substructure_conserves_each_bands_flux_and_makes_knots_bluer():
    rng = np.random.default_rng(5)
    n = 200
    truth = {"z": rng.uniform(0, 1, n), "is_red": rng.uniform(size=n) < 0.3, "hlr_disk_arcsec": rng.uniform(0.5, 3, n),
             "e1": rng.uniform(-0.3, 0.3, n), "e2": rng.uniform(-0.3, 0.3, n)}
    sub = scene.substructure(truth, rng)
    np.testing.assert_allclose(sub["smooth"] + sub["frac"].sum(axis=1), 1.0, atol=1e-12)  # flux per band kept
    knotty = sub["has_knots"] & ~sub["has_arms"]
    assert knotty.any() and sub["has_arms"].any()
    share = 1 - sub["smooth"][knotty]
    assert np.all(share[:, 0] > share[:, 1]) and np.all(share[:, 1] > share[:, 2])  # bluer knots: g > r > z
    blue = ~truth["is_red"]
    assert sub["has_arms"][blue].mean() > sub["has_arms"][~blue].mean()


def test_star_draws_follow_bahcall_soneira():
    rng = np.random.default_rng(6)
    stars = scene.draw_stars(200_000, 1e-3, rng)  # 200 deg^2 in all
    assert stars["mag_r"].min() >= scene.STAR_BRIGHT and stars["mag_r"].max() < scene.STAR_FAINT
    # counts in V bins against the model's differential counts, with the same colour mixture
    v = stars["mag_g"] - 0.59 * (stars["mag_g"] - stars["mag_r"]) - 0.01
    lo, hi = 19.0, 21.0  # well inside the r window for both populations
    model = (scene.star_counts(hi) - scene.star_counts(lo)) * 200.0
    got = np.sum((v >= lo) & (v < hi))
    assert abs(got - model) < 0.1 * model  # the colour cut trims the edges; the middle follows the model
    # the model itself: toward the Galactic centre, more stars nearer the plane; ~10^3 per deg^2 to V = 20
    assert scene.star_counts(20.0, 0, 30) > scene.star_counts(20.0, 0, 60) > scene.star_counts(20.0, 0, 90)
    assert 300 < scene.star_counts(20.0) < 3000

"""The Fourier renderer against GalSim, the reference implementation, on random profiles."""

import numpy as np
import pytest
from astrobench.sim import render

galsim = pytest.importorskip("galsim")


def random_params(n, rng):
    return dict(
        flux_bulge=rng.uniform(0, 2000, (n, 1)), flux_disk=rng.uniform(100, 2000, (n, 1)),
        hlr_bulge=np.exp(rng.uniform(np.log(0.3), np.log(6), n)),
        hlr_disk=np.exp(rng.uniform(np.log(0.8), np.log(12), n)),
        g1=rng.uniform(-0.5, 0.5, n), g2=rng.uniform(-0.5, 0.5, n),
        psf_fwhm=rng.uniform(2.5, 7, (n, 1)), dx=rng.uniform(-0.5, 0.5, n), dy=rng.uniform(-0.5, 0.5, n),
    )


def galsim_image(p, i, npix=64):
    gal = galsim.Add([
        galsim.Spergel(render.NU_BULGE, half_light_radius=p["hlr_bulge"][i], flux=p["flux_bulge"][i, 0]),
        galsim.Spergel(render.NU_DISK, half_light_radius=p["hlr_disk"][i], flux=p["flux_disk"][i, 0]),
    ]).shear(g1=p["g1"][i], g2=p["g2"][i])
    psf = galsim.Moffat(beta=render.MOFFAT_BETA, fwhm=p["psf_fwhm"][i, 0])
    return galsim.Convolve(gal, psf).drawImage(nx=npix, ny=npix, scale=1.0, offset=(p["dx"][i], p["dy"][i])).array


def test_matches_galsim_on_random_profiles():
    rng = np.random.default_rng(42)
    p = random_params(24, rng)
    assert len(set(render.box_choice(p))) == len(render.BOXES)  # every FFT box size is exercised
    ours = render.render(p)
    for i in range(24):
        ref = galsim_image(p, i)
        assert np.abs(ours[i, 0] - ref).max() <= 0.01 * ref.max(), f"profile {i}: pixel difference > 1% of peak"
        assert abs(ours[i, 0].sum() - ref.sum()) <= 0.005 * ref.sum(), f"profile {i}: flux differs > 0.5%"


def test_bands_share_shape_but_not_psf():
    rng = np.random.default_rng(0)
    p = random_params(2, rng)
    p["flux_bulge"] = np.repeat(p["flux_bulge"], 2, axis=1)
    p["flux_disk"] = np.repeat(p["flux_disk"], 2, axis=1)
    p["psf_fwhm"] = np.array([[3.0, 6.0], [3.0, 6.0]])
    p["hlr_bulge"], p["hlr_disk"] = np.array([1.0, 1.5]), np.array([2.0, 3.0])  # compact: all light in the stamp
    img = render.render(p)
    assert img.shape == (2, 2, 64, 64)
    assert img[:, 0].max() > img[:, 1].max()  # broader PSF, lower peak
    np.testing.assert_allclose(img[:, 0].sum((-1, -2)), img[:, 1].sum((-1, -2)), rtol=2e-3)


def test_jax_backend_agrees_with_numpy():
    jnp = pytest.importorskip("jax.numpy")
    p = random_params(3, np.random.default_rng(1))
    np.testing.assert_allclose(np.asarray(render.render(p, xp=jnp)), render.render(p), atol=1e-3 * 2000)


def test_composite_radius_and_sersic_index():
    # a pure exponential disk has n = 1 and its half-light radius is the disk's
    r = render.composite_radius(0.5, np.array([0.0]), np.array([1.0]), np.array([2.0]))
    np.testing.assert_allclose(r, 2.0, rtol=1e-6)
    n_disk = render.effective_sersic_n(np.array([0.0]), np.array([1.0]), np.array([2.0]))
    n_bulge = render.effective_sersic_n(np.array([1.0]), np.array([1.0]), np.array([2.0]))
    np.testing.assert_allclose(n_disk, 1.0, atol=0.02)
    assert 3.0 < n_bulge[0] < 5.0  # Spergel nu = -0.6 stands in for de Vaucouleurs (n = 4)

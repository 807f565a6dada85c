"""``galaxy-profile``: a galaxy's structural parameters from one noisy 32x32 image.

Physical story: a ground-based survey stamp of a bulge + disk galaxy. The image is the validated
Fourier-space renderer of ``astrobench.sim.render`` (exponential disk + de Vaucouleurs-like bulge,
both Spergel profiles, sheared, convolved with a known Moffat PSF of FWHM 2.5 px and the pixel),
plus white Gaussian noise of known sigma (sky-dominated regime). Five parameters:

    log10_flux   total flux (pixel units, sigma = 1)    U(2.3, 3.3)  -> S/N ~ 10 .. 150
    r_disk       disk half-light radius [pixels]         U(1.0, 4.0)  (bulge: half of it)
    bulge_frac   bulge-to-total flux ratio               U(0, 1)
    g1, g2       reduced shear (ellipticity)             U(-0.4, 0.4)

The centroid is fixed at the stamp centre. Small, faint galaxies leave the shape and the
bulge fraction poorly constrained, so posteriors range from tight ellipses to prior-wide bananas.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from .. import render
from .base import GaussianTask

NPIX = 32
PSF_FWHM = 2.5  # pixels
NOISE_SIGMA = 1.0
BULGE_TO_DISK_SIZE = 0.5


class Task(GaussianTask):
    name = "galaxy-profile"
    description = "bulge+disk galaxy parameters from a noisy 32x32 image with a known Moffat PSF"
    param_names = ("log10_flux", "r_disk", "bulge_frac", "g1", "g2")
    labels = (r"$\log_{10} F$", r"$r_{\rm disk}$ [px]", r"$B/T$", r"$g_1$", r"$g_2$")
    low = np.array([2.3, 1.0, 0.0, -0.4, -0.4], dtype=np.float32)
    high = np.array([3.3, 4.0, 1.0, 0.4, 0.4], dtype=np.float32)
    x_shape = (NPIX, NPIX)
    noise_sigma = NOISE_SIGMA
    observation_seed = 20251
    config: ClassVar[dict] = dict(npix=NPIX, psf_fwhm_pix=PSF_FWHM, moffat_beta=render.MOFFAT_BETA,
                                  noise_sigma=NOISE_SIGMA, bulge_to_disk_size=BULGE_TO_DISK_SIZE,
                                  centroid="stamp centre")

    def mean(self, theta):
        flux = 10.0 ** theta[0]
        r_disk, bt, g1, g2 = theta[1], theta[2], theta[3], theta[4]
        params = {
            "flux_bulge": (flux * bt)[None, None], "flux_disk": (flux * (1.0 - bt))[None, None],
            "hlr_bulge": (BULGE_TO_DISK_SIZE * r_disk)[None], "hlr_disk": r_disk[None],
            "g1": g1[None], "g2": g2[None], "psf_fwhm": jnp.full((1, 1), PSF_FWHM, dtype=jnp.float32),
            "dx": jnp.zeros(1, jnp.float32), "dy": jnp.zeros(1, jnp.float32),
        }
        return render.render(params, npix=NPIX, xp=jnp)[0, 0]

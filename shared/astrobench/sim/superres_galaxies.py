"""Paired space-like / ground-like galaxy images for x4 super-resolution (``superres-galaxies``).

The targets are the ``galaxies`` population (SkyPy, ``galaxies.draw_population``) in ``galaxies``-like scenes
(neighbours, background galaxies, stars, knots and arms: ``scene.compose``); each scene is drawn once and
rendered twice with the same batched Fourier renderer, over the same 9.6" x 9.6" field:

* HR, space-like: 64 x 64 pixels of 0.15", a sharp Moffat PSF (FWHM 0.25", ~1.7 pixels, like
  Euclid VIS's 0.17" on 0.1" pixels), a dark space sky and a deep exposure (low noise);
* LR, ground-like: 16 x 16 pixels of 0.6" (coarse, under-sampled pixels), seeing ~1.0" in r
  scaling as lambda^-0.2, DECam dark-sky background and the ``galaxies`` exposure (realistic noise).

The renderer integrates the flux over each pixel, both images are stored in nanomaggies per
pixel, so the total flux is conserved: sum(LR) = sum(HR) up to noise and to the light that the
broader PSF spreads outside the stamp (the card quotes the measured difference).
LR is rendered at its own coarse pixel scale (not rebinned from HR). Both PSFs span only ~1.7
pixels, so each image is rendered on a grid OVERSAMPLE times finer and summed back into its pixels:
a Fourier renderer sampled at the final pixels omits the aliased power and rings at ~0.6 % of the
peak (1.5 % at the 99th percentile), as large as the HR noise; oversampled 2x the error is < 1e-4.
The card ``data/cards/superres-galaxies.md`` records every parameter.
"""

from __future__ import annotations

import math

import numpy as np

from . import galaxies, render, scene

VERSION = "2.0.0"
FACTOR = 4
NPIX_HR, NPIX_LR = 64, 16
PIXEL_HR, PIXEL_LR = 0.15, 0.6  # arcsec / pixel
PSF_FWHM_HR = 0.25  # arcsec, all bands (space-like, diffraction-limited optics on a small pixel)
SEEING_R = (1.0, 0.12, 0.75, 1.4)  # arcsec: mean, sd, min, max of the LR (ground) PSF FWHM in r
ZP_HR, ZP_LR = 32.5, galaxies.EXPOSURE_ZP  # exposure zero points (AB): HR is a deep exposure
SKY_HR_MAG_ARCSEC2 = np.array([23.2, 22.9, 22.2])  # space: zodiacal light, g, r, z
SKY_LR_MAG_ARCSEC2 = galaxies.SKY_MAG_ARCSEC2  # ground: DECam dark sky, g, r, z
CHUNK = 250
OVERSAMPLE = 2  # render on a 2x finer grid, then sum 2x2 sub-pixels: removes the aliasing ringing


def _sky_counts(sky_mag_arcsec2, pixel, zp) -> np.ndarray:
    return 10 ** (-0.4 * (sky_mag_arcsec2 - 2.5 * math.log10(pixel**2) - zp))


def _to_nmgy(zp: float) -> float:
    return 10 ** (-0.4 * (zp - galaxies.IMAGE_ZP))


def sky_sigma(which: str) -> np.ndarray:
    """Background noise per pixel (nanomaggies) for g, r, z of the "hr" or "lr" images."""
    sky, pix, zp = ((SKY_HR_MAG_ARCSEC2, PIXEL_HR, ZP_HR) if which == "hr" else
                    (SKY_LR_MAG_ARCSEC2, PIXEL_LR, ZP_LR))
    return np.sqrt(_sky_counts(sky, pix, zp)) * _to_nmgy(zp)


def config() -> dict:
    return {
        "bands": list(galaxies.BANDS), "factor": FACTOR, "npix_hr": NPIX_HR, "npix_lr": NPIX_LR,
        "pixel_hr_arcsec": PIXEL_HR, "pixel_lr_arcsec": PIXEL_LR, "psf_fwhm_hr_arcsec": PSF_FWHM_HR,
        "seeing_r_arcsec": SEEING_R, "psf": {"profile": "Moffat", "beta": render.MOFFAT_BETA,
                                             "lr_chromatic": "fwhm ~ lambda^-0.2", "hr_chromatic": "none"},
        "exposure_zp_hr": ZP_HR, "exposure_zp_lr": ZP_LR,
        "sky_hr_mag_arcsec2": SKY_HR_MAG_ARCSEC2.tolist(), "sky_lr_mag_arcsec2": SKY_LR_MAG_ARCSEC2.tolist(),
        "sky_sigma_hr": sky_sigma("hr").tolist(), "sky_sigma_lr": sky_sigma("lr").tolist(),
        "units": "nanomaggies per pixel (AB zero point 22.5), sky-subtracted", "extensive": True,
        "channels": list(galaxies.BANDS), "population": "astrobench.sim.galaxies.draw_population (r < 21)",
        "noise": "Gaussian approximation of Poisson noise from sky + source", "oversample": OVERSAMPLE,
        "scene": scene.config()["scene"],
    }


def _view(rows: dict, which: str) -> dict:
    """The HR or LR observation of a scene for ``scene.compose``: pixel, size, oversampling, exposure, PSF."""
    m = len(rows["z"])
    if which == "hr":
        return {"pixel": PIXEL_HR, "npix": NPIX_HR, "oversample": OVERSAMPLE, "flux": 10 ** (0.4 * (ZP_HR - ZP_LR)),
                "psf_arcsec": np.full((m, 3), PSF_FWHM_HR),
                "seg_threshold": float(np.sqrt(_sky_counts(SKY_HR_MAG_ARCSEC2, PIXEL_HR, ZP_HR)[1]))}
    return {"pixel": PIXEL_LR, "npix": NPIX_LR, "oversample": OVERSAMPLE, "flux": 1.0,
            "psf_arcsec": np.stack([rows[f"psf_fwhm_lr_{b}"] for b in galaxies.BANDS], axis=1),
            "seg_threshold": float(np.sqrt(_sky_counts(SKY_LR_MAG_ARCSEC2, PIXEL_LR, ZP_LR)[1]))}


def _observe(counts: np.ndarray, sky_counts: np.ndarray, zp: float, rng) -> np.ndarray:
    noise = rng.standard_normal(counts.shape, dtype=np.float32)
    noisy = counts + noise * np.sqrt(sky_counts[None, :, None, None] + np.maximum(counts, 0.0))
    return (noisy * _to_nmgy(zp)).astype(np.float32)


def simulate(truth: dict, seed: int, block: int, progress: bool = True):
    """HR (N, 3, 64, 64) and LR (N, 3, 16, 16) float32 images of the same scenes, the target galaxy's noiseless
    flux inside each stamp (N, 3) in HR and LR, and the scene truth columns (positions in HR pixels)."""
    n = len(truth["z"])
    rows = {**truth, **{f"psf_fwhm_{b}": np.ones(n) for b in galaxies.BANDS}}  # compose's DECam PSF is unused
    (c_hr, c_lr), _, cols, (t_hr, t_lr) = scene.compose(rows, seed, block, progress=progress, chunk=CHUNK,
                                                        views=[_view(rows, "hr"), _view(rows, "lr")])
    flux_hr, flux_lr = t_hr * _to_nmgy(ZP_HR), t_lr * _to_nmgy(ZP_LR)
    sky_hr = _sky_counts(SKY_HR_MAG_ARCSEC2, PIXEL_HR, ZP_HR)
    sky_lr = _sky_counts(SKY_LR_MAG_ARCSEC2, PIXEL_LR, ZP_LR)
    hr, lr = np.empty_like(c_hr), np.empty_like(c_lr)
    for i0 in range(0, n, CHUNK):
        rng = np.random.default_rng([seed, block, i0 // CHUNK])
        hr[i0 : i0 + CHUNK] = _observe(c_hr[i0 : i0 + CHUNK], sky_hr, ZP_HR, rng)
        lr[i0 : i0 + CHUNK] = _observe(c_lr[i0 : i0 + CHUNK], sky_lr, ZP_LR, rng)
    return hr, lr, flux_hr, flux_lr, cols


def draw_truth(n: int, seed: int) -> dict:
    """The ``galaxies`` population plus this dataset's LR seeing and total fluxes."""
    t = galaxies.draw_population(n, seed)
    rng = np.random.default_rng([seed, 7])
    fwhm_r = np.clip(rng.normal(SEEING_R[0], SEEING_R[1], n), SEEING_R[2], SEEING_R[3])
    fwhm = fwhm_r[:, None] * (galaxies.BAND_WAVELENGTH / galaxies.BAND_WAVELENGTH[1])[None, :] ** -0.2
    t = {k: v for k, v in t.items() if not k.startswith("psf_fwhm_")}
    for i, b in enumerate(galaxies.BANDS):
        t[f"psf_fwhm_lr_{b}"] = fwhm[:, i]
        t[f"flux_{b}"] = 10 ** (-0.4 * (t[f"mag_{b}"] - galaxies.IMAGE_ZP))  # total, nanomaggies
    t["psf_fwhm_hr"] = np.full(n, PSF_FWHM_HR)
    return t


def generate(sizes: dict, seed: int, progress: bool = True) -> dict:
    """{split: {"hr", "lr", "truth"}}; truth adds the target's noiseless stamp fluxes in HR and LR (the
    flux-conservation check) and the scene columns."""
    truth = draw_truth(sum(sizes.values()), seed)
    out, start = {}, 0
    for block, (split, n) in enumerate(sizes.items()):
        rows = {k: v[start : start + n] for k, v in truth.items()}
        rows["id"] = np.arange(n, dtype=np.int64)
        hr, lr, flux_hr, flux_lr, cols = simulate(rows, seed, block, progress=progress)
        rows.update(cols)
        for i, b in enumerate(galaxies.BANDS):
            rows[f"stamp_flux_hr_{b}"] = flux_hr[:, i]
            rows[f"stamp_flux_lr_{b}"] = flux_lr[:, i]
        out[split] = {"hr": hr, "lr": lr, "truth": rows}
        start += n
    return out


def _spec():
    from ..data.specs import SimulatedSpec

    return SimulatedSpec(
        name="superres-galaxies",
        version=VERSION,
        description="galaxies population as paired g,r,z images: HR 64x64 space-like (0.15\"/px, 0.25\" PSF, low "
                    "noise) and LR 16x16 ground-like (0.6\"/px, ~1\" seeing, sky noise), x4, flux conserved",
        tracks=("superres",),
        sizes={"full": {"train": 8000, "test": 1000}, "fast": {"train": 800, "test": 200}},
        generate=generate,
        config=config,
    )


DATASETS = [_spec()]

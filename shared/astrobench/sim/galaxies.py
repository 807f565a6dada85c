"""The galaxy population and its isolated stamps (``galaxies-isolated``, the teaching variant): a SkyPy population
rendered as DECam g, r, z stamps, one galaxy each, with paired spectra. The default ``galaxies`` set puts the same
targets in survey-like scenes (``scene.py``).

Physics, step by step (every choice is recorded in the dataset card, ``data/cards/galaxies.md``):

1. Population (SkyPy, Herbel+2017 / Shen+2003 parameters as in SkyPy's and SLSim's configs):
   blue and red Schechter luminosity functions give redshift and absolute B magnitude;
   Dirichlet-distributed kcorrect coefficients give the SED; kcorrect templates through
   speclite's DECam 2014 curves give apparent g, r, z; Shen+2003 lognormal sizes and
   beta-distributed ellipticities give the shape.
2. Morphology: an exponential disk and a de Vaucouleurs-like bulge (Spergel profiles), bulge
   fraction drawn per population, bulges redder than disks.
3. Observation: Moffat PSF whose FWHM scales as lambda^-0.2, 0.262"/pixel, dark-sky
   background, Gaussian approximation of Poisson noise from sky + source.
4. Spectrum: kcorrect templates x coefficients, redshifted and dimmed by the luminosity
   distance, sampled at 3600-9800 A with sky-like Gaussian noise.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings

import numpy as np
from tqdm.auto import tqdm

from . import render

VERSION = "1.0.0"
BANDS = ("g", "r", "z")
FILTERS = ("decam2014-g", "decam2014-r", "decam2014-z")
BAND_WAVELENGTH = np.array([4800.0, 6400.0, 9200.0])  # A, effective, for the PSF's chromatic scaling
NPIX = 64
PIXEL_SCALE = 0.262  # arcsec / pixel (DECam)
KCORRECT_Z_GRID = 300  # redshifts at which SkyPy tabulates k-corrections (then interpolates)
MAG_LIMIT_R = 21.0  # selection: DECam r < 21 (a bright, resolved sample)
SKYPY_M_LIM = 22.5  # SkyPy's draw limit (B-band-like), deeper than the r cut so the cut is complete
# Observation: counts for an exposure with zero point 31 (AB), sky-subtracted, then stored in
# nanomaggies (zero point 22.5, Legacy Survey convention). Sky brightness: DECam dark sky.
EXPOSURE_ZP = 31.0
IMAGE_ZP = 22.5
SKY_MAG_ARCSEC2 = np.array([22.04, 20.91, 18.46])
PSF_FWHM_R = (1.15, 0.15, 0.8, 1.6)  # arcsec: mean, sd, min, max
# Bulge-to-total in r, by population (Beta distributions): disks dominate blue galaxies.
BT_BETA = {"blue": (1.2, 6.0), "red": (4.0, 2.5)}
BT_COLOUR = np.array([0.8, 1.0, 1.15])  # bulge fraction in g, r, z relative to r: red bulges
# Spectrum: log-spaced grid, sky-dominated noise plus a source term (units 1e-17 erg/s/cm2/A).
SPEC_WAVE = np.geomspace(3600.0, 9800.0, 512)
SPEC_SIGMA_SKY = 0.05
SPEC_GAIN = 0.005

POPULATIONS = {
    # name: (M*(z) = a z + b, phi*(z) = amp exp(z / tau) [Mpc^-3], alpha, dirichlet alpha0, alpha1, weight)
    "blue": dict(
        m_star=(-0.9408582, -20.40492365), phi_star=(0.00370253, -9.73858), alpha=-1.3,
        alpha0=[2.079, 3.524, 1.917, 1.992, 2.536], alpha1=[2.265, 3.862, 1.921, 1.685, 2.480],
        weight=[3.47e09, 3.31e06, 2.13e09, 1.64e10, 1.01e09],
    ),
    "red": dict(
        m_star=(-0.70798041, -20.37196157), phi_star=(0.0035097, -1.41649), alpha=-0.5,
        alpha0=[2.461, 2.358, 2.568, 2.268, 2.402], alpha1=[2.410, 2.340, 2.200, 2.540, 2.464],
        weight=[3.84e09, 1.57e06, 3.91e08, 4.66e10, 3.03e07],
    ),
}

TRUTH_COLUMNS = (
    "id", "z", "mag_g", "mag_r", "mag_z", "g_r", "r_z", "abs_mag_B", "is_red", "bulge_frac",
    "hlr_arcsec", "hlr_bulge_arcsec", "hlr_disk_arcsec", "sersic_n", "e1", "e2",
    "coeff_0", "coeff_1", "coeff_2", "coeff_3", "coeff_4", "log_mstar",
    "psf_fwhm_g", "psf_fwhm_r", "psf_fwhm_z", "dx", "dy",
)


def config() -> dict:
    """Generator parameters, stored in every dataset's metadata."""
    return {
        "bands": list(BANDS), "filters": list(FILTERS), "npix": NPIX, "pixel_scale": PIXEL_SCALE,
        "mag_limit_r": MAG_LIMIT_R, "skypy_m_lim": SKYPY_M_LIM, "exposure_zp": EXPOSURE_ZP,
        "image_zp": IMAGE_ZP, "image_units": "nanomaggies per pixel (AB zero point 22.5), sky-subtracted",
        "sky_mag_arcsec2": SKY_MAG_ARCSEC2.tolist(), "sky_sigma": sky_sigma().tolist(),
        "psf": {"profile": "Moffat", "beta": render.MOFFAT_BETA, "fwhm_r_arcsec": PSF_FWHM_R,
                "chromatic": "fwhm ~ lambda^-0.2"},
        "profiles": {"disk": "Spergel nu=0.5 (exponential)", "bulge": f"Spergel nu={render.NU_BULGE}"},
        "bulge_fraction_beta": BT_BETA, "bulge_fraction_colour": BT_COLOUR.tolist(),
        "spectrum": {"wave_min": float(SPEC_WAVE[0]), "wave_max": float(SPEC_WAVE[-1]), "n": len(SPEC_WAVE),
                     "units": "1e-17 erg/s/cm2/A", "sigma_sky": SPEC_SIGMA_SKY, "gain": SPEC_GAIN},
        "cosmology": "Planck18 H0, Om0, Ob0 (FlatLambdaCDM, no radiation)", "populations": POPULATIONS,
    }


def flux_scale() -> float:
    """Multiply exposure counts by this to get nanomaggies."""
    return 10 ** (-0.4 * (EXPOSURE_ZP - IMAGE_ZP))


def sky_counts(sky_mag_arcsec2=SKY_MAG_ARCSEC2) -> np.ndarray:
    """Sky level per pixel, in exposure counts, for g, r, z."""
    sky_mag_pixel = np.asarray(sky_mag_arcsec2) - 2.5 * math.log10(PIXEL_SCALE**2)
    return 10 ** (-0.4 * (sky_mag_pixel - EXPOSURE_ZP))


def sky_sigma() -> np.ndarray:
    """Background noise per pixel, in image units (nanomaggies), for g, r, z."""
    return np.sqrt(sky_counts()) * flux_scale()


@contextlib.contextmanager
def _numpy_global_seed(seed: int):
    """SkyPy draws from numpy's global RNG: seed it, then restore the caller's state."""
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _import_skypy():
    """SkyPy 0.5 imports astropy's deprecated TestRunner, which logs a warning: silence just that."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The TestRunner")
        import skypy.galaxies
        import skypy.galaxies.morphology
        import skypy.galaxies.spectrum

    return skypy


@functools.lru_cache(maxsize=1)
def _cosmology():
    """Planck18's H0, Om0 and Ob0 without radiation and neutrinos: distances then have a closed
    form (thousands of times faster than quadrature) and differ by < 0.1 % at z < 1.5. One instance: a new one
    computes its cached properties again, and astropy's unit conversion there leaves reference cycles (caught
    exceptions) that keep the caller's frames, with their GB-sized arrays, alive until the next garbage
    collection."""
    from astropy.cosmology import FlatLambdaCDM, Planck18

    return FlatLambdaCDM(H0=Planck18.H0, Om0=Planck18.Om0, Ob0=Planck18.Ob0, name="Planck18-matter-lambda")


def _draw_area(area_deg2: float, m_lim: float, seed: int) -> dict:
    """Every galaxy of both SkyPy populations in ``area_deg2`` brighter than SkyPy's apparent limit ``m_lim``
    (columns before the r cut)."""
    import astropy.units as u

    skypy = _import_skypy()
    morphology, schechter_lf = skypy.galaxies.morphology, skypy.galaxies.schechter_lf
    dirichlet_coefficients, kcorrect = skypy.galaxies.spectrum.dirichlet_coefficients, skypy.galaxies.spectrum.kcorrect
    cosmo = _cosmology()
    zgrid = np.linspace(0.001, 1.5, 300)
    cols = {}
    with _numpy_global_seed(seed):
        for name, pop in POPULATIONS.items():
            a, b = pop["m_star"]
            amp, tau = pop["phi_star"]
            z, m_abs = schechter_lf(
                zgrid, lambda z, a=a, b=b: a * z + b, lambda z, amp=amp, tau=tau: amp * np.exp(z / tau),
                pop["alpha"], m_lim, area_deg2 * u.deg**2, cosmo,
            )
            coeff = dirichlet_coefficients(z, pop["alpha0"], pop["alpha1"], weight=pop["weight"])
            mstar = kcorrect.stellar_mass(coeff, m_abs, "bessell-B")
            mags = kcorrect.apparent_magnitudes(coeff, z, list(FILTERS), cosmo, stellar_mass=mstar,
                                                resolution=KCORRECT_Z_GRID)
            if name == "blue":
                size = morphology.late_type_lognormal_size(m_abs, 0.21, 0.53, -1.31, -20.52, 0.48, 0.25)
                ell = morphology.beta_ellipticity(0.45, 3.5, size=len(z))
            else:
                size = morphology.early_type_lognormal_size(m_abs, 0.60, -4.63, -20.52, 0.48, 0.25)
                ell = morphology.beta_ellipticity(0.2, 7.0, size=len(z))
            hlr = morphology.angular_size(size, z, cosmo).to_value(u.arcsec)
            part = dict(z=z, abs_mag_B=m_abs, coeff=coeff, mstar=mstar, mags=mags, hlr=hlr, ell=ell,
                        is_red=np.full(len(z), name == "red"))
            for k, v in part.items():
                cols.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in cols.items()}


def draw_population(n: int, seed: int) -> dict:
    """Draw ``n`` galaxies brighter than r = MAG_LIMIT_R; returns truth columns (no images)."""
    area = n / 2500.0 * 1.3  # deg^2; ~2500 galaxies / deg^2 at r < 21, grown below if short
    rng = np.random.default_rng([seed, 1])
    for attempt in range(6):
        cols = _draw_area(area, SKYPY_M_LIM, seed * 100 + attempt)
        keep = cols["mags"][:, 1] < MAG_LIMIT_R
        if keep.sum() >= n:
            break
        area *= 1.5 * n / max(keep.sum(), 1)
    else:  # pragma: no cover - the area grows geometrically, six tries always suffice
        raise RuntimeError("could not draw enough galaxies")
    cols = {k: v[keep] for k, v in cols.items()}
    order = rng.permutation(len(cols["z"]))[:n]
    cols = {k: v[order] for k, v in cols.items()}
    return _finish_truth(cols, rng)


def draw_field(area_deg2: float, mag_limit_r: float, seed: int) -> dict:
    """Every galaxy brighter than ``mag_limit_r`` in ``area_deg2``, at the surface density the population gives
    (the neighbours and background galaxies of scenes). SkyPy's draw limit keeps the same margin below the r cut
    as ``draw_population``'s."""
    cols = _draw_area(area_deg2, SKYPY_M_LIM + (mag_limit_r - MAG_LIMIT_R), seed)
    keep = cols["mags"][:, 1] < mag_limit_r
    return _finish_truth({k: v[keep] for k, v in cols.items()}, np.random.default_rng([seed, 2]))


def _finish_truth(c: dict, rng: np.random.Generator) -> dict:
    n = len(c["z"])
    a, b = np.where(c["is_red"], BT_BETA["red"][0], BT_BETA["blue"][0]), np.where(
        c["is_red"], BT_BETA["red"][1], BT_BETA["blue"][1])
    bulge_frac = rng.beta(a, b)
    size = np.clip(c["hlr"], 0.15, 4.0)
    hlr_bulge, hlr_disk = 0.6 * size, 1.1 * size
    ell = np.clip(c["ell"], 0.0, 0.8)
    angle = rng.uniform(0, np.pi, n)
    fwhm_r = np.clip(rng.normal(PSF_FWHM_R[0], PSF_FWHM_R[1], n), PSF_FWHM_R[2], PSF_FWHM_R[3])
    fwhm = fwhm_r[:, None] * (BAND_WAVELENGTH / BAND_WAVELENGTH[1])[None, :] ** -0.2
    dx, dy = rng.uniform(-0.5, 0.5, (2, n))
    t = {
        "id": np.arange(n, dtype=np.int64), "z": c["z"],
        "mag_g": c["mags"][:, 0], "mag_r": c["mags"][:, 1], "mag_z": c["mags"][:, 2],
        "g_r": c["mags"][:, 0] - c["mags"][:, 1], "r_z": c["mags"][:, 1] - c["mags"][:, 2],
        "abs_mag_B": c["abs_mag_B"], "is_red": c["is_red"].astype(np.int8), "bulge_frac": bulge_frac,
        "hlr_arcsec": render.composite_radius(0.5, bulge_frac, hlr_bulge, hlr_disk),
        "hlr_bulge_arcsec": hlr_bulge, "hlr_disk_arcsec": hlr_disk,
        "sersic_n": render.effective_sersic_n(bulge_frac, hlr_bulge, hlr_disk),
        "e1": ell * np.cos(2 * angle), "e2": ell * np.sin(2 * angle),
        "log_mstar": np.log10(c["mstar"]),
        "psf_fwhm_g": fwhm[:, 0], "psf_fwhm_r": fwhm[:, 1], "psf_fwhm_z": fwhm[:, 2], "dx": dx, "dy": dy,
    }
    for i in range(5):
        t[f"coeff_{i}"] = c["coeff"][:, i]
    return {k: np.asarray(t[k]) for k in TRUTH_COLUMNS}


def render_params(truth: dict) -> dict:
    """Renderer inputs (exposure counts, pixels) from truth columns."""
    mags = np.stack([truth["mag_g"], truth["mag_r"], truth["mag_z"]], axis=1)
    flux = 10 ** (-0.4 * (mags - EXPOSURE_ZP))
    bt = np.clip(truth["bulge_frac"][:, None] * BT_COLOUR[None, :], 0.0, 1.0)
    return {
        "flux_bulge": flux * bt, "flux_disk": flux * (1 - bt),
        "hlr_bulge": truth["hlr_bulge_arcsec"] / PIXEL_SCALE, "hlr_disk": truth["hlr_disk_arcsec"] / PIXEL_SCALE,
        "g1": truth["e1"], "g2": truth["e2"],
        "psf_fwhm": np.stack([truth["psf_fwhm_g"], truth["psf_fwhm_r"], truth["psf_fwhm_z"]], axis=1) / PIXEL_SCALE,
        "dx": truth["dx"], "dy": truth["dy"],
    }


def observed_spectrum(truth: dict, wave: np.ndarray = SPEC_WAVE, oversample: int = 4) -> np.ndarray:
    """Noiseless observed-frame f_lambda (1e-17 erg/s/cm2/A): sum_i c_i T_i(lambda / (1+z)),
    scaled by stellar mass, dimmed by the distance modulus and (1+z), averaged over each pixel."""
    kcorrect = _import_skypy().galaxies.spectrum.kcorrect
    t_wave = kcorrect.wavelength.to_value("AA")
    templates = kcorrect.templates.to_value("erg s-1 cm-2 AA-1")
    coeff = np.stack([truth[f"coeff_{i}"] for i in range(5)], axis=1)
    z = truth["z"]
    # sub-pixel sampling points, averaged: a cheap box integral over each pixel
    edges = np.sqrt(wave[1:] * wave[:-1])
    edges = np.concatenate([[wave[0] ** 2 / edges[0]], edges, [wave[-1] ** 2 / edges[-1]]])
    frac = (np.arange(oversample) + 0.5) / oversample
    sub = edges[:-1, None] + (edges[1:] - edges[:-1])[:, None] * frac[None, :]  # (nwave, os)
    flux = np.empty((len(z), len(wave)))
    for b0 in range(0, len(z), 256):  # 256 galaxies at a time: the (B, nwave, os, 5) samples stay ~40 MB
        rest = sub[None] / (1 + z[b0 : b0 + 256])[:, None, None]  # (B, nwave, os)
        sed = np.stack([np.interp(rest, t_wave, templates[i]) for i in range(5)], axis=-1)  # (B, nw, os, 5)
        flux[b0 : b0 + 256] = np.einsum("bwok,bk->bw", sed, coeff[b0 : b0 + 256]) / oversample
    distmod = _cosmology().distmod(z).value
    scale = 10 ** (truth["log_mstar"] - 0.4 * distmod) / (1 + z)
    return flux * scale[:, None] * 1e17


def simulate(truth: dict, seed: int, block: int, progress: bool = True, chunk: int = 128):
    """Images (N, 3, 64, 64) float32 and spectra (N, 512) float32 for the given truth rows.

    Noise is seeded per chunk from (seed, block, chunk index), so the result does not depend
    on threading or on how the work is scheduled.
    """
    n = len(truth["z"])
    images = np.empty((n, 3, NPIX, NPIX), np.float32)
    spectra = np.empty((n, len(SPEC_WAVE)), np.float32)
    sky = sky_counts()[None, :, None, None]
    with tqdm(total=n, desc="rendering galaxies", unit="gal", disable=not progress) as bar:
        for i0 in range(0, n, chunk):
            rows = {k: v[i0 : i0 + chunk] for k, v in truth.items()}
            rng = np.random.default_rng([seed, block, i0 // chunk])
            counts = render.render(render_params(rows), npix=NPIX)
            noise = rng.standard_normal(counts.shape, dtype=np.float32)
            counts += noise * np.sqrt(sky + np.maximum(counts, 0.0))
            images[i0 : i0 + chunk] = counts * flux_scale()
            spec = observed_spectrum(rows)
            sigma = np.sqrt(SPEC_SIGMA_SKY**2 + SPEC_GAIN * np.maximum(spec, 0.0))
            spectra[i0 : i0 + chunk] = spec + sigma * rng.standard_normal(spec.shape)
            bar.update(len(rows["z"]))
    return images, spectra


def generate(sizes: dict, seed: int, progress: bool = True) -> dict:
    """All splits of one dataset: {split: {"images", "spectra", "wavelength", "truth"}}."""
    total = sum(sizes.values())
    truth = draw_population(total, seed)
    out, start = {}, 0
    for block, (split, n) in enumerate(sizes.items()):
        rows = {k: v[start : start + n] for k, v in truth.items()}
        rows["id"] = np.arange(n, dtype=np.int64)
        images, spectra = simulate(rows, seed, block, progress=progress)
        out[split] = {"images": images, "spectra": spectra, "wavelength": SPEC_WAVE.astype(np.float32),
                      "truth": rows}
        start += n
    return out


def _spec():
    from ..data.specs import SimulatedSpec

    return SimulatedSpec(
        name="galaxies-isolated",
        version=VERSION,
        description="Teaching variant of galaxies: one isolated SkyPy galaxy per DECam g,r,z 64x64 stamp "
                    "(bulge+disk, Moffat PSF, sky+Poisson noise) with paired 3600-9800 A spectra and a truth table",
        tracks=("generative", "multimodal"),
        sizes={"full": {"train": 20000, "test": 2000}, "fast": {"train": 800, "test": 200}},
        generate=generate,
        config=config,
    )


DATASETS = [_spec()]

"""One sky, two instruments (``galaxies-multi``): every ``galaxies`` scene observed from the ground and from space.

The scene truth is drawn once (``scene.compose``: the target, its neighbours and background galaxies, stars,
knots and arms) and rendered twice over the same 16.8" field with the kit's Fourier renderer:

* **ground**: the ``galaxies`` view (DECam g, r, z, 64 x 64 pixels of 0.262", each stamp's Moffat seeing, galcheat
  DES dark sky, exposure zero point 31);
* **space**: Euclid VIS from galcheat's ``Euclid_VIS`` survey (``galcheat.get_survey``: 0.1" pixels, PSF FWHM,
  zero point, sky brightness, exposure, mirror diameter and obscuration). The PSF is BTK's recipe for a galcheat
  survey (``get_optical_and_atmospheric_psf``, after WeakLensingDeblending): Kolmogorov(FWHM) x Airy(lambda / D,
  obscuration), tabulated in Fourier space from GalSim. The image is rendered on VIS's native 0.1" pixels and
  binned 2 x 2 to 84 x 84 pixels of 0.2" (the same sky as the ground stamp at a third of the memory); the broad
  VIS band's flux of every component is a fixed non-negative combination of its g, r, z fluxes, fitted through
  speclite's Euclid-VIS and DECam curves to SkyPy's kcorrect templates at 0 < z < 1.5 (``vis_mix``);
* the target's spectrum, as ``galaxies``.

Morphology truth (``MORPHOLOGY``) answers Galaxy-Zoo-like questions from the generator's parameters; the card
``data/cards/galaxies-multi.md`` defines each answer. A new dataset name rather than a new major version of
``galaxies``, so the multimodal task on ``galaxies`` and its shipped model stay valid.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import galaxies, scene

VERSION = "1.0.0"
SURVEY, FILTER = "Euclid_VIS", "IE"  # galcheat's names
SPACE_OVERSAMPLE = 2  # render on VIS's native pixels, store 2 x 2 bins
SPACE_NPIX = 84  # x 0.2" = 16.8", the ground stamp's 64 x 0.262" = 16.77"
CHUNK = 64  # scenes per render batch: the space grid's FFT boxes are (2 x 168)^2
PSF_TABLE = 4096  # radial samples of the PSF's Fourier transform
# Galaxy-Zoo-like questions: column -> (classes, definition). -1 marks "not asked" (the decision tree's branches)
EDGE_ON_Q, EDGE_ON_BT = 0.25, 0.3  # axis ratio and bulge-to-total below which a disk is edge-on (16 % of targets)
TIGHT_PITCH = 20.0  # degrees: arms drawn with pitch 10-30 deg; below this they are tightly wound
BULGE_BINS = (0.1, 0.3, 0.6)  # B/T edges of none / noticeable / obvious / dominant
MORPHOLOGY = {
    "gz_featured": (2, "1 if the target shows features or a disk (arms, knots or an edge-on disk), 0 if smooth"),
    "gz_edge_on": (2, f"1 if a disk-dominated target (B/T < {EDGE_ON_BT}) is seen edge-on: axis ratio "
                      f"(1 - |g|) / (1 + |g|) < {EDGE_ON_Q}"),
    "gz_spiral": (2, "1 if the target has spiral arms and is not edge-on; -1 (not asked) if edge-on"),
    "gz_arms_tight": (2, f"for spirals: 1 if the arms' pitch angle < {TIGHT_PITCH} deg (tightly wound), 0 if "
                         "looser; -1 for other galaxies"),
    "gz_clumpy": (2, "1 if the target has star-forming knots (clumps)"),
    "gz_bulge": (4, f"bulge prominence from B/T in r: 0 none (< {BULGE_BINS[0]}), 1 noticeable, 2 obvious "
                    f"(>= {BULGE_BINS[1]}), 3 dominant (>= {BULGE_BINS[2]})"),
    "gz_neighbour": (2, "1 if a galaxy at most 2 mag fainter than the target lies within 5\" (a close neighbour "
                        "or merger candidate; the scenes place neighbours at random: projections, not mergers)"),
}


@functools.lru_cache(maxsize=1)
def survey():
    """galcheat's Euclid VIS survey and filter."""
    from galcheat import get_survey

    s = get_survey(SURVEY)
    return s, s.get_filter(FILTER)


def space_params() -> dict:
    """The space imager's numbers, all from galcheat (lengths in arcsec, zero point in AB mag for 1 e-/s)."""
    s, f = survey()
    mirror_area = math.pi * (s.mirror_diameter.to_value("m") / 2) ** 2
    return {"pixel_native": s.pixel_scale.to_value("arcsec"), "psf_fwhm": f.psf_fwhm.to_value("arcsec"),
            "zeropoint": f.zeropoint.value, "exposure_s": f.full_exposure_time.to_value("s"),
            "sky_mag_arcsec2": f.sky_brightness.value, "wavelength_nm": f.effective_wavelength.to_value("nm"),
            "mirror_diameter_m": s.mirror_diameter.to_value("m"),
            # BTK: galcheat's obscuration is an area; the Airy's is linear, from the effective-area ratio
            "obscuration": math.sqrt(1 - s.effective_area.to_value("m2") / mirror_area)}


def space_pixel() -> float:
    return space_params()["pixel_native"] * SPACE_OVERSAMPLE


def space_zp() -> float:
    """Exposure zero point (AB mag giving 1 count = 1 e- in the full exposure)."""
    p = space_params()
    return p["zeropoint"] + 2.5 * math.log10(p["exposure_s"])


def space_sky_counts() -> float:
    """Sky per stored (binned) pixel, in e-."""
    p = space_params()
    return 10 ** (-0.4 * (p["sky_mag_arcsec2"] - 2.5 * math.log10(space_pixel() ** 2) - space_zp()))


def space_sky_sigma() -> float:
    """Background noise per stored pixel in nanomaggies."""
    return math.sqrt(space_sky_counts()) * 10 ** (-0.4 * (space_zp() - galaxies.IMAGE_ZP))


@functools.lru_cache(maxsize=1)
def psf_object():
    """The VIS PSF as a GalSim object in arcsec (BTK's Kolmogorov x Airy)."""
    import galsim

    p = space_params()
    lam_over_diam = math.degrees(p["wavelength_nm"] * 1e-9 / p["mirror_diameter_m"]) * 3600
    return galsim.Convolve(galsim.Kolmogorov(fwhm=p["psf_fwhm"]),
                           galsim.Airy(lam_over_diam=lam_over_diam, obscuration=p["obscuration"])).withFlux(1.0)


@functools.lru_cache(maxsize=4)
def _psf_table(grid_pixel: float):
    import galsim

    psf = psf_object()
    k = np.linspace(0.0, np.pi * math.sqrt(2) * 1.001, PSF_TABLE)  # radians per grid pixel, the FFT grid's corner
    return k, np.array([psf.kValue(galsim.PositionD(kk / grid_pixel, 0.0)).real for kk in k])


def psf_k(k, grid_pixel: float | None = None):
    """The VIS PSF's Fourier transform at |k| (radians per render-grid pixel, grid pixel in arcsec)."""
    table = _psf_table(grid_pixel or space_params()["pixel_native"])
    return np.interp(k, *table)


@functools.lru_cache(maxsize=1)
def vis_mix() -> tuple:
    """(weights (3,), rms mag error): VIS maggies ~ w . (g, r, z) maggies, non-negative least squares over SkyPy's
    five kcorrect templates redshifted to 0 < z < 1.5 through speclite's Euclid-VIS and DECam 2014 curves."""
    import speclite.filters
    from scipy.optimize import nnls

    kcorrect = galaxies._import_skypy().galaxies.spectrum.kcorrect
    wave, templates = kcorrect.wavelength.to_value("AA"), kcorrect.templates.to_value("erg s-1 cm-2 AA-1")
    bands = speclite.filters.load_filters(*galaxies.FILTERS, "Euclid-VIS")
    obs = np.linspace(2900.0, 12100.0, 4000)  # one observed-frame grid covering every curve: one speclite call
    z = np.linspace(0.0, 1.5, 31)[:, None, None]
    sed = np.stack([np.interp(obs / (1 + z[i, 0, 0]), wave, t) for i in range(len(z)) for t in templates])
    maggies = bands.get_ab_maggies(sed, obs)
    m = np.stack([np.asarray(maggies[c]) for c in maggies.colnames], axis=1)
    m = m / m[:, 1:2]  # colours matter, not brightness
    w, _ = nnls(m[:, :3], m[:, 3])
    rms = float(np.sqrt(np.mean((2.5 * np.log10(m[:, :3] @ w / m[:, 3])) ** 2)))
    return tuple(float(x) for x in w), rms


def space_view(n: int) -> dict:
    """The VIS observation for ``scene.compose``."""
    w, _ = vis_mix()
    grid = space_params()["pixel_native"]
    return {"pixel": space_pixel(), "npix": SPACE_NPIX, "oversample": SPACE_OVERSAMPLE,
            "flux": 10 ** (0.4 * (space_zp() - galaxies.EXPOSURE_ZP)), "mix": np.array(w)[:, None],
            "psf_arcsec": np.full((n, 1), psf_object().calculateFWHM()),  # (sizes the FFT box)
            "psf_k": functools.partial(psf_k, grid_pixel=grid),
            "seg_threshold": math.sqrt(space_sky_counts())}


def morphology(t: dict) -> dict:
    """Galaxy-Zoo-like answers (MORPHOLOGY) from truth columns: bulge_frac, e1, e2, has_arms, has_knots,
    arm_pitch_deg, bright_neighbour_5as."""
    g = np.hypot(t["e1"], t["e2"])
    q = (1 - g) / (1 + g)
    bt = np.asarray(t["bulge_frac"])
    arms, knots = np.asarray(t["has_arms"], bool), np.asarray(t["has_knots"], bool)
    edge_on = (q < EDGE_ON_Q) & (bt < EDGE_ON_BT)
    spiral = np.where(edge_on, -1, arms)
    tight = np.where(spiral == 1, np.asarray(t["arm_pitch_deg"]) < TIGHT_PITCH, -1)
    out = {"gz_featured": arms | knots | edge_on, "gz_edge_on": edge_on, "gz_spiral": spiral,
           "gz_arms_tight": tight, "gz_clumpy": knots, "gz_bulge": np.digitize(bt, BULGE_BINS),
           "gz_neighbour": np.asarray(t["bright_neighbour_5as"])}
    return {k: np.asarray(v).astype(np.int8) for k, v in out.items()}


def simulate(truth: dict, seed: int, block: int, progress: bool = True):
    """Ground (N, 3, 64, 64) and space (N, 1, 84, 84) float16 images in nanomaggies, spectra (N, 512) float32,
    the ground segmentation map and the scene and morphology columns."""
    n = len(truth["z"])
    (ground, space), seg, cols, _ = scene.compose(truth, seed, block, progress, chunk=CHUNK, morphology=True,
                                                  views=[scene.decam_view(truth), space_view(n)])
    sky_g = scene.sky_counts()[None, :, None, None]
    sky_s, to_nmgy = space_sky_counts(), 10 ** (-0.4 * (space_zp() - galaxies.IMAGE_ZP))
    spectra = np.empty((n, len(galaxies.SPEC_WAVE)), np.float32)
    out_g, out_s = np.empty(ground.shape, np.float16), np.empty(space.shape, np.float16)
    for i0 in range(0, n, 256):  # float64 temporaries of 256 scenes at a time
        sl = slice(i0, i0 + 256)
        rng = np.random.default_rng([seed, block, 8, i0 // 256])
        g, s = ground[sl].astype(np.float64), space[sl].astype(np.float64)
        g += rng.standard_normal(g.shape) * np.sqrt(sky_g + np.maximum(g, 0.0))
        s += rng.standard_normal(s.shape) * np.sqrt(sky_s + np.maximum(s, 0.0))
        out_g[sl], out_s[sl] = g * galaxies.flux_scale(), s * to_nmgy
        rows = {k: v[sl] for k, v in truth.items()}
        spec = galaxies.observed_spectrum(rows)
        sigma = np.sqrt(galaxies.SPEC_SIGMA_SKY**2 + galaxies.SPEC_GAIN * np.maximum(spec, 0.0))
        spectra[sl] = spec + sigma * rng.standard_normal(spec.shape)
    del ground, space
    cols.update(morphology({**truth, **cols}))
    cols["mag_vis"] = -2.5 * np.log10(np.stack([10 ** (-0.4 * truth[f"mag_{b}"]) for b in galaxies.BANDS], 1)
                                      @ np.array(vis_mix()[0]))
    return out_g, out_s, spectra, seg, cols


def iter_splits(sizes: dict, seed: int, progress: bool = True):
    """(split, content) one at a time (the cache writes each before the next is made)."""
    truth = galaxies.draw_population(sum(sizes.values()), seed)
    start = 0
    for block, (split, n) in enumerate(sizes.items()):
        rows = {k: v[start : start + n] for k, v in truth.items()}
        rows["id"] = np.arange(n, dtype=np.int64)
        ground, space, spectra, seg, cols = simulate(rows, seed, block, progress)
        yield split, {"images": ground, "space": space, "spectra": spectra, "segmentation": seg,
                      "wavelength": galaxies.SPEC_WAVE.astype(np.float32), "truth": {**rows, **cols}}
        del ground, space, spectra, seg, cols
        start += n


def config() -> dict:
    w, rms = vis_mix()
    return {**scene.config(), "images": "ground: DECam g, r, z as galaxies (float16 storage)",
            "space": {"survey": f"galcheat {SURVEY} filter {FILTER}", **space_params(),
                      "pixel_stored": space_pixel(), "npix": SPACE_NPIX, "exposure_zp": space_zp(),
                      "sky_sigma_nmgy": space_sky_sigma(), "psf": "BTK: Kolmogorov(fwhm) x Airy(lam/D, obscuration)",
                      "psf_fwhm_total": psf_object().calculateFWHM(), "vis_from_grz_weights": list(w),
                      "vis_from_grz_rms_mag": rms, "storage": "float16 nanomaggies per 0.2\" pixel"},
            "morphology": {k: v[1] for k, v in MORPHOLOGY.items()}}


def _spec():
    from ..data.specs import SimulatedSpec

    return SimulatedSpec(
        name="galaxies-multi", version=VERSION,
        description="galaxies scenes seen by two instruments from the same scene truth: DECam g,r,z 64x64 (0.262\") "
                    "and Euclid VIS 84x84 (0.2\", galcheat parameters, Kolmogorov x Airy PSF), the target's "
                    "spectrum, and Galaxy-Zoo-like morphology answers in the truth",
        tracks=("multimodal",),
        sizes={"full": {"train": 10000, "test": 2000}, "fast": {"train": 200, "test": 100}},
        generate=iter_splits, config=config)


DATASETS = [_spec()]

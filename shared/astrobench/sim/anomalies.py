"""The ``galaxies-anomaly`` dataset: ``galaxies`` scenes with injected instrumental and astrophysical anomalies.

Every image starts as a normal ``galaxies`` scene (:func:`astrobench.sim.scene.simulate`: the target with its
neighbours, background galaxies, unsaturated stars, knots and spiral arms, all of which are normal). A few are then
altered, in exposure counts before the
conversion to nanomaggies, by one of eight generators (parameters in :data:`PARAMS`, documented in
the card ``data/cards/galaxies-anomaly.md``):

instrumental
  ``satellite_trail``   a straight line across the stamp in every band, Gaussian cross-section
  ``cosmic_ray``        1-3 sharp tracks (not PSF-convolved) in one band only
  ``bad_pixels``        hot pixels, a hot column segment or a dead column, in one band
  ``saturation_bleed``  a bright star clipped at full well, its excess charge bled along columns
  ``tracking_error``    the telescope drifts during one band's exposure: that band is trailed
astrophysical
  ``lensed_arc``        the galaxy is a singular isothermal sphere lens: ray-shot background source
  ``merger``            a second galaxy 1-4" away (a double nucleus at the small end); chance projections of a
                        neighbour at that distance also occur in normal scenes (``bright_neighbour_5as``), as on
                        the sky: the hardest type to tell apart
  ``transient``         a supernova-like point source (the PSF) offset from the nucleus

Astrophysical light gets its own Poisson noise; detector effects (cosmic rays, bad pixels,
saturation) are added after the noise, as on a real detector.

The train split is unlabelled with ~1 % contamination (as real survey data would be); the test
split holds ~4 % anomalies, equally split among the types, and only its truth table has the
labels (``is_anomaly``, ``anomaly_type``, ``anomaly_code``, ``anomaly_snr``).
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from . import galaxies, render, scene

VERSION = "2.0.0"
NAME = "galaxies-anomaly"
TYPES = ("satellite_trail", "cosmic_ray", "bad_pixels", "saturation_bleed", "tracking_error",
         "lensed_arc", "merger", "transient")
INSTRUMENTAL = TYPES[:5]
FRACTION = {"train": 0.01, "test": 0.04}  # unlabelled contamination in train; labelled anomalies in test
# Full well in exposure counts (sky included): above the brightest normal galaxy's and star's peak (stars stop
# at r = 17, ~5e4 counts in z), so only injected stars saturate.
FULL_WELL = 1.0e5
PARAMS = {
    "satellite_trail": {"peak_snr_r": (3.0, 30.0), "width_sigma_px": (0.8, 2.0), "max_offset_px": 20,
                        "colour_g_r": 0.44, "colour_r_z": 0.30, "note": "solar colours, all bands"},
    "cosmic_ray": {"hits": (1, 3), "length_px": (1, 12), "single_pixel_prob": 0.35,
                   "amplitude_snr": (15.0, 300.0), "bands": 1},
    "bad_pixels": {"variants": ("hot_pixels", "hot_column", "dead_column"), "hot_pixels": (3, 20),
                   "hot_pixel_snr": (8.0, 200.0), "hot_column_snr": (3.0, 15.0), "dead_read_noise": 5.0,
                   "bands": 1},
    "saturation_bleed": {"full_well_counts": FULL_WELL, "peak_over_full_well": (2.0, 50.0),
                         "offset_px": (8.0, 24.0), "colour_g_r": (0.5, 1.2), "colour_r_z": (0.2, 0.6)},
    "tracking_error": {"drift_px": (4.0, 12.0), "steps": 16, "bands": 1},
    "lensed_arc": {"theta_e_arcsec": (1.0, 2.5), "source_r_mag": (22.0, 24.0), "source_hlr_arcsec": (0.1, 0.3),
                   "beta_over_theta_e": (0.0, 0.5), "source_q": (0.5, 1.0), "colour_g_r": (0.0, 0.5),
                   "colour_r_z": (-0.1, 0.4), "oversample": 4, "hosts": "red-sequence galaxies"},
    "merger": {"separation_arcsec": (1.0, 4.0), "flux_ratio": (0.25, 1.0), "companion": "another draw"},
    "transient": {"delta_mag_vs_host": (0.0, 2.5), "offset_over_hlr": (0.5, 2.0), "min_offset_px": 2.0,
                  "colour_g_r": (-0.2, 0.4), "colour_r_z": (-0.3, 0.3)},
}
ANOMALY_COLUMNS = ("is_anomaly", "anomaly_type", "anomaly_code", "anomaly_snr")
NPIX = galaxies.NPIX


def config() -> dict:
    base = scene.config()
    base.update(base_dataset="galaxies", types=list(TYPES), instrumental=list(INSTRUMENTAL),
                fraction=FRACTION, params=PARAMS,
                labels="test truth only: is_anomaly, anomaly_type, anomaly_code (0 = normal), anomaly_snr")
    return base


# ---------------------------------------------------------------- helpers (all in exposure counts)


def _mag_ratios(g_r: float, r_z: float) -> np.ndarray:
    """Flux in g, r, z relative to r for the given colours (all bands share one zero point)."""
    return np.array([10 ** (-0.4 * g_r), 1.0, 10 ** (0.4 * r_z)])


def _row_params(row: dict) -> dict:
    return galaxies.render_params({k: np.atleast_1d(v) for k, v in row.items()})


def point_sources(row: dict, flux: np.ndarray, dx, dy) -> np.ndarray:
    """Noiseless PSF images (K, 3, 64, 64) of point sources with band fluxes ``flux`` (K, 3) at stamp
    offsets (dx, dy) (pixels from the stamp centre), with the galaxy's own PSF: the renderer with a
    vanishing profile size. Injected objects sit far from the centre, so every render here uses the
    full padded box (the adaptive box assumes a centred object)."""
    p = _row_params(row)
    dx, dy = np.atleast_1d(dx), np.atleast_1d(dy)
    k = len(dx)
    params = {"flux_bulge": np.zeros((k, 3)), "flux_disk": np.asarray(flux, float).reshape(k, 3),
              "hlr_bulge": np.full(k, 1e-3), "hlr_disk": np.full(k, 1e-3), "g1": np.zeros(k), "g2": np.zeros(k),
              "psf_fwhm": np.repeat(p["psf_fwhm"], k, axis=0), "dx": dx, "dy": dy}
    return render.render(params, npix=NPIX, workers=1, pad=render.PAD)


def _with_poisson(signal: np.ndarray, rng) -> np.ndarray:
    """Add a noiseless astrophysical signal's own Poisson noise (Gaussian approximation, as ``galaxies``)."""
    return signal + np.sqrt(np.maximum(signal, 0.0)) * rng.standard_normal(signal.shape)


def _loguniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _grid():
    y, x = np.mgrid[0:NPIX, 0:NPIX].astype(float)
    return x, y


# ---------------------------------------------------------------- the eight generators
# Each takes the noisy sky-subtracted counts (3, 64, 64), the galaxy's truth row and an rng, and
# returns (new counts, noiseless signal added) so that the anomaly's matched-filter S/N can be recorded.


def satellite_trail(counts, row, rng, sky, **_):
    p = PARAMS["satellite_trail"]
    phi = rng.uniform(0, np.pi)
    offset = rng.uniform(-p["max_offset_px"], p["max_offset_px"])
    width = rng.uniform(*p["width_sigma_px"])
    x, y = _grid()
    c = (NPIX - 1) / 2
    dist = (x - c) * np.sin(phi) - (y - c) * np.cos(phi) - offset
    peak = _loguniform(rng, *p["peak_snr_r"]) * np.sqrt(sky[1])
    amp = peak * _mag_ratios(p["colour_g_r"], p["colour_r_z"])
    signal = amp[:, None, None] * np.exp(-0.5 * (dist / width) ** 2)[None]
    return counts + _with_poisson(signal, rng), signal


def _deposit_track(shape, rng, length, amplitude):
    """A straight, one-pixel-wide charge track (cosmic ray) of ``length`` pixels."""
    img = np.zeros(shape)
    x0, y0 = rng.uniform(0, NPIX - 1, 2)
    phi = rng.uniform(0, 2 * np.pi)
    t = np.linspace(0.0, length - 1, max(1, int(4 * length)))
    xs = np.clip(np.rint(x0 + t * np.cos(phi)), 0, NPIX - 1).astype(int)
    ys = np.clip(np.rint(y0 + t * np.sin(phi)), 0, NPIX - 1).astype(int)
    np.add.at(img, (ys, xs), 1.0)
    return amplitude * img / img.max()


def cosmic_ray(counts, row, rng, sky, **_):
    p = PARAMS["cosmic_ray"]
    band = rng.integers(3)
    signal = np.zeros_like(counts)
    for _hit in range(rng.integers(p["hits"][0], p["hits"][1] + 1)):
        length = 1 if rng.uniform() < p["single_pixel_prob"] else rng.uniform(2, p["length_px"][1])
        amp = _loguniform(rng, *p["amplitude_snr"]) * np.sqrt(sky[band])
        signal[band] += _deposit_track(counts.shape[1:], rng, length, amp)
    return counts + signal, signal


def bad_pixels(counts, row, rng, sky, **_):
    p = PARAMS["bad_pixels"]
    band = rng.integers(3)
    variant = p["variants"][rng.integers(3)]
    new = counts.copy()
    if variant == "hot_pixels":
        n = rng.integers(p["hot_pixels"][0], p["hot_pixels"][1] + 1)
        ys, xs = rng.integers(0, NPIX, (2, n))
        amp = np.exp(rng.uniform(*np.log(p["hot_pixel_snr"]), n)) * np.sqrt(sky[band])
        np.add.at(new[band], (ys, xs), amp)
    else:
        col, start = rng.integers(0, NPIX, 2)
        rows = slice(start, NPIX) if rng.uniform() < 0.5 else slice(0, start + 1)  # to the readout edge
        if variant == "hot_column":
            new[band, rows, col] += rng.uniform(*p["hot_column_snr"]) * np.sqrt(sky[band])
        else:  # a dead column reads zero: minus the sky once the sky is subtracted
            seg = new[band, rows, col]
            new[band, rows, col] = -sky[band] + p["dead_read_noise"] * rng.standard_normal(seg.shape)
    return new, new - counts


def bleed(total: np.ndarray, full_well: float) -> np.ndarray:
    """Clip one band (H, W) at ``full_well`` and move each column's excess charge up and down the
    column, filling pixels to full well outward from the saturated run (charge reaching the edge is lost)."""
    out = total.copy()
    for col in np.flatnonzero((total > full_well).any(axis=0)):
        v = out[:, col]
        sat = np.flatnonzero(v > full_well)
        excess = float(np.sum(v[sat] - full_well))
        v[sat] = full_well
        lo, hi = sat.min(), sat.max()
        for step, start in ((-1, lo - 1), (1, hi + 1)):
            left, i = excess / 2, start
            while left > 0 and 0 <= i < len(v):
                room = max(full_well - v[i], 0.0)
                add = min(room, left)
                v[i] += add
                left -= add
                i += step
    return out


def saturation_bleed(counts, row, rng, sky, **_):
    p = PARAMS["saturation_bleed"]
    r = rng.uniform(*p["offset_px"])
    phi = rng.uniform(0, 2 * np.pi)
    dx, dy = row["dx"] + r * np.cos(phi), row["dy"] + r * np.sin(phi)
    colours = _mag_ratios(rng.uniform(*p["colour_g_r"]), rng.uniform(*p["colour_r_z"]))
    unit = point_sources(row, colours[None], dx, dy)[0]  # r flux 1
    flux_r = _loguniform(rng, *p["peak_over_full_well"]) * p["full_well_counts"] / unit[1].max()
    star = unit * flux_r
    raw = counts + _with_poisson(star, rng) + sky[:, None, None]  # what the detector holds, sky included
    new = np.stack([bleed(b, p["full_well_counts"]) for b in raw]) - sky[:, None, None]
    return new, new - counts


def tracking_error(counts, row, rng, sky, **_):
    p = PARAMS["tracking_error"]
    band = rng.integers(3)
    length, phi = rng.uniform(*p["drift_px"]), rng.uniform(0, 2 * np.pi)
    t = np.linspace(-0.5, 0.5, p["steps"]) * length
    base = _row_params(row)
    k = len(t)
    params = {key: np.repeat(val, k, axis=0) for key, val in base.items()}
    params["dx"] = base["dx"][0] + t * np.cos(phi)
    params["dy"] = base["dy"][0] + t * np.sin(phi)
    trailed = render.render(params, npix=NPIX, workers=1, pad=render.PAD).mean(axis=0)[band]
    still = render.render(base, npix=NPIX, workers=1, pad=render.PAD)[0, band]
    new = counts.copy()  # the band is re-exposed: a fresh noise draw with the same noise model
    new[band] = trailed + np.sqrt(sky[band] + np.maximum(trailed, 0.0)) * rng.standard_normal(trailed.shape)
    signal = np.zeros_like(counts)
    signal[band] = trailed - still
    return new, signal


def sis_lensed_source(row: dict, theta_e: float, beta: tuple, hlr: float, q: float, pa: float,
                      flux: np.ndarray, oversample: int = 4) -> np.ndarray:
    """Noiseless image (3, 64, 64) in counts of an elliptical exponential source (half-light radius ``hlr``,
    axis ratio ``q``, angle ``pa``, band fluxes ``flux``) at source-plane offset ``beta`` (pixels) behind a
    singular isothermal sphere of Einstein radius ``theta_e`` (pixels) centred on the galaxy.

    Ray shooting: every sub-pixel theta maps to beta = theta - theta_e theta / |theta|; surface brightness
    is conserved, so the pixel value is the source's mean surface brightness over the pixel's rays, which
    includes the magnification. The result is convolved with the galaxy's PSF."""
    from scipy.signal import fftconvolve

    rs = hlr / 1.678  # exponential: half-light radius = 1.678 scale lengths
    sub = (np.arange(NPIX * oversample) + 0.5) / oversample - 0.5  # sub-pixel centres, pixel coordinates
    tx = sub[None, :] - ((NPIX - 1) / 2 + row["dx"])
    ty = sub[:, None] - ((NPIX - 1) / 2 + row["dy"])
    rad = np.maximum(np.hypot(tx, ty), 1e-9)
    sx, sy = tx - theta_e * tx / rad - beta[0], ty - theta_e * ty / rad - beta[1]
    u = sx * np.cos(pa) + sy * np.sin(pa)
    v = -sx * np.sin(pa) + sy * np.cos(pa)
    sb = np.exp(-np.sqrt(u**2 * q + v**2 / q) / rs) / (2 * np.pi * rs**2)  # unit total flux in the source plane
    img = sb.reshape(NPIX, oversample, NPIX, oversample).mean(axis=(1, 3))  # x 1 pixel area
    kernel = point_sources(row, np.ones((1, 3)), -0.5, -0.5)[0]  # PSF centred on pixel (31, 31): 'same' aligns
    return np.stack([fftconvolve(img, kernel[b], mode="same") * flux[b] for b in range(3)])


def lensed_image(row: dict, rng) -> np.ndarray:
    """A random lensed background galaxy (parameters from PARAMS["lensed_arc"]) behind ``row``."""
    p = PARAMS["lensed_arc"]
    scale = galaxies.PIXEL_SCALE
    theta_e = rng.uniform(*p["theta_e_arcsec"]) / scale
    beta = rng.uniform(*p["beta_over_theta_e"]) * theta_e
    phi = rng.uniform(0, 2 * np.pi)
    hlr = rng.uniform(*p["source_hlr_arcsec"]) / scale
    q, pa = rng.uniform(*p["source_q"]), rng.uniform(0, np.pi)
    flux = 10 ** (-0.4 * (rng.uniform(*p["source_r_mag"]) - galaxies.EXPOSURE_ZP))
    flux = flux * _mag_ratios(rng.uniform(*p["colour_g_r"]), rng.uniform(*p["colour_r_z"]))
    return sis_lensed_source(row, theta_e, (beta * np.cos(phi), beta * np.sin(phi)), hlr, q, pa, flux,
                             p["oversample"])


def lensed_arc(counts, row, rng, sky, **_):
    signal = lensed_image(row, rng)
    return counts + _with_poisson(signal, rng), signal


def merger(counts, row, rng, sky, companion=None, **_):
    p = PARAMS["merger"]
    sep = rng.uniform(*p["separation_arcsec"]) / galaxies.PIXEL_SCALE
    phi = rng.uniform(0, 2 * np.pi)
    comp = {k: np.atleast_1d(v).copy() for k, v in companion.items()}
    ratio = rng.uniform(*p["flux_ratio"])
    shift = -2.5 * np.log10(ratio) + row["mag_r"] - comp["mag_r"]  # companion flux = ratio x primary's (r)
    for band in "grz":
        comp[f"mag_{band}"] = comp[f"mag_{band}"] + shift
    for key in ("psf_fwhm_g", "psf_fwhm_r", "psf_fwhm_z"):  # same exposure, same PSF
        comp[key] = np.atleast_1d(row[key])
    comp["dx"] = np.atleast_1d(row["dx"] + sep * np.cos(phi))
    comp["dy"] = np.atleast_1d(row["dy"] + sep * np.sin(phi))
    signal = render.render(galaxies.render_params(comp), npix=NPIX, workers=1, pad=render.PAD)[0]
    return counts + _with_poisson(signal, rng), signal


def transient(counts, row, rng, sky, **_):
    p = PARAMS["transient"]
    hlr = row["hlr_arcsec"] / galaxies.PIXEL_SCALE
    r = max(rng.uniform(*p["offset_over_hlr"]) * hlr, p["min_offset_px"])
    phi = rng.uniform(0, 2 * np.pi)
    mag = row["mag_r"] + rng.uniform(*p["delta_mag_vs_host"])
    flux = 10 ** (-0.4 * (mag - galaxies.EXPOSURE_ZP))
    flux = flux * _mag_ratios(rng.uniform(*p["colour_g_r"]), rng.uniform(*p["colour_r_z"]))
    signal = point_sources(row, flux[None], row["dx"] + r * np.cos(phi), row["dy"] + r * np.sin(phi))[0]
    return counts + _with_poisson(signal, rng), signal


GENERATORS = {name: globals()[name] for name in TYPES}


def inject(kind: str, image: np.ndarray, row: dict, rng, companion: dict | None = None):
    """Apply anomaly ``kind`` to one image (3, 64, 64) in nanomaggies; returns (new image, matched-filter S/N)."""
    fs = galaxies.flux_scale()
    sky = scene.sky_counts()
    counts = np.asarray(image, dtype=np.float64) / fs
    new, signal = GENERATORS[kind](counts, row, rng, sky, companion=companion)
    var = sky[:, None, None] + np.maximum(counts, 0.0)
    snr = float(np.sqrt(np.sum(signal**2 / var)))
    return (new * fs).astype(np.float32), snr


# ---------------------------------------------------------------- dataset


def plan(n: int, fraction: float, is_red: np.ndarray, rng) -> np.ndarray:
    """Anomaly code per row (0 = normal, i + 1 = TYPES[i]): round(fraction n) anomalies, types in equal
    shares (round-robin), lensed arcs on red-sequence hosts (massive ellipticals lens)."""
    n_anom = round(fraction * n)
    kinds = np.array([1 + i % len(TYPES) for i in range(n_anom)], dtype=np.int8)
    codes = np.zeros(n, np.int8)
    lens = TYPES.index("lensed_arc") + 1
    n_lens = int(np.sum(kinds == lens))
    red = np.flatnonzero(is_red)
    lens_rows = rng.choice(red, size=n_lens, replace=False) if len(red) >= n_lens else rng.choice(n, n_lens, False)
    codes[lens_rows] = lens
    free = np.setdiff1d(np.arange(n), lens_rows)
    others = kinds[kinds != lens]
    codes[rng.choice(free, size=len(others), replace=False)] = others
    return codes


def generate(sizes: dict, seed: int, progress: bool = True) -> dict:
    """All splits: {split: {"images", "truth"}}; test truth carries the anomaly labels."""
    return dict(iter_splits(sizes, seed, progress))


def iter_splits(sizes: dict, seed: int, progress: bool = True):
    """``generate``'s splits one at a time, (split, content): the dataset cache writes each before the next is
    made, so the full set (30 000 stamps, 1.5 GB of float32) never sits in memory at once (Binder's 2 GB)."""
    total = sum(sizes.values())
    n_comp = sum(round(FRACTION[s] * n) for s, n in sizes.items())  # >= the number of mergers
    pop = galaxies.draw_population(total + n_comp, seed)
    companions = {k: v[total:] for k, v in pop.items()}
    start, used = 0, 0
    for block, (split, n) in enumerate(sizes.items()):
        rows = {k: v[start : start + n] for k, v in pop.items()}
        rows["id"] = np.arange(n, dtype=np.int64)
        images, _, _, cols = scene.simulate(rows, seed, block, progress=progress)
        rows.update(cols)
        rng = np.random.default_rng([seed, block, 4242])
        codes = plan(n, FRACTION[split], rows["is_red"], rng)
        snr = np.zeros(n)
        todo = np.flatnonzero(codes)
        for i in tqdm(todo, desc=f"injecting anomalies ({split})", disable=not progress):
            kind = TYPES[codes[i] - 1]
            row = {k: v[i] for k, v in rows.items()}
            comp = None
            if kind == "merger":
                comp = {k: v[used] for k, v in companions.items()}
                used += 1
            img_rng = np.random.default_rng([seed, block, 4243, int(i)])
            images[i], snr[i] = inject(kind, images[i], row, img_rng, companion=comp)
        if split == "test":  # labels only here; the train contamination stays unlabelled
            rows["is_anomaly"] = (codes > 0).astype(np.int8)
            rows["anomaly_type"] = np.array(["none", *TYPES])[codes].astype("U16")
            rows["anomaly_code"] = codes
            rows["anomaly_snr"] = snr
        yield split, {"images": images, "truth": rows}
        del images, rows
        start += n


def _spec():
    from ..data.specs import SimulatedSpec

    return SimulatedSpec(
        name=NAME,
        version=VERSION,
        description="galaxies scenes with 8 injected anomaly types (satellite trails, cosmic rays, bad pixels, "
                    "saturation bleed, tracking errors, lensed arcs, mergers, transients); labels in test only",
        tracks=("anomaly",),
        sizes={"full": {"train": 20000, "test": 10000}, "fast": {"train": 800, "test": 400}},
        generate=iter_splits,
        config=config,
        citation="Astro x ML hackathon starter kit; SkyPy (Amara+2021); speclite; kcorrect (Blanton & Roweis 2007)",
    )


DATASETS = [_spec()]

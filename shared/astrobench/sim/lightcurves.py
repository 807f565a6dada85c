"""Multi-band light curves observed by a three-site telescope network (``lightcurves``).

Observing (card: ``data/cards/lightcurves.md``): 12 fields, each observed from Cerro Tololo, SAAO Sutherland and
Siding Spring only while the Sun is below -12 deg and the field below airmass 2 (geometry from astropy, computed
once per field), on clear nights (per-site clear fraction), 1-3 visits a night, each in g or r. Photometry: a CCD
aperture model (source, sky and read noise; seeing and extinction grow with airmass), calibrated to AB micro-Jansky
with a residual per-site zero point and slow drift. Classes: ``sim/variability.py``; instrumental anomalies here.
"""

from __future__ import annotations

import functools

import numpy as np
from tqdm.auto import tqdm

from . import variability as var

VERSION = "1.0.0"
T_START = "2024-03-01T00:00:00"  # inside the bundled IERS tables: no download
BASELINE_D, STEP_D = 180.0, 10.0 / 1440
SUN_ALT_MAX, AIRMASS_MAX = -12.0, 2.0
# name, longitude, latitude [deg], height [m], clear-night fraction, median zenith seeing ["]
SITES = (("Cerro Tololo", -70.8065, -30.1690, 2207, 0.80, 1.1),
         ("SAAO Sutherland", 20.8107, -32.3783, 1798, 0.65, 1.5),
         ("Siding Spring", 149.0612, -31.2733, 1165, 0.60, 1.7))
FIELDS = tuple((90.0 + 20.0 * i, -60.0 + 50.0 * ((i * 7) % 12) / 11) for i in range(12))  # (RA, Dec) deg
BANDS = ("g", "r")
WAVELENGTH_NM = var.WAVELENGTH_NM
ZP_1S = np.array([23.6, 23.8])  # AB mag giving 1 e-/s on a 1-m telescope
EXTINCTION = np.array([0.20, 0.12])  # mag per airmass; calibration removes the mean, not its scatter
SKY_MAG = np.array([21.8, 20.9])  # dark sky, mag per arcsec^2 at the zenith
EXPTIME, PIXEL_ARCSEC, READ_NOISE = 60.0, 0.39, 8.0
COMMON = {"constant": 0.72, "eclipsing_binary": 0.06, "delta_scuti": 0.05, "lpv": 0.04, "flare": 0.04,
          "agn": 0.03, "transit": 0.02, "rr_lyrae_ab": 0.02, "rr_lyrae_c": 0.01, "cepheid": 0.01}
RARE = ("sn_ia", "sn_cc", "microlensing", "cloudy_night", "zp_jump", "satellite_glint", "tracking_failure")
CLASSES = tuple(COMMON) + RARE
RARE_FRACTION = {"train": 0.01, "test": 0.04}
PARAMS = ("rp", "a_rs", "inc", "u1", "u2", "r1", "r2", "teff1", "teff2", "q", "feh", "phi31", "period1",
          "z", "sf_inf", "tau", "m_bh", "abs_mag", "t_e", "u0", "blend_r", "n_flares", "tau_rise", "tau_fall",
          "gamma", "anomaly_site", "anomaly_time", "anomaly_size")


# --------------------------------------------------------------------------- where and when the network looks


@functools.cache
def geometry(field: int) -> dict:
    """Sun and target altitude (deg) per site on the 10-min grid over the baseline, for one field.

    astropy gives the apparent sidereal time at the start, the Sun's apparent place once a day and the field's
    apparent place (TETE, the frame of apparent sidereal time); altitudes then follow from the hour angle by
    spherical trigonometry on the grid (no refraction; within 0.05 deg of astropy's AltAz: tested)."""
    import astropy.units as u
    from astropy.coordinates import TETE, SkyCoord, get_sun
    from astropy.time import Time
    from astropy.utils import iers

    with iers.conf.set_temp("auto_download", False):
        t0 = Time(T_START, scale="utc")
        grid = np.arange(0.0, BASELINE_D, STEP_D)
        days = np.arange(0.0, BASELINE_D + 2)
        sun = get_sun(t0 + days * u.day).transform_to(TETE(obstime=t0 + days * u.day))
        target = SkyCoord(*FIELDS[field], unit="deg").transform_to(TETE(obstime=t0 + BASELINE_D / 2 * u.day))
        gast0 = t0.sidereal_time("apparent", "greenwich").deg
    gast = gast0 + 360.985647366 * grid  # sidereal degrees per solar day
    sun_ra = np.interp(grid, days, np.unwrap(sun.ra.rad))
    sun_dec = np.interp(grid, days, sun.dec.rad)
    out = {"grid": grid, "sun_alt": [], "alt": []}
    for _, lon, lat, *_ in SITES:
        last = np.radians(gast + lon)
        out["sun_alt"].append(_altitude(lat, last - sun_ra, sun_dec))
        out["alt"].append(_altitude(lat, last - target.ra.rad, target.dec.rad))
    return {k: np.array(v) for k, v in out.items()}


def _altitude(lat_deg, hour_angle, dec):
    lat = np.radians(lat_deg)
    return np.degrees(np.arcsin(np.sin(lat) * np.sin(dec) + np.cos(lat) * np.cos(dec) * np.cos(hour_angle)))


def observable(field: int) -> np.ndarray:
    """(sites, grid) bool: dark enough and below the airmass limit."""
    g = geometry(field)
    return (g["sun_alt"] < SUN_ALT_MAX) & (1 / np.sin(np.radians(np.clip(g["alt"], 1e-3, 90))) < AIRMASS_MAX)


def weather(seed: int) -> np.ndarray:
    """(sites, nights) bool: a clear night at each site (one sky for all fields)."""
    rng = np.random.default_rng([seed, 7001])
    clear = np.array([s[4] for s in SITES])[:, None]
    return rng.random((len(SITES), int(BASELINE_D) + 2)) < clear


@functools.lru_cache(maxsize=64)
def schedule(field: int, seed: int) -> dict:
    """Visits of one field, sorted in time: 1-3 per clear night per site, each one exposure in g or r."""
    g, ok, clear = geometry(field), observable(field), weather(seed)
    rng = np.random.default_rng([seed, 7002, field])
    times, sites = [], []
    for s, (_, lon, *_rest) in enumerate(SITES):
        night = np.floor(g["grid"] + lon / 360.0 + 0.5).astype(int)  # local noon to noon
        idx = np.flatnonzero(ok[s] & clear[s, np.clip(night, 0, clear.shape[1] - 1)])
        for chunk in np.split(idx, np.flatnonzero(np.diff(night[idx])) + 1):
            if chunk.size:
                k = min(chunk.size, rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
                i = np.sort(rng.choice(chunk, k, replace=False))
                # start anywhere in the 10-min step only when its end is observable too: never out of limits
                nxt = ok[s, np.minimum(i + 1, ok.shape[1] - 1)]
                times.append(g["grid"][i] + rng.uniform(0, STEP_D, k) * nxt)
                sites.append(np.full(k, s))
    t = np.concatenate(times)
    order = np.argsort(t)
    t, s = t[order], np.concatenate(sites)[order]
    band = (rng.random(t.size) < 0.55).astype(int)  # one exposure per visit, r a little more often than g
    alt = np.array([np.interp(t, g["grid"], g["alt"][k]) for k in range(len(SITES))])[s, np.arange(t.size)]
    seeing = np.array([x[5] for x in SITES])[s] * np.exp(0.2 * rng.standard_normal(t.size))
    return {"time": t, "band": band, "site": s, "airmass": 1 / np.sin(np.radians(alt)),
            "seeing": seeing * (1 / np.sin(np.radians(alt))) ** 0.6}


def coverage(fields=None, sites=(0, 1, 2), seed: int = 0) -> dict:
    """Sampling quality of the network: the fraction of all 24-h time the field can be observed (dark, below
    the airmass limit, clear) from at least one of ``sites``, averaged over the fields' observable season, and the
    spectral window |sum exp(2 pi i f t)|^2 / N^2 of the visits at the daily alias f = 1 c/d (1 at f = 0)."""
    frac, alias, visits = [], [], []
    for f in range(len(FIELDS)) if fields is None else fields:
        g, ok, clear = geometry(f), observable(f), weather(seed)
        up = np.zeros(g["grid"].size, bool)
        for s in sites:
            night = np.floor(g["grid"] + SITES[s][1] / 360.0 + 0.5).astype(int)
            up |= ok[s] & clear[s, night]
        season = np.flatnonzero(ok.any(0))  # first to last observable moment from any site
        frac.append(up[season[0] : season[-1] + 1].mean())
        sch = schedule(f, seed)
        t = sch["time"][np.isin(sch["site"], sites)]
        alias.append(window(t, np.array([1.0]))[0])
        visits.append(t.size)
    return {"duty_cycle": float(np.mean(frac)), "window_1cd": float(np.mean(alias)),
            "visits_per_field": float(np.mean(visits))}


def window(t, freqs):
    """Spectral window power of sampling times ``t`` at frequencies ``freqs`` (c/d), normalised to 1 at f = 0."""
    return np.abs(np.exp(2j * np.pi * np.outer(freqs, t)).sum(1)) ** 2 / t.size**2


# --------------------------------------------------------------------------- photometry


def counts_per_ujy(band, airmass):
    """Detected electrons per micro-Jansky in one exposure, after extinction and a 1-FWHM-radius aperture
    that holds 94 % of a Gaussian PSF."""
    return EXPTIME * 0.9375 * 10 ** (-0.4 * (23.9 + EXTINCTION[band] * airmass - ZP_1S[band]))


def photometry(true_ujy, band, airmass, seeing, rng):
    """Measured flux and its reported error (micro-Jansky): Poisson source + sky + read noise in the aperture."""
    cpu = counts_per_ujy(band, airmass)
    npix = np.pi * (seeing / PIXEL_ARCSEC) ** 2
    sky = 10 ** (-0.4 * (SKY_MAG[band] - ZP_1S[band])) * PIXEL_ARCSEC**2 * EXPTIME * airmass  # e- per pixel
    sigma = np.sqrt(np.clip(true_ujy, 0, None) * cpu + npix * (sky + READ_NOISE**2)) / cpu
    return true_ujy + sigma * rng.standard_normal(true_ujy.shape), sigma


def calibration(seed: int):
    """Residual zero point (sites, bands) and drift(t, site, band) in mag left by each site's calibration."""
    rng = np.random.default_rng([seed, 7003])
    zp = rng.normal(0, 0.02, (len(SITES), 2))
    slope = rng.normal(0, 0.01, (len(SITES), 2)) / 100.0  # mag per day, ~0.01 mag per 100 d
    wob, phase = rng.uniform(0.002, 0.008, (len(SITES), 1)), rng.uniform(0, 2 * np.pi, (len(SITES), 1))

    def drift(t, site, band):
        return zp[site, band] + slope[site, band] * t + wob[site, 0] * np.sin(2 * np.pi * t / 29.5 + phase[site, 0])

    return drift


def instrumental(name, t, site, mask, flux, err, true, rng):
    """Quality-flag cases on a constant star: what goes wrong at one site on one night (or from one moment)."""
    n = t.shape[0]
    pick = np.array([rng.choice(np.flatnonzero(m)) for m in mask])  # one valid visit per curve
    rows = np.arange(n)
    s0, t_hit = site[rows, pick], t[rows, pick]
    same_night = (site == s0[:, None]) & (np.abs(t - t_hit[:, None]) < 0.4) & mask
    if name == "cloudy_night":  # thin to thick cloud, changing between exposures, at one site
        size = rng.uniform(0.5, 2.0, n)
        dim = np.clip(_col(size) * (1 + 0.4 * rng.standard_normal(t.shape)), 0.1, None)
        flux = np.where(same_night, flux * 10 ** (-0.4 * dim), flux)
    elif name == "zp_jump":  # a mis-calibration at one site from one moment on
        size = rng.choice([-1, 1], n) * rng.uniform(0.1, 0.4, n)
        after = (site == s0[:, None]) & (t >= t_hit[:, None])
        flux = np.where(after, flux * 10 ** (-0.4 * _col(size)), flux)
    elif name == "satellite_glint":  # one exposure, one band: a flash in the aperture
        size = rng.uniform(1.0, 20.0, n)
        hit = np.zeros(t.shape, bool)
        hit[rows, pick] = True
        flux = np.where(hit, flux + _col(size) * true, flux)
    else:  # tracking_failure: the star trails out of the aperture for a night; more sky pixels inside
        size = rng.uniform(0.2, 0.7, n)
        flux = np.where(same_night, flux * _col(size), flux)
        err = np.where(same_night, err * rng.uniform(1.5, 3.0, (n, 1)), err)
    return flux, err, {"anomaly_site": s0.astype(float), "anomaly_time": t_hit, "anomaly_size": size}


def _col(x):
    return np.asarray(x, float)[:, None]


def variability_snr(true, err, band, mask):
    """S/N of the variability: sqrt(sum ((f - <f>_band) / sigma)^2) over valid visits, noiseless f."""
    chi2 = np.zeros(true.shape[0])
    for b in (0, 1):
        m = mask & (band == b)
        mean = (true * m).sum(1, keepdims=True) / np.maximum(m.sum(1, keepdims=True), 1)
        chi2 += (np.where(m, (true - mean) / np.where(m, err, 1), 0) ** 2).sum(1)
    return np.sqrt(chi2)


# --------------------------------------------------------------------------- the split


def make_split(n: int, rare_fraction: float, seed: int, block: int, progress: bool = False,
               fractions: dict | None = None) -> dict:
    """One split: padded arrays (n, T_max) and the truth table. Each class is drawn in batches of 2048 curves.
    ``fractions``: other shares of the common classes (the benchmark's equal shares of periodic ones)."""
    rng = np.random.default_rng([seed, block])
    n_rare = round(rare_fraction * n)
    fr = np.array([(fractions or COMMON).get(c, 0.0) for c in COMMON])
    counts = np.floor(fr / fr.sum() * (n - n_rare)).astype(int)
    counts[np.argmax(fr)] += n - n_rare - counts.sum()
    rare = np.full(len(RARE), n_rare // len(RARE))
    rare[rng.permutation(len(RARE))[: n_rare - rare.sum()]] += 1
    labels = rng.permutation(np.repeat(np.arange(len(CLASSES)), np.concatenate([counts, rare])))
    field = rng.integers(0, len(FIELDS), n)
    sch = [schedule(f, seed) for f in range(len(FIELDS))]
    t_max = max(s["time"].size for s in sch)
    cols = {}
    for key in ("time", "band", "site", "airmass", "seeing"):
        pad = np.zeros((len(FIELDS), t_max))
        for f, s in enumerate(sch):
            pad[f, : s[key].size] = s[key]
        cols[key] = pad
    valid = np.arange(t_max)[None, :] < np.array([s["time"].size for s in sch])[:, None]
    out = {"time": cols["time"][field], "band": cols["band"][field].astype(np.int8),
           "site": cols["site"][field].astype(np.int8),
           "mask": valid[field] & (rng.random((n, t_max)) > 0.03)}  # 3 % lost to defects, cosmic rays
    flux = np.zeros((n, t_max), np.float32)
    err = np.zeros((n, t_max), np.float32)
    truth = {"id": np.arange(n, dtype=np.int64), "class": np.array(CLASSES)[labels].astype("U16"),
             "is_rare": labels >= len(COMMON), "field": field.astype(np.int16)}
    for key in ("period", "amplitude", "t0", "mag", "color_gr", "snr", *PARAMS):
        truth[key] = np.full(n, np.nan)
    drift = calibration(seed)
    for c, name in enumerate(tqdm(CLASSES, desc=f"lightcurves ({n})", disable=not progress)):
        idx = np.flatnonzero(labels == c)
        crng = np.random.default_rng([seed, block, 100 + c])
        for i0 in range(0, idx.size, 2048):  # batches of 2048 curves: ~10 MB per temporary array
            sel = idx[i0 : i0 + 2048]
            t, band, site = out["time"][sel], out["band"][sel].astype(int), out["site"][sel].astype(int)
            airmass, seeing = cols["airmass"][field[sel]], cols["seeing"][field[sel]]
            model = var.MODELS.get(name, var.MODELS["constant"])
            true, params = model(t, band, out["mask"][sel], crng)
            # + 3 mmag per-visit residual of the ensemble calibration (not in flux_err: what pipelines miss)
            observed = true * 10 ** (-0.4 * (drift(t, site, band) + 0.003 * crng.standard_normal(t.shape)))
            f, e = photometry(observed, band, np.maximum(airmass, 1.0), np.maximum(seeing, 0.5), crng)
            if name in RARE[3:]:
                f, e, more = instrumental(name, t, site, out["mask"][sel], f, e, true, crng)
                params.update(more)
            m = out["mask"][sel]
            params["snr"] = variability_snr(true, e, band, m)
            flux[sel], err[sel] = np.where(m, f, 0), np.where(m, e, 0)
            for key, v in params.items():
                truth[key][sel] = v
    out["time"][~out["mask"]] = 0.0
    out.update(flux=flux, flux_err=err, truth=truth)
    return out


def generate(sizes: dict, seed: int, progress: bool = True):
    """Yields (split, content) one split at a time (the cache writes each before the next is made)."""
    for block, (split, n) in enumerate(sizes.items()):
        yield split, make_split(n, RARE_FRACTION.get(split, 0.01), seed, block, progress)


def config() -> dict:
    return {
        "t_start_utc": T_START, "baseline_d": BASELINE_D, "grid_step_d": STEP_D, "sun_alt_max_deg": SUN_ALT_MAX,
        "airmass_max": AIRMASS_MAX, "bands": list(BANDS), "wavelength_nm": WAVELENGTH_NM.tolist(),
        "sites": [dict(zip(("name", "lon", "lat", "height_m", "clear_fraction", "seeing_arcsec"), s))
                  for s in SITES], "fields_radec_deg": [list(f) for f in FIELDS],
        "zp_1s_ab": ZP_1S.tolist(), "extinction_mag_per_airmass": EXTINCTION.tolist(), "sky_mag_arcsec2":
        SKY_MAG.tolist(), "exptime_s": EXPTIME, "pixel_arcsec": PIXEL_ARCSEC, "read_noise_e": READ_NOISE,
        "flux_unit": "micro-Jansky (AB: m = 23.9 - 2.5 log10 f)", "time_unit": "days since t_start_utc",
        "class_fractions_common": COMMON, "rare_classes": list(RARE), "rare_fraction": RARE_FRACTION,
        "site_codes": {i: s[0] for i, s in enumerate(SITES)}, "band_codes": dict(enumerate(BANDS)),
    }


def _spec():
    from ..data.specs import SimulatedSpec

    return SimulatedSpec(
        name="lightcurves",
        version=VERSION,
        description="g,r light curves of variable stars, AGN, transients and instrumental anomalies observed by a "
                    "3-site network (CTIO, SAAO, Siding Spring): night, airmass, weather, calibration drift",
        tracks=("anomaly",),
        sizes={"full": {"train": 45000, "test": 6000}, "fast": {"train": 1600, "test": 400}},
        generate=generate,
        config=config,
        citation="Astro x ML hackathon starter kit; Mandel & Agol 2002; Kreidberg 2015 (batman); Jurcsik & Kovacs "
                 "1996; Cacciari+2005; Benedict+2007; McNamara 2011; MacLeod+2010; Davenport+2014; Villar+2019; "
                 "Paczynski 1986; astropy (2013, 2018, 2022)",
    )


DATASETS = [_spec()]

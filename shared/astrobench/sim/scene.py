"""Scenes, not stamps: the target galaxy with its neighbours, faint background galaxies, stars, star-forming
knots and spiral arms, as a survey cutout holds them.

Every piece is drawn from a published model and rendered in Fourier space with the same Moffat PSF and pixel
response as ``render`` (validated against GalSim in ``shared/tests/test_scene.py``):

* **Neighbours and background galaxies**: the ``galaxies`` SkyPy population drawn over the survey area the
  stamps cover, down to ``NEIGHBOUR_DEPTH`` magnitudes fainter than the sample's limit, placed at random
  (Poisson, no clustering) in the stamp and a margin around it, so blends happen at the rate the counts give.
* **Stars**: the Bahcall & Soneira (1980, ApJS 44, 73, eq. B1, V band) star-count model at a high-latitude
  field, colours from a two-population mixture (halo/thick-disk turn-off stars and M dwarfs) and V -> g by
  Jester et al. (2005); rendered as the PSF (Moffat wings included). No saturated stars: r >= STAR_BRIGHT
  (saturation bleeds are the anomaly track's artefacts).
* **Knots**: star-forming clumps as in GalSim's ``RandomKnots`` (point sources sampled from the disk profile),
  in a fraction of disks that grows with redshift and is larger for blue galaxies (Guo et al. 2015, ApJ 800, 39:
  clumpy fractions of star-forming galaxies ~ 15 % locally to ~ 55 % at z ~ 2). Knots take a share of the disk's
  flux, larger in g than in z: bluer knots, the same total SED.
* **Spiral arms**: a two-armed logarithmic spiral traced by small Gaussian blobs that follow the disk's
  exponential profile, in most blue disks at low redshift (Willett et al. 2013, MNRAS 435, 2835: about two
  thirds of Galaxy Zoo 2 disks show arms), fewer at higher redshift and in red galaxies.

Points (knots, arm blobs) enter the Fourier transform as sum_j f_j exp(-i k.x_j); the phases are separable in
x and y, so the sum over points of a batch is one matrix product per band.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft

from . import galaxies, render

VERSION = "2.0.0"
NEIGHBOUR_DEPTH = 2.0  # neighbours down to the sample's r limit + this
MARGIN = 16  # pixels around the stamp in which a neighbour's centre may fall (its light spills in)
FIELD_LB = (180.0, 60.0)  # galactic (l, b) in degrees of the star field: a typical high-latitude survey field
STAR_BRIGHT, STAR_FAINT = 17.0, 23.0  # r range of stars (brighter ones saturate a 90 s DECam exposure)
# Bahcall & Soneira (1980) eq. B1, V-band constants (their Table 5)
BS80 = dict(C1=925.0, alpha=-0.132, beta=0.035, delta=3.0, mstar=15.75, C2=1050.0, kappa=-0.18, eta=0.087,
            lam=2.5, mdagger=17.5)
# stellar colours: (weight, mean g-r, sd g-r, r-z at that g-r) for turn-off stars and M dwarfs
STAR_POPULATIONS = ((0.6, 0.35, 0.10, 0.12), (0.4, 1.35, 0.12, 0.95))
KNOTS = dict(n=(8, 30), frac_r=(0.1, 0.3), colour=(1.4, 1.0, 0.6))  # share of disk flux in r; g, r, z scale
ARMS = dict(n_points=96, frac_r=(0.2, 0.4), colour=(1.2, 1.0, 0.85), pitch_deg=(10.0, 30.0), width=0.15)


SURVEY = "DES"  # galcheat's DECam entry: the published sky brightness per band


def sky_mag_arcsec2() -> np.ndarray:
    """Dark-sky brightness (AB mag / arcsec^2) in g, r, z from galcheat's DES survey parameters."""
    from galcheat import get_survey

    survey = get_survey(SURVEY)
    return np.array([survey.get_filter(b).sky_brightness.value for b in galaxies.BANDS])


def sky_counts() -> np.ndarray:
    """Scene background per pixel in exposure counts (g, r, z)."""
    return galaxies.sky_counts(sky_mag_arcsec2())


def sky_sigma() -> np.ndarray:
    """Scene background noise per pixel in nanomaggies (g, r, z)."""
    return np.sqrt(sky_counts()) * galaxies.flux_scale()


# ---------------------------------------------------------------- who has what


def knot_probability(z, is_red):
    """Fraction of galaxies with star-forming clumps: blue ~0.15 + 0.2 z (capped at 0.55), red 0.03."""
    z = np.asarray(z, float)
    return np.where(np.asarray(is_red, bool), 0.03, np.clip(0.15 + 0.2 * z, 0.0, 0.55))


def arm_probability(z, is_red):
    """Fraction with visible spiral arms: blue disks 0.65 at z = 0 falling to 0.3 at z = 1, red 0.1."""
    z = np.asarray(z, float)
    return np.where(np.asarray(is_red, bool), 0.1, np.clip(0.65 - 0.35 * z, 0.2, 0.65))


# ---------------------------------------------------------------- stars


def star_counts(v_mag, l_deg: float = FIELD_LB[0], b_deg: float = FIELD_LB[1]):
    """Bahcall & Soneira (1980) eq. B1: stars per deg^2 brighter than V, at galactic (l, b)."""
    m = np.asarray(v_mag, float)
    ll, b = math.radians(l_deg), math.radians(b_deg)
    p = BS80
    mu = np.where(m <= 12, 0.03, np.where(m < 20, 0.0075 * (m - 12) + 0.03, 0.09))
    gamma = np.where(m <= 12, 0.36, np.where(m < 20, 0.04 * (12 - m) + 0.36, 0.04))
    sigma = 1.45 - 0.2 * math.cos(b) * math.cos(ll)
    dm, dm2 = m - p["mstar"], m - p["mdagger"]
    disk = p["C1"] * 10 ** (p["beta"] * dm) / (1 + 10 ** (p["alpha"] * dm)) ** p["delta"]
    disk = disk / (math.sin(b) * (1 - mu / math.tan(b) * math.cos(ll))) ** (3 - 5 * gamma)
    halo = p["C2"] * 10 ** (p["eta"] * dm2) / (1 + 10 ** (p["kappa"] * dm2)) ** p["lam"]
    return disk + halo / (1 - math.cos(b) * math.cos(ll)) ** sigma


def draw_stars(n_stamps: int, area_deg2: float, rng: np.random.Generator) -> dict:
    """Stars falling in ``n_stamps`` areas of ``area_deg2`` each: stamp index, V, g, r, z (inverse-CDF draw from
    the cumulative counts; colours from STAR_POPULATIONS; V -> g, r by Jester et al. 2005)."""
    v_grid = np.linspace(STAR_BRIGHT - 1.5, STAR_FAINT + 1.5, 400)
    cum = star_counts(v_grid) - star_counts(v_grid[0])
    n = rng.poisson(cum[-1] * area_deg2 * n_stamps)
    v = np.interp(rng.uniform(0, cum[-1], n), cum, v_grid)
    pop = rng.choice(len(STAR_POPULATIONS), n, p=[w for w, *_ in STAR_POPULATIONS])
    mean_gr, sd_gr, rz = (np.array([s[i] for s in STAR_POPULATIONS]) for i in (1, 2, 3))
    g_r = rng.normal(mean_gr[pop], sd_gr[pop])
    g = v + 0.59 * g_r + 0.01  # Jester+2005: V = g - 0.59 (g - r) - 0.01
    r = g - g_r
    keep = (r >= STAR_BRIGHT) & (r < STAR_FAINT)
    return {"stamp": rng.integers(0, n_stamps, n)[keep], "mag_g": g[keep], "mag_r": r[keep],
            "mag_z": (r - rz[pop])[keep]}


# ---------------------------------------------------------------- substructure as points


def _disk_points(rng, n_gal: int, n_pts: int, r0):
    """(n_gal, n_pts, 2) positions drawn from a round exponential disk of scale r0 (pixels): the 2-D radius of
    an exponential profile follows Gamma(2, r0)."""
    radius = rng.gamma(2.0, 1.0, (n_gal, n_pts)) * r0[:, None]
    angle = rng.uniform(0, 2 * np.pi, (n_gal, n_pts))
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=-1)


def _arm_points(rng, n_gal: int, n_pts: int, r0):
    """Two logarithmic spiral arms, theta = theta0 + ln(r / r0) / tan(pitch) (+ pi for the second arm), with the
    exponential disk's radial profile and an angular scatter ARMS['width'] (radians)."""
    radius = np.maximum(rng.gamma(2.0, 1.0, (n_gal, n_pts)), 0.3) * r0[:, None]
    pitch = np.radians(rng.uniform(*ARMS["pitch_deg"], n_gal))[:, None]
    theta = (rng.uniform(0, 2 * np.pi, n_gal)[:, None] + np.log(radius / r0[:, None]) / np.tan(pitch)
             + np.pi * rng.integers(0, 2, (n_gal, n_pts)) + rng.normal(0, ARMS["width"], (n_gal, n_pts)))
    return np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=-1), np.degrees(pitch[:, 0])


def substructure(truth: dict, rng: np.random.Generator, knots=None, arms=None) -> dict:
    """Who gets knots and arms (drawn from the probabilities above unless given), and the point sets in pixels
    relative to each galaxy's centre, sheared like its disk. Returns flags, point positions (B, J, 2), point
    fluxes as fractions of the disk's flux per band (B, J, 3), the Gaussian width of each galaxy's arm blobs and
    the disk flux fraction left smooth per band (B, 3); also each galaxy's knot count and arms' pitch angle
    (degrees, NaN without arms), which morphology truth reads."""
    n = len(truth["z"])
    if knots is None:
        knots = rng.uniform(size=n) < knot_probability(truth["z"], truth["is_red"])
    if arms is None:
        arms = rng.uniform(size=n) < arm_probability(truth["z"], truth["is_red"])
    knots, arms = np.asarray(knots, bool), np.asarray(arms, bool)
    r0 = truth["hlr_disk_arcsec"] / galaxies.PIXEL_SCALE / render.spergel_hlr_over_r0(render.NU_DISK)
    n_knots = rng.integers(KNOTS["n"][0], KNOTS["n"][1] + 1, n) * knots
    j_knots, j_arms = int(n_knots.max(initial=0)), ARMS["n_points"] if arms.any() else 0
    pos = np.zeros((n, j_knots + j_arms, 2))
    frac = np.zeros((n, j_knots + j_arms, 3))
    smooth = np.ones((n, 3))
    pitch = np.full(n, np.nan)
    if j_knots:
        share = rng.uniform(*KNOTS["frac_r"], n)[:, None] * np.asarray(KNOTS["colour"])[None] * knots[:, None]
        share = np.minimum(share, 0.9)
        live = np.arange(j_knots)[None, :] < n_knots[:, None]
        pos[:, :j_knots] = _disk_points(rng, n, j_knots, r0)
        frac[:, :j_knots] = live[..., None] * share[:, None, :] / np.maximum(n_knots, 1)[:, None, None]
        smooth -= share
    if j_arms:
        share = rng.uniform(*ARMS["frac_r"], n)[:, None] * np.asarray(ARMS["colour"])[None] * arms[:, None]
        share = np.minimum(share, 0.95 * smooth)
        pos[:, j_knots:], drawn = _arm_points(rng, n, j_arms, r0)
        pitch[arms] = drawn[arms]
        frac[:, j_knots:] = share[:, None, :] / j_arms
        smooth -= share
    a, b, d = render.shear_matrix(np.asarray(truth["e1"]), np.asarray(truth["e2"]))  # I(A^-1 x): x = A u
    x, y = pos[..., 0], pos[..., 1]
    pos = np.stack([a[:, None] * x + b[:, None] * y, b[:, None] * x + d[:, None] * y], axis=-1)
    return {"has_knots": knots, "has_arms": arms, "pos": pos, "frac": frac, "n_knots": j_knots,
            "arm_sigma": 0.25 * r0 * arms, "smooth": smooth, "knot_count": n_knots, "arm_pitch_deg": pitch}


# ---------------------------------------------------------------- rendering


def render_with_points(params: dict, sub: dict | None = None, npix: int = galaxies.NPIX, psf=None):
    """Noiseless counts (B, C, npix, npix) of bulge + smooth disk + knots + arm blobs, each convolved with the
    Moffat PSF and integrated over pixels, as ``render.render`` does for the smooth profiles (the same choice of
    FFT box per object). ``params`` are ``galaxies.render_params`` (flux_disk is the whole disk; ``sub['smooth']``
    keeps its smooth share). ``psf``: as ``render.render_kspace``'s (None: the Moffat of ``params['psf_fwhm']``)."""
    choice = render.box_choice(params, npix)
    out = np.empty((len(choice), np.shape(params["flux_disk"])[1], npix, npix))
    for i, box in enumerate(render.BOXES):
        rows = np.flatnonzero(choice == i)
        if len(rows):
            part = {k: np.asarray(v)[rows] for k, v in params.items()}
            subpart = None if sub is None else {k: (v[rows] if np.ndim(v) else v) for k, v in sub.items()}
            out[rows] = _render_box(part, subpart, npix, box, psf)
    return out


def _render_box(params, sub, npix, pad, psf=None):
    params = dict(params)
    disk = np.asarray(params["flux_disk"], float)
    if sub is not None:
        params["flux_disk"] = disk * sub["smooth"]
    fk = render.render_kspace(params, npix=npix, pad=pad, dtype="float64", psf=psf)
    n_fft = round(pad * npix)
    if sub is not None and sub["pos"].shape[1]:
        kx, ky, pixel = render._kgrid(n_fft)
        k = np.sqrt(kx**2 + ky**2)
        if psf is None:
            rd = render.moffat_rd(np.asarray(params["psf_fwhm"], float))[:, :, None, None]
            psf = np.exp(-k * rd) * ((k * rd) ** 2 + 3 * k * rd + 3) / 3 * pixel
        else:
            psf = np.broadcast_to(psf(k) * pixel, (len(disk), 1, *k.shape))
        centre = (n_fft - 1) / 2.0
        flux = sub["frac"] * disk[:, None, :]  # (B, J, C)
        j = sub["n_knots"]
        for part, sl in (("knots", slice(0, j)), ("arms", slice(j, None))):
            rows = np.flatnonzero(flux[:, sl].any(axis=(1, 2)))  # only the galaxies that have this part
            if not len(rows):
                continue
            pos = sub["pos"][rows, sl]
            px = np.exp(-1j * kx[0][None, None, :] * (centre + params["dx"][rows, None, None] + pos[..., 0:1]))
            py = np.exp(-1j * ky[:, 0][None, None, :] * (centre + params["dy"][rows, None, None] + pos[..., 1:2]))
            # sum_j f_jc e^{-i ky y_j} e^{-i kx x_j}: one batched matrix product (C * Y, J) @ (J, X)
            left = (flux[rows, sl][:, :, :, None] * py[:, :, None, :]).transpose(0, 2, 3, 1)  # (R, C, Y, J)
            sums = left @ px[:, None]  # (R, C, Y, X)
            if part == "arms":  # Gaussian blobs: exp(-k^2 s^2 / 2)
                sums = sums * np.exp(-0.5 * (k**2)[None, None] * (sub["arm_sigma"][rows] ** 2)[:, None, None, None])
            fk[rows] = fk[rows] + sums * psf[rows]
    img = sfft.irfft2(fk, s=(n_fft, n_fft), axes=(-2, -1), workers=-1)
    lo = (n_fft - npix) // 2
    return img[..., lo : lo + npix, lo : lo + npix]


# ---------------------------------------------------------------- scenes

RENDER_BATCH = 128  # neighbours and stars rendered at once: bounds the FFT temporaries (a chunk holds ~1 300)
SCENE_COLUMNS = ("n_neighbours", "n_stars", "blendedness", "bright_neighbour_5as", "has_knots", "has_arms",
                 "has_star", "star_x", "star_y", "star_mag_r")


def _paste(stamps, images, owner, shift):
    """Add each rendered object (K, C, n, n) into its stamp ``owner`` shifted by whole pixels ``shift`` (K, 2)."""
    n = stamps.shape[-1]
    for img, s, (ix, iy) in zip(images, owner, shift):
        x0, x1, y0, y1 = max(0, ix), min(n, n + ix), max(0, iy), min(n, n + iy)
        if x0 < x1 and y0 < y1:
            stamps[s, :, y0:y1, x0:x1] += img[:, y0 - iy : y1 - iy, x0 - ix : x1 - ix]


def decam_view(truth: dict) -> dict:
    """How ``galaxies`` observes a scene: DECam pixels, each stamp's own seeing (truth columns), exposure counts at
    ``galaxies.EXPOSURE_ZP``; segmentation threshold 1 sky sigma in r."""
    return {"pixel": galaxies.PIXEL_SCALE, "npix": galaxies.NPIX, "oversample": 1, "flux": 1.0,
            "psf_arcsec": np.stack([truth[f"psf_fwhm_{b}"] for b in galaxies.BANDS], axis=1),
            "seg_threshold": float(np.sqrt(sky_counts()[1]))}


def _in_view(params: dict, sub, view: dict, psf_arcsec, dx=None, dy=None):
    """``galaxies.render_params`` (DECam pixels, ZP 31 counts) on a view's render grid (its pixel / oversample) and
    exposure; ``dx, dy`` (grid pixels) replace the scaled offsets when given. A view with ``mix`` (3, C) observes
    C channels that are linear combinations of g, r, z (a broad band such as Euclid's VIS); every component's
    flux, knots' and arms' included, is combined the same way."""
    s = galaxies.PIXEL_SCALE * view["oversample"] / view["pixel"]
    p = {**params, "hlr_bulge": params["hlr_bulge"] * s, "hlr_disk": params["hlr_disk"] * s,
         "flux_bulge": params["flux_bulge"] * view["flux"], "flux_disk": params["flux_disk"] * view["flux"],
         "psf_fwhm": psf_arcsec * view["oversample"] / view["pixel"],
         "dx": params["dx"] * s if dx is None else dx, "dy": params["dy"] * s if dy is None else dy}
    if sub is not None:
        sub = {**sub, "pos": sub["pos"] * s, "arm_sigma": sub["arm_sigma"] * s}
    if view.get("mix") is not None:
        mix, disk = np.asarray(view["mix"], float), p["flux_disk"]
        p = {**p, "flux_bulge": p["flux_bulge"] @ mix, "flux_disk": disk @ mix}
        if sub is not None:  # point fractions are of the disk's flux per band: convert through fluxes
            new = np.where(p["flux_disk"] > 0, p["flux_disk"], 1.0)
            sub = {**sub, "frac": (sub["frac"] * disk[:, None, :]) @ mix / new[:, None, :],
                   "smooth": (sub["smooth"] * disk) @ mix / new}
    return p, sub


def _star_params(table, rows) -> dict:
    mags = np.stack([table["mag_g"][rows], table["mag_r"][rows], table["mag_z"][rows]], axis=1)
    zero = np.zeros(len(rows))
    return dict(flux_bulge=np.zeros_like(mags), flux_disk=10 ** (-0.4 * (mags - galaxies.EXPOSURE_ZP)),
                hlr_bulge=zero, hlr_disk=zero, g1=zero, g2=zero, dx=zero, dy=zero)


def _bin(counts, factor: int):
    if factor == 1:
        return counts
    n = counts.shape[-1] // factor
    return counts.reshape(*counts.shape[:-2], n, factor, n, factor).sum(axis=(-3, -1))


def compose(truth: dict, seed: int, block: int, progress: bool = True, chunk: int = 256, views=None,
            morphology: bool = False):
    """Noiseless scenes around the target galaxies ``truth``, one array (N, 3, npix, npix) of counts per view
    (default: ``decam_view``; every object of a stamp shares the stamp's PSF), the segmentation map (N, npix, npix)
    uint8 of the first view (0 sky, 1 target, 2... the others, by brightest contribution above its
    ``seg_threshold``), the scene truth columns (positions in the first view's pixels) and, per view, the target's
    own noiseless counts in the stamp (N, 3). The objects and their substructure are drawn once, so all views show
    the same sky. A view may set ``mix`` (see ``_in_view``: its channel count is then mix's) and ``psf_k`` (a
    round PSF shared by all objects, see ``render.render_kspace``); ``morphology`` adds the target's knot count
    and arm pitch to the scene columns."""
    from tqdm.auto import tqdm

    views = [decam_view(truth)] if views is None else views
    n = len(truth["z"])
    rng = np.random.default_rng([seed, block, 7])
    v0 = views[0]
    half = v0["npix"] * v0["pixel"] / 2 + MARGIN * galaxies.PIXEL_SCALE  # arcsec: the stamp and a margin around it
    area = (2 * half / 3600.0) ** 2  # deg^2 per stamp
    field_seed = (seed * 1000 + block + 1) % 2**32  # SkyPy seeds numpy's global RNG (< 2**32); events use big seeds
    field = galaxies.draw_field(area * n, galaxies.MAG_LIMIT_R + NEIGHBOUR_DEPTH, field_seed)
    field["owner"] = rng.integers(0, n, len(field["z"]))
    stars = draw_stars(n, area, rng)
    stars["owner"] = stars.pop("stamp")
    chans = [3 if v.get("mix") is None else np.shape(v["mix"])[1] for v in views]
    out = [np.empty((n, c, v["npix"], v["npix"]), np.float32) for c, v in zip(chans, views)]
    target_flux = [np.empty((n, c)) for c in chans]
    npix0 = v0["npix"]
    seg = np.zeros((n, npix0, npix0), np.uint8)
    cols = {c: np.zeros(n) for c in SCENE_COLUMNS}
    cols["star_x"][:], cols["star_y"][:], cols["star_mag_r"][:] = np.nan, np.nan, np.nan
    sub = substructure(truth, rng)
    cols["has_knots"], cols["has_arms"] = sub["has_knots"].astype(float), sub["has_arms"].astype(float)
    if morphology:
        cols["knot_count"], cols["arm_pitch_deg"] = sub["knot_count"].astype(np.int16), sub["arm_pitch_deg"]
    objects = []  # (kind, table, positions in arcsec from the stamp centre)
    for kind, table in (("galaxy", field), ("star", stars)):
        objects.append((kind, table, rng.uniform(-half, half, (len(table["owner"]), 2))))
    with tqdm(total=n, desc="rendering scenes", unit="scene", disable=not progress) as bar:
        for i0 in range(0, n, chunk):
            idx = np.arange(i0, min(n, i0 + chunk))
            rows = {k: v[idx] for k, v in truth.items()}
            rsub = {k: (v[idx] if np.ndim(v) else v) for k, v in sub.items()}
            drawn = []  # (kind, table, rows, stamps of the chunk, params, substructure)
            for kind, table, pos in objects:
                mine = np.flatnonzero((table["owner"] >= i0) & (table["owner"] <= idx[-1]))
                if len(mine):
                    t = {k: v[mine] for k, v in table.items() if k != "owner"}
                    params = galaxies.render_params(t) if kind == "galaxy" else _star_params(table, mine)
                    drawn.append((kind, table, pos, mine, table["owner"][mine] - i0, params,
                                  substructure(t, rng) if kind == "galaxy" else None))
            for v_i, view in enumerate(views):
                f = view["oversample"]
                grid = view["npix"] * f
                psf = view["psf_arcsec"][idx]
                target = render_with_points(*_in_view(galaxies.render_params(rows), rsub, view, psf), npix=grid,
                                            psf=view.get("psf_k"))
                scene_counts = target.copy()
                target_flux[v_i][idx] = target.sum(axis=(2, 3))
                if v_i == 0:
                    t_r = _bin(target[:, 1], f)
                    best = np.where(t_r > view["seg_threshold"], t_r, 0.0)
                    seg[idx] = (best > 0).astype(np.uint8)
                    next_id = np.full(len(idx), 2)
                for kind, table, pos, mine, local, params, osub in drawn:
                    at = pos[mine] / (view["pixel"] / f)  # render-grid pixels
                    shift = np.round(at).astype(int)
                    p, s = _in_view(params, osub, view, psf[local], dx=at[:, 0] - shift[:, 0],
                                    dy=at[:, 1] - shift[:, 1])
                    one = np.zeros((1, chans[v_i], grid, grid))
                    for j, (st, sh) in enumerate(zip(local, shift)):
                        if j % RENDER_BATCH == 0:  # a bounded batch of FFT boxes (Binder's 2 GB); same pixels
                            imgs = render_with_points(_rows(p, j), _rows(s, j), npix=grid, psf=view.get("psf_k"))
                        one[:] = 0.0
                        _paste(one, imgs[j % RENDER_BATCH : j % RENDER_BATCH + 1], [0], [sh])
                        scene_counts[st] += one[0]
                        if v_i == 0:
                            r = _bin(one[0, 1], f)
                            take = (r > view["seg_threshold"]) & (r > best[st])
                            seg[idx[st]][take] = min(next_id[st], 255)
                            best[st][take] = r[take]
                            next_id[st] += 1
                    if v_i == 0:
                        _scene_columns(cols, kind, table, pos[mine] / view["pixel"], mine, idx[local], truth,
                                       view["npix"], view["pixel"])
                if v_i == 0:
                    t_r, o_r = target[:, 1], scene_counts[:, 1] - target[:, 1]
                    cols["blendedness"][idx] = 1 - (t_r**2).sum((1, 2)) / np.maximum((t_r * (t_r + o_r)).sum((1, 2)),
                                                                                      1e-30)
                out[v_i][idx] = _bin(scene_counts, f)
            bar.update(len(idx))
    cols["has_star"] = (cols["n_stars"] > 0).astype(float)
    for c in ("n_neighbours", "n_stars"):
        cols[c] = cols[c].astype(np.int16)
    for c in ("bright_neighbour_5as", "has_knots", "has_arms", "has_star"):
        cols[c] = cols[c].astype(np.int8)
    return out, seg, cols, target_flux


def _rows(d: dict | None, start: int) -> dict | None:
    """Objects start ... start + RENDER_BATCH - 1 of per-object arrays (scalars pass through)."""
    if d is None:
        return None
    return {k: (v[start : start + RENDER_BATCH] if np.ndim(v) else v) for k, v in d.items()}


def _scene_columns(cols, kind, table, pos, mine, stamps, truth, npix, pixel):
    """Count the objects whose centre falls in the stamp; flag bright neighbours within 5 arcsec; keep the
    brightest star's position (``pos`` in the first view's pixels from the stamp centre)."""
    inside = np.all(np.abs(pos) < npix / 2, axis=1)
    if kind == "galaxy":
        np.add.at(cols["n_neighbours"], stamps[inside], 1)
        near = np.hypot(*pos.T) * pixel < 5.0
        bright = table["mag_r"][mine] < truth["mag_r"][stamps] + 2.0
        cols["bright_neighbour_5as"][stamps[near & bright]] = 1
        return
    np.add.at(cols["n_stars"], stamps[inside], 1)
    for k in np.flatnonzero(inside):  # the brightest star of a stamp goes in the truth
        s = stamps[k]
        if not table["mag_r"][mine[k]] >= cols["star_mag_r"][s]:  # (NaN compares False)
            cols["star_mag_r"][s] = table["mag_r"][mine[k]]
            cols["star_x"][s], cols["star_y"][s] = pos[k] + (npix - 1) / 2


def simulate(truth: dict, seed: int, block: int, progress: bool = True, chunk: int = 2048):
    """Scenes with noise in nanomaggies (N, 3, 64, 64) float32, the target's spectra (N, 512) float32, the
    segmentation maps (N, 64, 64) uint8 and the scene truth columns. The noise model is ``galaxies``': sky plus
    Poisson from every source in the scene; the spectrum is the target galaxy's alone."""
    (images,), seg, cols, _ = compose(truth, seed, block, progress)
    sky = sky_counts()[None, :, None, None]
    spectra = np.empty((len(images), len(galaxies.SPEC_WAVE)), np.float32)
    for i0 in range(0, len(images), chunk):  # in place, in chunks: the full split is 1 GB of float32
        rng = np.random.default_rng([seed, block, 8, i0 // chunk])
        for j0 in range(i0, min(len(images), i0 + chunk), 256):  # the chunk's draws in order, 256 stamps at a
            part = images[j0 : min(j0 + 256, i0 + chunk)]  # time: float64 temporaries ~50 MB (Binder's 2 GB)
            part += rng.standard_normal(part.shape, dtype=np.float32) * np.sqrt(sky + np.maximum(part, 0.0))
        images[i0 : i0 + chunk] *= galaxies.flux_scale()
        rows = {k: v[i0 : i0 + chunk] for k, v in truth.items()}
        spec = galaxies.observed_spectrum(rows)
        sigma = np.sqrt(galaxies.SPEC_SIGMA_SKY**2 + galaxies.SPEC_GAIN * np.maximum(spec, 0.0))
        spectra[i0 : i0 + chunk] = spec + sigma * rng.standard_normal(spec.shape)
    return images, spectra, seg, cols


def generate(sizes: dict, seed: int, progress: bool = True) -> dict:
    """All splits: {split: {"images", "spectra", "wavelength", "segmentation", "truth"}}; the targets are the
    ``galaxies`` population (same draw as ``galaxies`` for the same seed), the truth adds SCENE_COLUMNS."""
    return dict(iter_splits(sizes, seed, progress))


def iter_splits(sizes: dict, seed: int, progress: bool = True):
    """``generate``'s splits one at a time, (split, content): the dataset cache writes each before the next is
    made, so only one split sits in memory (Binder's 2 GB)."""
    truth = galaxies.draw_population(sum(sizes.values()), seed)
    start = 0
    for block, (split, n) in enumerate(sizes.items()):
        rows = {k: v[start : start + n] for k, v in truth.items()}
        rows["id"] = np.arange(n, dtype=np.int64)
        images, spectra, seg, cols = simulate(rows, seed, block, progress=progress)
        yield split, {"images": images, "spectra": spectra, "wavelength": galaxies.SPEC_WAVE.astype(np.float32),
                      "segmentation": seg, "truth": {**rows, **cols}}
        del images, spectra, seg, cols, rows
        start += n


def config() -> dict:
    return {**galaxies.config(), "sky_mag_arcsec2": sky_mag_arcsec2().tolist(), "sky_sigma": sky_sigma().tolist(),
            "sky_source": f"galcheat {SURVEY} sky brightness per band (dark sky)", "scene": {
        "neighbours": f"the galaxies population to r < {galaxies.MAG_LIMIT_R + NEIGHBOUR_DEPTH}, Poisson-placed "
                      f"in the stamp and a {MARGIN}-pixel margin (no clustering)",
        "stars": f"Bahcall & Soneira (1980) eq. B1 V-band counts at (l, b) = {FIELD_LB}, {STAR_BRIGHT} <= r < "
                 f"{STAR_FAINT}, colours {STAR_POPULATIONS} (weight, g-r mean, sd, r-z), V -> g Jester+2005",
        "knots": {**KNOTS, "model": "points from the disk profile (GalSim RandomKnots)",
                  "probability": "blue 0.15 + 0.2 z (<= 0.55), red 0.03 (after Guo+2015)"},
        "arms": {**ARMS, "model": "two-armed log spiral of Gaussian blobs on the exponential disk",
                 "probability": "blue 0.65 - 0.35 z (0.2..0.65), red 0.1 (after Willett+2013)"},
        "segmentation": "uint8: 0 sky, 1 target, 2.. others; brightest noiseless r-band contribution above 1 sky "
                        "sigma",
        "blendedness": "1 - sum(T^2) / sum(T (T + O)) in r (Bosch+2018), T target, O other sources"}}


def _spec():
    from ..data.specs import SimulatedSpec

    return SimulatedSpec(
        name="galaxies", version=VERSION,
        description="SkyPy galaxies in survey-like DECam g,r,z 64x64 scenes (neighbours and background galaxies, "
                    "stars, star-forming knots, spiral arms; Moffat PSF, galcheat DES sky, sky+Poisson noise) with "
                    "the target's 3600-9800 A spectrum, a segmentation map and a truth table",
        tracks=("generative", "multimodal", "anomaly", "superres"),
        sizes={"full": {"train": 20000, "test": 2000}, "fast": {"train": 800, "test": 200}},
        generate=iter_splits, config=config)


DATASETS = [_spec()]

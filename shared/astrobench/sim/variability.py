"""Astrophysical variability models for the ``lightcurves`` dataset, batched over objects.

Every function is pure numpy, takes times ``t`` in days as an array (any shape, broadcast against per-object
parameters given as ``(n, 1)`` columns) and returns a noiseless quantity. The card
(``data/cards/lightcurves.md``) lists the literature each follows; ``shared/tests/test_lightcurves.py`` checks
each against its library (batman) or the published numbers.
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- transits and eclipses


def _overlap(r, p, z):
    """Area of the intersection of a disk of radius ``r`` (centred) and one of radius ``p`` at distance ``z``."""
    r, p, z = np.broadcast_arrays(np.asarray(r, float), np.asarray(p, float), np.asarray(z, float))
    out = np.zeros(r.shape)
    inside = z <= np.abs(r - p)
    out[inside] = np.pi * np.minimum(r, p)[inside] ** 2
    part = (z < r + p) & ~inside
    rr, pp, zz = r[part], p[part], z[part]
    k0 = np.arccos(np.clip((zz**2 + pp**2 - rr**2) / (2 * zz * pp), -1, 1))
    k1 = np.arccos(np.clip((zz**2 + rr**2 - pp**2) / (2 * zz * rr), -1, 1))
    k2 = np.sqrt(np.clip((-zz + rr + pp) * (zz + rr - pp) * (zz - rr + pp) * (zz + rr + pp), 0, None))
    out[part] = pp**2 * k0 + rr**2 * k1 - 0.5 * k2
    return out


def occulted_fraction(z, p, u1, u2, n_annuli: int = 100):
    """Fraction of a quadratically limb-darkened star's flux hidden by an opaque disk.

    ``z``: centre separation and ``p``: occulter radius, both in units of the occulted star's radius;
    I(mu) = 1 - u1 (1 - mu) - u2 (1 - mu)^2. Integrates the intensity over annuli times the exact occulted area
    of each (Mandel & Agol 2002 for a uniform disk; the annulus integration is Kreidberg 2015's batman scheme).
    The arguments broadcast; only points with z < 1 + p are integrated. 100 annuli: within 2e-4 of the depth of
    batman's exact result (tested), far below any noise here.
    """
    z, p, u1, u2 = np.broadcast_arrays(*(np.asarray(a, float) for a in (z, p, u1, u2)))
    out = np.zeros(z.shape)
    hit = z < 1 + p
    if not hit.any():
        return out
    # annulus edges on a grid uniform in r^2 (equal areas), densest near the limb where I(mu) changes fastest
    edges = np.sqrt(np.linspace(0.0, 1.0, n_annuli + 1))[None, :]
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])
    mu = np.sqrt(1 - mid**2)
    where, flat = np.flatnonzero(hit), out.reshape(-1)
    for i0 in range(0, where.size, 20000):  # blocks of points keep the (points, annuli) arrays ~16 MB
        w = where[i0 : i0 + 20000]
        zz, pp, a1, a2 = (x.reshape(-1)[w][:, None] for x in (z, p, u1, u2))
        area = _overlap(edges, pp, zz)  # (m, K+1) occulted area inside each radius
        intensity = 1 - a1 * (1 - mu) - a2 * (1 - mu) ** 2
        # normalised by the same quadrature of the whole disk, so a total eclipse hides exactly all the light
        total = (intensity * np.pi * np.diff(edges**2, axis=1)).sum(axis=1)
        flat[w] = (intensity * np.diff(area, axis=1)).sum(axis=1) / total
    return out


def sky_separation(t, t0, period, a_rs, inc_deg):
    """Projected separation (units of the primary's radius) on a circular orbit and the orbital phase angle."""
    phase = 2 * np.pi * (t - t0) / period
    cosi = np.cos(np.radians(inc_deg))
    z = a_rs * np.sqrt(np.sin(phase) ** 2 + (cosi * np.cos(phase)) ** 2)
    return z, phase


def transit_flux(t, t0, period, rp, a_rs, inc_deg, u1, u2):
    """Relative flux of a star transited by a dark planet on a circular orbit (quadratic limb darkening)."""
    z, phase = sky_separation(t, t0, period, a_rs, inc_deg)
    z = np.where(np.cos(phase) > 0, z, np.inf)  # the planet is behind the star half the orbit
    return 1.0 - occulted_fraction(z, rp, u1, u2)


def eclipsing_binary_flux(t, t0, period, r1, r2, inc_deg, sb_ratio, q, u1, u2):
    """Relative flux of a detached binary on a circular orbit: two limb-darkened spheres eclipsing each other,
    plus ellipsoidal variation (Morris 1985: amplitude ~ q (R1/a)^3 sin^2 i at twice the orbital frequency).

    ``r1, r2``: radii over the separation; ``sb_ratio``: central surface brightness of star 2 over star 1
    in this band; ``q``: mass ratio. Star 1 is in front of star 2 at phase 0.5 (secondary eclipse)."""
    z, phase = sky_separation(t, t0, period, 1.0, inc_deg)  # separation in units of a
    l1 = 1 - u1 / 3 - u2 / 6
    l2 = sb_ratio * (r2 / r1) ** 2 * l1
    front2 = np.cos(phase) > 0  # star 2 in front at phase 0: primary eclipse of star 1
    blocked1 = np.where(front2, occulted_fraction(np.where(front2, z / r1, np.inf), r2 / r1, u1, u2), 0.0)
    blocked2 = np.where(~front2, occulted_fraction(np.where(~front2, z / r2, np.inf), r1 / r2, u1, u2), 0.0)
    flux = (l1 * (1 - blocked1) + l2 * (1 - blocked2)) / (l1 + l2)
    sini2 = np.sin(np.radians(inc_deg)) ** 2
    return flux * (1 - q * r1**3 * sini2 * np.cos(2 * phase))


def planck_ratio(t_hot, t_cool, wavelength_nm):
    """B_lambda(T2)/B_lambda(T1): the surface brightness ratio of two blackbodies in a band."""
    c2 = 1.4387769e7  # hc/k in nm K
    return np.expm1(c2 / (wavelength_nm * t_hot)) / np.expm1(c2 / (wavelength_nm * t_cool))


# --------------------------------------------------------------------------- pulsators


def fourier_mag(t, t0, period, amps, phases):
    """Sine-series light curve m(t) - <m> = sum_k A_k sin(k w (t - t0) + phi_k), the form whose phase differences
    phi_k1 = phi_k - k phi_1 are tabulated for RR Lyrae and Cepheids (Simon & Lee 1981; Jurcsik & Kovacs 1996).
    ``amps, phases``: (n, K) arrays. Returns magnitude offsets (positive = fainter)."""
    k = np.arange(1, amps.shape[-1] + 1)
    arg = (2 * np.pi * (t - t0) / period)[..., None] * k + phases[..., None, :]
    return (amps[..., None, :] * np.sin(arg)).sum(-1)


def phi31_jk96(period, feh):
    """phi_31 (V, sine series) from [Fe/H] = -5.038 - 5.394 P + 1.345 phi_31 (Jurcsik & Kovacs 1996, eq. 3)."""
    return (feh + 5.038 + 5.394 * period) / 1.345


def feh_jk96(period, phi31):
    return -5.038 - 5.394 * period + 1.345 * phi31


def bailey_oo1(period):
    """V amplitude of Oosterhoff I RRab stars: A_V = -2.627 - 22.046 log P - 30.876 (log P)^2
    (Cacciari, Corwin & Carney 2005, AJ 129, 267, M3's mean locus)."""
    lp = np.log10(period)
    return -2.627 - 22.046 * lp - 30.876 * lp**2


def cepheid_mv(period):
    """Galactic Cepheid Leavitt law M_V = -2.43 (log P - 1) - 4.05 (Benedict et al. 2007, AJ 133, 1810)."""
    return -2.43 * (np.log10(period) - 1) - 4.05


def dsct_mv(period):
    """delta Scuti period-luminosity relation M_V = -2.89 log P - 1.31 (McNamara 2011, AJ 142, 110)."""
    return -2.89 * np.log10(period) - 1.31


DSCT_OVERTONE_RATIO = 0.773  # P1/P0 of radial first overtone over fundamental (Breger 1979; Poretti+2005)


def peak_to_peak(amps, phases, n_phase: int = 256):
    """Peak-to-peak amplitude of a sine series on a fine phase grid (to scale a template to a target A)."""
    ph = np.linspace(0, 1, n_phase, endpoint=False)
    m = fourier_mag(ph[None, :], 0.0, 1.0, amps, phases)
    return m.max(-1) - m.min(-1)


# --------------------------------------------------------------------------- stochastic and transient


def macleod_drw(m_i, m_bh, z, wavelength_nm):
    """DRW parameters of a quasar: log f = A + B log(lambda_RF / 4000 A) + C (M_i + 23) + D log(M_BH / 1e9 M_sun)
    + E log(1 + z), with (A, B, C, D, E) = (-0.51, -0.479, 0.131, 0.18, 0) for SF_inf [mag] and
    (2.4, 0.17, 0.03, 0.21, 0) for tau [rest-frame days] (MacLeod et al. 2010, ApJ 721, 1014, eq. 7 / Table 1).
    Returns (SF_inf, tau observed frame = tau_rest (1 + z))."""
    lam = np.log10(wavelength_nm / (1 + z) / 400.0)
    sf = 10 ** (-0.51 - 0.479 * lam + 0.131 * (m_i + 23) + 0.18 * np.log10(m_bh / 1e9))
    tau = 10 ** (2.4 + 0.17 * lam + 0.03 * (m_i + 23) + 0.21 * np.log10(m_bh / 1e9))
    return sf, tau * (1 + z)


def ou_process(t, tau, sigma, rng):
    """Exact Ornstein-Uhlenbeck (damped random walk) samples at sorted times t (n, T), stationary start:
    x_{i+1} = x_i e^{-dt/tau} + sigma sqrt(1 - e^{-2 dt/tau}) N(0, 1) (Gillespie 1996), so that
    SF(dt) = sqrt(2) sigma sqrt(1 - e^{-dt/tau}) with SF_inf = sqrt(2) sigma (MacLeod+2010 eq. 4)."""
    t = np.asarray(t, float)
    tau, sigma = np.broadcast_to(tau, t.shape[:1]), np.broadcast_to(sigma, t.shape[:1])
    noise = rng.standard_normal(t.shape)
    x = np.empty(t.shape)
    x[:, 0] = sigma * noise[:, 0]
    for i in range(1, t.shape[1]):
        decay = np.exp(-np.clip(t[:, i] - t[:, i - 1], 0, None) / tau)
        x[:, i] = x[:, i - 1] * decay + sigma * np.sqrt(1 - decay**2) * noise[:, i]
    return x


def davenport_flare(t_half):
    """Davenport et al. (2014, ApJ 797, 122) eqs. 1-4: flare flux relative to its peak vs time in units of
    t_1/2 from the peak. Rise (-1 <= t <= 0): 1 + 1.941 t - 0.175 t^2 - 2.246 t^3 - 1.125 t^4; decay (t > 0):
    0.6890 e^{-1.600 t} + 0.3030 e^{-0.2783 t}; zero before t = -1."""
    x = np.asarray(t_half, float)
    rise = 1 + 1.941 * x - 0.175 * x**2 - 2.246 * x**3 - 1.125 * x**4
    xd = np.maximum(x, 0)
    decay = 0.6890 * np.exp(-1.600 * xd) + 0.3030 * np.exp(-0.2783 * xd)
    return np.where(x > 0, decay, np.where(x >= -1, np.clip(rise, 0, None), 0.0))


def villar_sn(t, amp, beta, gamma, t0, tau_rise, tau_fall):
    """Villar et al. (2019, ApJ 884, 83) eq. 1: a rise, a plateau of length gamma with slope beta (in units of
    amp per day), then an exponential fall; continuous at t1 = t0 + gamma. Times in the observer frame."""
    dt = t - t0
    rise = 1.0 / (1.0 + np.exp(-np.clip(dt / tau_rise, -50, 50)))
    early = (amp + beta * dt) * rise
    late = (amp + beta * gamma) * np.exp(-np.clip((dt - gamma) / tau_fall, -50, 700)) * rise
    return np.clip(np.where(dt < gamma, early, late), 0, None)


def paczynski(t, t0, u0, t_e):
    """Point-source point-lens magnification A(u) = (u^2 + 2) / (u sqrt(u^2 + 4)),
    u(t) = sqrt(u0^2 + ((t - t0) / tE)^2) (Paczynski 1986, ApJ 304, 1)."""
    u = np.sqrt(u0**2 + ((t - t0) / t_e) ** 2)
    return (u**2 + 2) / (u * np.sqrt(u**2 + 4))


# --------------------------------------------------------------------------- class populations
# Each sampler: (t (n, T) days, band (n, T) 0=g 1=r, mask, rng) -> (noiseless flux in micro-Jansky, truth columns).
# Reference band for mag and amplitude: r. Parameter ranges are stated, with their sources, in the card.

WAVELENGTH_NM = np.array([477.0, 623.0])  # g, r effective wavelengths
V_TO_BAND = np.array([1.15, 0.80])  # pulsation amplitude in g, r over A_V (bluer bands swing more)


def star_mag(rng, n, lo=13.0, hi=19.5, slope=0.3):
    """r magnitudes from counts dlogN/dm = slope between lo and hi (a magnitude-limited sample)."""
    a, b = 10 ** (slope * lo), 10 ** (slope * hi)
    return np.log10(a + rng.random(n) * (b - a)) / slope


def _flux(r, color, band, dmag=0.0):
    return 10 ** (-0.4 * (r[:, None] + color[:, None] * (band == 0) + dmag - 23.9))


def _col(x):
    return np.asarray(x, float)[:, None]


def constant(t, band, mask, rng):
    n = t.shape[0]
    r, gr = star_mag(rng, n), rng.normal(0.6, 0.25, n)
    return _flux(r, gr, band), {"mag": r, "color_gr": gr, "amplitude": np.zeros(n)}


def transit(t, band, mask, rng):
    n = t.shape[0]
    r, gr = star_mag(rng, n, 12.0, 17.0), rng.normal(0.5, 0.1, n)  # planet searches pick bright hosts
    period = 10 ** rng.uniform(np.log10(0.8), 1.0, n)
    rp, b = rng.uniform(0.05, 0.15, n), rng.uniform(0, 0.9, n)
    a_rs = 4.21 * period ** (2 / 3) * rng.normal(1, 0.1, n)  # Kepler's third law for a Sun-like host
    inc = np.degrees(np.arccos(b / a_rs))
    u1 = np.stack([rng.normal(0.58, 0.03, n), rng.normal(0.42, 0.03, n)], 1)  # g, r quadratic limb darkening
    u2 = np.stack([rng.normal(0.20, 0.03, n), rng.normal(0.26, 0.03, n)], 1)
    t0 = rng.uniform(0, period)
    ub1, ub2 = np.take_along_axis(u1, band, 1), np.take_along_axis(u2, band, 1)
    rel = transit_flux(t, _col(t0), _col(period), _col(rp), _col(a_rs), _col(inc), ub1, ub2)
    depth = occulted_fraction(b, rp, u1[:, 1], u2[:, 1])
    return _flux(r, gr, band) * rel, {"mag": r, "color_gr": gr, "period": period, "t0": t0, "rp": rp,
                                      "a_rs": a_rs, "inc": inc, "u1": u1[:, 1], "u2": u2[:, 1],
                                      "amplitude": -2.5 * np.log10(1 - depth)}


def eclipsing_binary(t, band, mask, rng):
    n = t.shape[0]
    r, period = star_mag(rng, n), 10 ** rng.uniform(np.log10(0.5), np.log10(15.0), n)
    r1 = rng.uniform(0.08, 0.3, n)
    r2 = r1 * rng.uniform(0.5, 1.0, n)
    inc = np.degrees(np.arccos((r1 + r2) * rng.uniform(0, 0.9, n)))
    teff1 = rng.uniform(5000, 8000, n)
    teff2, q = teff1 * rng.uniform(0.6, 1.0, n), rng.uniform(0.3, 1.0, n)
    sb = planck_ratio(_col(teff1), _col(teff2), WAVELENGTH_NM[band])
    u1, u2 = np.where(band == 0, 0.50, 0.40), np.where(band == 0, 0.20, 0.25)
    t0 = rng.uniform(0, period)
    rel = eclipsing_binary_flux(t, _col(t0), _col(period), _col(r1), _col(r2), _col(inc), sb, _col(q), u1, u2)
    gr = 0.9 - teff1 / 10000  # a rough colour-temperature relation for the primary
    ph = np.array([[0.0, 0.5]]) * period[:, None]  # the two conjunctions: the eclipse minima
    sb_r = planck_ratio(_col(teff1), _col(teff2), WAVELENGTH_NM[1])
    low = eclipsing_binary_flux(ph, 0.0, _col(period), _col(r1), _col(r2), _col(inc), sb_r, _col(q), 0.4, 0.25)
    return _flux(r, gr, band) * rel, {"mag": r, "color_gr": gr, "period": period, "t0": t0, "r1": r1, "r2": r2,
                                      "inc": inc, "teff1": teff1, "teff2": teff2, "q": q,
                                      "amplitude": -2.5 * np.log10(low.min(1))}


def _pulsator(t, band, rng, period, a_v, amps, phases, r, gr, extra):
    """Scale a sine-series template to peak-to-peak A_V x V_TO_BAND and make fluxes."""
    amps = amps * (a_v / peak_to_peak(amps, phases))[:, None]
    t0 = rng.uniform(0, period)
    dm = np.zeros(t.shape)
    for b in (0, 1):  # one template, scaled per band
        dm += (band == b) * fourier_mag(t, _col(t0), _col(period), amps * V_TO_BAND[b], phases)
    return _flux(r, gr, band, dm), {"mag": r, "color_gr": gr, "period": period, "t0": t0,
                                    "amplitude": a_v * V_TO_BAND[1], **extra}


def rr_lyrae_ab(t, band, mask, rng):
    n = t.shape[0]
    period = np.clip(rng.normal(0.57, 0.07, n), 0.42, 0.85)
    feh = rng.normal(-1.5, 0.35, n)
    a_v = np.clip(bailey_oo1(period) + rng.normal(0, 0.1, n), 0.3, 1.4)
    rk = np.stack([np.ones(n), rng.normal(0.48, 0.03, n), rng.normal(0.32, 0.03, n), rng.normal(0.20, 0.03, n)], 1)
    phi31 = phi31_jk96(period, feh)
    phases = np.stack([np.zeros(n), rng.normal(2.45, 0.08, n), phi31, rng.normal(7.6, 0.2, n)], 1)
    return _pulsator(t, band, rng, period, a_v, rk, phases, star_mag(rng, n, 14.0, 19.5), rng.normal(0.25, 0.05, n),
                     {"feh": feh, "phi31": phi31, "abs_mag": 0.23 * feh + 0.93})


def rr_lyrae_c(t, band, mask, rng):
    n = t.shape[0]
    period = np.clip(rng.normal(0.32, 0.04, n), 0.22, 0.45)
    rk = np.stack([np.ones(n), rng.normal(0.15, 0.03, n), rng.normal(0.07, 0.02, n)], 1)
    phases = np.stack([np.zeros(n), rng.normal(4.8, 0.2, n), rng.normal(3.0, 0.3, n)], 1)
    return _pulsator(t, band, rng, period, rng.uniform(0.25, 0.55, n), rk, phases, star_mag(rng, n, 14.0, 19.5),
                     rng.normal(0.15, 0.05, n), {"abs_mag": np.full(n, 0.6)})


def cepheid(t, band, mask, rng):
    n = t.shape[0]
    logp = rng.uniform(0.4, 1.5, n)
    r21 = 0.42 - 0.30 * np.exp(-(((logp - 1.0) / 0.08) ** 2))  # the Hertzsprung progression's dip near 10 d
    rk = np.stack([np.ones(n), r21, 0.5 * r21], 1)
    phases = np.stack([np.zeros(n), 2.6 + 1.2 * np.tanh((logp - 1.0) / 0.1), rng.normal(5.4, 0.2, n)], 1)
    return _pulsator(t, band, rng, 10**logp, rng.uniform(0.3, 1.0, n), rk, phases, star_mag(rng, n, 12.0, 18.0),
                     rng.normal(0.6, 0.1, n), {"abs_mag": cepheid_mv(10**logp)})


def delta_scuti(t, band, mask, rng):
    n = t.shape[0]
    p0, a_v = 10 ** rng.uniform(np.log10(0.04), np.log10(0.2), n), 10 ** rng.uniform(-2, np.log10(0.3), n)
    r, gr, t0, t1 = star_mag(rng, n), rng.normal(0.15, 0.05, n), rng.uniform(0, p0), rng.uniform(0, p0)
    ratio = rng.uniform(0, 0.6, n)  # first-overtone amplitude over fundamental
    dm = np.zeros(t.shape)
    for b in (0, 1):
        a = _col(a_v * V_TO_BAND[b] / 2)
        dm += (band == b) * a * (np.sin(2 * np.pi * (t - _col(t0)) / _col(p0))
                                 + _col(ratio) * np.sin(2 * np.pi * (t - _col(t1)) / _col(p0 * DSCT_OVERTONE_RATIO)))
    return _flux(r, gr, band, dm), {"mag": r, "color_gr": gr, "period": p0, "t0": t0, "amplitude": a_v * V_TO_BAND[1],
                                    "period1": p0 * DSCT_OVERTONE_RATIO, "abs_mag": dsct_mv(p0)}


def lpv(t, band, mask, rng):
    n = t.shape[0]
    period, a_v = 10 ** rng.uniform(np.log10(60), np.log10(400), n), rng.uniform(0.5, 4.0, n)
    rk = np.stack([np.ones(n), rng.uniform(0.0, 0.15, n)], 1)
    phases = np.stack([np.zeros(n), rng.uniform(0, 2 * np.pi, n)], 1)
    return _pulsator(t, band, rng, period, a_v, rk, phases, star_mag(rng, n, 11.0, 17.0), rng.normal(1.4, 0.2, n), {})


def agn(t, band, mask, rng):
    n = t.shape[0]
    z, m_i, m_bh = rng.uniform(0.3, 2.5, n), rng.uniform(-27, -23, n), 10 ** rng.normal(8.5, 0.4, n)
    r, gr = star_mag(rng, n, 16.5, 20.0, slope=0.6), rng.normal(0.2, 0.1, n)
    sf, tau = macleod_drw(m_i, m_bh, z, WAVELENGTH_NM[1])
    sf_g, _ = macleod_drw(m_i, m_bh, z, WAVELENGTH_NM[0])
    x = ou_process(np.maximum.accumulate(t, axis=1), tau, sf / np.sqrt(2), rng)  # one process, SF(lambda) scaled
    dm = x * np.where(band == 0, _col(sf_g / sf), 1.0)
    return _flux(r, gr, band, dm), {"mag": r, "color_gr": gr, "z": z, "sf_inf": sf, "tau": tau, "m_bh": m_bh,
                                    "abs_mag": m_i, "amplitude": sf}


def flare(t, band, mask, rng):
    """An active M dwarf: flares at a rate of 0.2-1 per day, each a Davenport template. Only the visits within
    [-1, +25] half-widths of a flare are evaluated (the template is < 0.1 % of its peak after that)."""
    n, n_t = t.shape
    r, gr = star_mag(rng, n, 14.0, 19.5), rng.normal(1.4, 0.1, n)
    counts = rng.poisson(rng.uniform(0.2, 1.0, n) * 182.0)
    obj = np.repeat(np.arange(n), counts)
    tk = rng.uniform(-1, 182, obj.size)
    amp = np.minimum(0.05 * rng.random(obj.size) ** -1.0, 5.0)  # dN/dA ~ A^-2 above 5 % (Hawley+2014)
    half = 10 ** rng.uniform(np.log10(3 / 1440), np.log10(30 / 1440), obj.size)
    key = (np.arange(n)[:, None] * 1000.0 + np.maximum.accumulate(t, axis=1)).ravel()  # sorted, object-major
    lo = np.searchsorted(key, obj * 1000.0 + tk - half)
    hi = np.searchsorted(key, obj * 1000.0 + tk + 25 * half)
    which = np.repeat(np.arange(obj.size), hi - lo)  # (flare, visit) pairs
    pos = lo[which] + np.arange(which.size) - np.repeat(np.cumsum(hi - lo) - (hi - lo), hi - lo)
    rel = np.zeros(n * n_t)
    boost = np.where(band.ravel()[pos] == 0, 3.0, 1.0)  # flares are hot: ~3x the r amplitude in g
    np.add.at(rel, pos, amp[which] * boost * davenport_flare((t.ravel()[pos] - tk[which]) / half[which]))
    big, when = np.zeros(n), np.full(n, np.nan)
    order = np.lexsort((amp, obj))  # the largest flare of each star last
    big[obj[order]], when[obj[order]] = amp[order], tk[order]
    return _flux(r, gr, band) * (1 + rel.reshape(n, n_t)), {"mag": r, "color_gr": gr, "n_flares": counts * 1.0,
                                                             "t0": when, "amplitude": 2.5 * np.log10(1 + big)}


def distmod(z, h0=67.66, om0=0.30966):
    """Flat LambdaCDM distance modulus with Planck18's H0 and Omega_m (radiation neglected: < 0.001 mag at
    z < 0.3 against astropy.cosmology.Planck18, tested); importing astropy.cosmology takes seconds."""
    grid = np.linspace(0.0, 0.31, 621)
    inv_e = 1 / np.sqrt(om0 * (1 + grid) ** 3 + 1 - om0)
    chi = np.concatenate([[0], np.cumsum(0.5 * (inv_e[1:] + inv_e[:-1]) * np.diff(grid))]) * 299792.458 / h0
    z = np.asarray(z, float)
    return 5 * np.log10(np.interp(z, grid, chi) * (1 + z) * 1e6 / 10)


def _supernova(t, band, rng, z, peak_abs, tau_rise, tau_fall, gamma, gr):
    n = t.shape[0]
    t_exp, beta = rng.uniform(-20, 170, n), rng.uniform(-0.01, 0.0, n)
    dil = 1 + z  # every rest-frame time scale stretches by (1 + z)
    peak_r = peak_abs + distmod(z)
    fall = np.where(band == 0, 0.7, 1.0) * _col(tau_fall * dil)  # blue fades first
    args = (_col(t_exp), _col(tau_rise * dil))
    shape = villar_sn(t, 1.0, _col(beta), _col(gamma * dil), args[0], args[1], fall)
    grid = t_exp[:, None] + np.linspace(0, 1, 400)[None, :] * (gamma + 5 * tau_rise)[:, None] * dil[:, None]
    norm = villar_sn(grid, 1.0, _col(beta), _col(gamma * dil), *args, _col(tau_fall * dil)).max(1)
    flux = _flux(peak_r, gr, band) * shape / _col(norm)
    return flux, {"mag": peak_r, "color_gr": gr, "z": z, "t0": t_exp, "tau_rise": tau_rise * dil,
                  "tau_fall": tau_fall * dil, "gamma": gamma * dil, "abs_mag": peak_abs, "amplitude": peak_r}


def sn_ia(t, band, mask, rng):
    n = t.shape[0]
    return _supernova(t, band, rng, rng.uniform(0.02, 0.12, n), rng.normal(-19.3, 0.15, n),
                      rng.normal(3.0, 0.5, n).clip(1.5), rng.uniform(25, 40, n), rng.uniform(8, 15, n),
                      rng.normal(0.0, 0.1, n))


def sn_cc(t, band, mask, rng):
    n = t.shape[0]
    return _supernova(t, band, rng, rng.uniform(0.005, 0.05, n), rng.normal(-17.0, 0.8, n),
                      rng.uniform(2, 6, n), rng.uniform(10, 30, n), rng.uniform(30, 100, n), rng.normal(0.3, 0.15, n))


def microlensing(t, band, mask, rng):
    n = t.shape[0]
    r, gr = star_mag(rng, n, 15.0, 20.0), rng.normal(0.9, 0.3, n)
    t0, u0, t_e = rng.uniform(10, 170, n), rng.uniform(0.01, 1.0, n), 10 ** rng.normal(1.3, 0.3, n)
    fs_r = rng.uniform(0.2, 1.0, n)
    fs = np.where(band == 0, _col(np.clip(fs_r * rng.uniform(0.8, 1.2, n), 0.05, 1)), _col(fs_r))
    mag = paczynski(t, _col(t0), _col(u0), _col(t_e))
    peak = fs_r * paczynski(0.0, 0.0, u0, 1.0) + 1 - fs_r
    return _flux(r, gr, band) * (fs * mag + 1 - fs), {"mag": r, "color_gr": gr, "t0": t0, "u0": u0, "t_e": t_e,
                                                      "blend_r": fs_r, "amplitude": 2.5 * np.log10(peak)}


MODELS = {f.__name__: f for f in (constant, transit, eclipsing_binary, rr_lyrae_ab, rr_lyrae_c, cepheid,
                                  delta_scuti, lpv, agn, flare, sn_ia, sn_cc, microlensing)}

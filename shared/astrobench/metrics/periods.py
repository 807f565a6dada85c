"""Period recovery for light curves: a found period is right within 1 %; the usual wrong answers (half or double
the period, a 1-day alias of the frequency) are reported apart, since each points to a different fix (fold at
twice the period for an eclipsing binary; observe from more longitudes for the daily alias).

Reference methods (classical, the right tool before ML), both astropy: ``method="ls"`` a per-band Lomb-Scargle
(VanderPlas 2018) combined across bands, ``"multiband"`` astropy's LombScargleMultiband (VanderPlas & Ivezic 2015),
``"bls"`` Box Least Squares (Kovacs, Zucker & Mazeh 2002) for transits and eclipses.
"""

from __future__ import annotations

import numpy as np

LABELS = ("recovered", "half", "double", "daily_alias", "other", "none")


def recovered(true, found, tol: float = 0.01):
    """True where ``found`` is within a fraction ``tol`` of ``true`` (both periods, any units)."""
    true, found = np.asarray(true, float), np.asarray(found, float)
    return np.abs(found - true) <= tol * true


def classify(true, found, tol: float = 0.01) -> np.ndarray:
    """One label of ``LABELS`` per pair: ``half`` / ``double`` (found = P/2, 2P within ``tol``), ``daily_alias``
    (found frequency = true +- 1 or 2 cycles per day, within tol x max(f_true, 1 c/d)), ``none`` (NaN found)."""
    true, found = np.broadcast_arrays(np.asarray(true, float), np.asarray(found, float))
    out = np.full(true.shape, "other", dtype="U11")
    ft, ff = 1 / true, 1 / found
    df = tol * np.maximum(ft, 1.0)
    alias = np.zeros(true.shape, bool)
    for k in (-2, -1, 1, 2):
        alias |= np.abs(ff - np.abs(ft + k)) <= df
    out[alias] = "daily_alias"
    out[recovered(2 * true, found, tol)] = "double"
    out[recovered(true / 2, found, tol)] = "half"
    out[recovered(true, found, tol)] = "recovered"
    out[~np.isfinite(found)] = "none"
    return out


def report(true, found, tol: float = 0.01) -> dict:
    """Fraction of each label (sums to 1) and the count."""
    labels = classify(true, found, tol)
    n = max(labels.size, 1)
    return {"n": int(labels.size), **{k: float((labels == k).sum() / n) for k in LABELS}}


def frequency_grid(time, min_period: float = 0.02, max_period: float | None = None, oversample: int = 5):
    """Uniform frequency grid (c/d) from 1/max_period (default: the baseline) to 1/min_period, step
    1/(oversample x baseline): fine enough that a peak of width ~1/baseline is not stepped over."""
    span = float(np.ptp(time))
    f_lo = 1 / (max_period or span)
    return np.arange(f_lo, 1 / min_period, 1 / (oversample * span))


def find_period(time, flux, flux_err=None, band=None, mask=None, method: str = "ls", min_period: float = 0.02,
                max_period: float | None = None, oversample: int = 5, durations=(0.05, 0.1, 0.2), site=None):
    """Best period (days) of one light curve and its periodogram peak height.

    ``ls``: astropy LombScargle per band (fast method), powers averaged with weights = points per band;
    ``multiband``: astropy LombScargleMultiband (one shared period, per-band offsets and amplitudes);
    ``bls``: astropy BoxLeastSquares on the flux divided by each band's median (dips shared by the bands),
    trial periods 2 x the longest duration (at least ``min_period``) to ``max_period`` (default min(T/3, 30 d)).
    ``site``: divide each (band, site) group by its median first, removing per-site zero points (worth it for
    shallow signals; it distorts large-amplitude, long-period curves that a site sees only part of).
    The LS peak is refined on a 64-point grid across its grid step (the step is ~1/(oversample T) in frequency,
    too coarse for 1 % at periods of weeks)."""
    from astropy.timeseries import BoxLeastSquares, LombScargleMultiband

    t = np.asarray(time, float)
    y = np.array(flux, float)  # copies: normalised in place below
    dy = np.ones_like(y) if flux_err is None else np.array(flux_err, float)
    b = np.zeros(t.shape, int) if band is None else np.asarray(band, int)
    keep = np.isfinite(t) & np.isfinite(y) & (dy > 0)
    if mask is not None:
        keep &= np.asarray(mask, bool)
    t, y, dy, b = t[keep], y[keep], dy[keep], b[keep]
    if t.size < 10:
        return np.nan, np.nan
    group = b if site is None else b * 1000 + np.asarray(site, int)[keep]
    if site is not None or method == "bls":
        for k in np.unique(group):
            med = np.median(y[group == k])
            if med != 0:
                y[group == k], dy[group == k] = y[group == k] / med, dy[group == k] / abs(med)
    if method == "bls":
        bls = BoxLeastSquares(t, y, dy)
        span = float(np.ptp(t))
        f_hi, f_lo = 1 / max(min_period, 2 * max(durations)), 1 / (max_period or min(span / 3, 30.0))
        # log-uniform in frequency: a step d ln f = d_min / T keeps the folded box of the shortest duration
        # within its width over the whole baseline; long trial periods cost the most (bins of d / 5 per period)
        freq = np.exp(np.arange(np.log(f_lo), np.log(f_hi), min(durations) / span))
        res = bls.power(1 / freq[::-1], durations, oversample=5)
        i = int(np.argmax(res.power))
        return float(res.period[i]), float(res.power[i])
    freq = frequency_grid(t, min_period, max_period, oversample)
    if method == "multiband":
        power = LombScargleMultiband(t, y, b, dy).power(freq, method="flexible")
    elif method == "ls":
        power = _band_ls(t, y, dy, b, freq, "fast")
        i = int(np.argmax(power))
        fine = freq[i] + np.linspace(-1, 1, 64) * (freq[1] - freq[0])
        fine_power = _band_ls(t, y, dy, b, fine, "cython")
        j = int(np.argmax(fine_power))
        return float(1 / fine[j]), float(fine_power[j])
    else:
        raise ValueError(f"unknown method {method!r}; expected ls, multiband or bls")
    i = int(np.argmax(power))
    return float(1 / freq[i]), float(power[i])


def _band_ls(t, y, dy, b, freq, how):
    """astropy LombScargle per band, powers averaged with weights = points per band."""
    from astropy.timeseries import LombScargle

    power, weight = np.zeros(freq.size), 0
    for k in np.unique(b):
        sel = b == k
        if sel.sum() >= 5:
            power += sel.sum() * LombScargle(t[sel], y[sel], dy[sel]).power(freq, method=how)
            weight += sel.sum()
    return power / max(weight, 1)

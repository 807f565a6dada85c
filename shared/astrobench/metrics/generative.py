"""Generative track metric: morphology statistics of generated vs held-out galaxy images.

Per image (bands g, r, z; the r band is the detection band) we measure

- ``mag_g, mag_r, mag_z``: AB magnitudes (zero point 22.5) of the flux in a circular aperture of
  1.5 r_petro (the CAS total-flux aperture) in each band; ``g_r``, ``r_z``: the colours from them;
- ``r50``: half-light radius (pixels) within that aperture;
- ``concentration``: C = 5 log10(r80 / r20) (Lotz+2004, Conselice 2003);
- ``asymmetry``: A = (sum |I - I_180| - area * B_sky) / sum |I| about the centre that minimises A,
  with the sky term B_sky = E|n - n'| = 2 sigma / sqrt(pi) for Gaussian sky noise of known sigma;
- ``ellipticity``: 1 - b/a from the second moments of the source's segment;
- ``logP_low / logP_mid / logP_high``: log10 of the azimuthally averaged power spectrum of the r band
  in three wavenumber bins (1-4, 4-12, 12-32 cycles per stamp): large-scale light, galaxy
  structure and the PSF + pixel-noise regime.

The definitions follow statmorph (Rodriguez-Gomez+2019) step by step (centroid of the segment ->
circular Petrosian radius, eta = 0.2 -> asymmetry centre -> Petrosian radius about it -> r20, r50, r80
within 1.5 r_petro), vectorised over images so that scoring thousands of stamps takes seconds instead
of the minutes statmorph needs; ``generative/tests/test_generative_metric.py`` checks C and A against
statmorph itself.

Score: for each statistic the Wasserstein-1 distance between generated and test-split values,
divided by the test set's standard deviation; ``W_mean`` is their mean; ``W_floor`` is the same mean
between two disjoint halves of the test split (even vs odd rows), and ``W_ratio = W_mean / W_floor``.
The floor compares 2 x half-size sets, so a perfect generator scored with >= 2 000 samples against
the whole test split lands *below* 1 (about 0.7): a ratio near 1 is as good as real data gets.

Input: ``{"images": float array N x 3 x 64 x 64}`` in nanomaggies per pixel (sky-subtracted, like
``astrobench.data.load("galaxies").images``); optional ``"fast"`` (0-d bool: which test split to
compare with; default: FAST mode) and ``"dataset"`` (0-d str, default ``galaxies``). Against the
full test split (2 000 images) at least 1 000 samples are required; against the FAST split (200
images) at least 200, the size of that split.
"""

from __future__ import annotations

import functools

import numpy as np

from . import ScoreInputError, require

BANDS = ("g", "r", "z")
DETECTION_BAND = 1  # r
STATS = ("mag_g", "mag_r", "mag_z", "g_r", "r_z", "r50", "concentration", "asymmetry", "ellipticity",
         "logP_low", "logP_mid", "logP_high")
MIN_SAMPLES_FULL = 1000
ETA = 0.2  # Petrosian eta (statmorph default)
PETRO_EXTENT = 1.5  # CAS aperture = 1.5 r_petro (statmorph petro_extent_cas)
SUBPIX = 4  # sub-pixels per axis for the growth curves (aperture photometry to ~0.1 %)
DR = 0.05  # growth-curve radius step, pixels
PK_BINS = ((1, 4), (4, 12), (12, 33))  # |k| bins in cycles per stamp
FLUX_FLOOR = 1e-2  # nanomaggies (mag 27.5): keeps magnitudes finite for empty samples


# ---------------------------------------------------------------- per-image statistics


def _segmap(det: np.ndarray, sigma: float) -> np.ndarray:
    """Boolean segment of the central source: r band smoothed by a 1-px Gaussian, > 2 sigma_smoothed,
    the connected region holding the brightest smoothed pixel of the central 20 x 20 box."""
    from scipy import ndimage

    n, h, _ = det.shape
    smooth = ndimage.gaussian_filter(det, sigma=(0, 1.0, 1.0))
    thresh = 2.0 * sigma / (2.0 * np.sqrt(np.pi))  # noise sigma after a unit-sigma Gaussian filter
    seg = np.zeros(det.shape, dtype=bool)
    c0, c1 = h // 2 - 10, h // 2 + 10
    for i in range(n):
        box = smooth[i, c0:c1, c0:c1]
        py, px = np.unravel_index(np.argmax(box), box.shape)
        py, px = py + c0, px + c0
        labels, _ = ndimage.label(smooth[i] > thresh)
        if labels[py, px] > 0:
            seg[i] = labels == labels[py, px]
        else:  # nothing detected: a 3 x 3 seed at the brightest central pixel
            seg[i, max(py - 1, 0):py + 2, max(px - 1, 0):px + 2] = True
    return seg


def _growth_curves(img: np.ndarray, cx: np.ndarray, cy: np.ndarray, rmax: float):
    """Flux and area inside circles of radius k*DR about (cx, cy), by sub-pixel binning in radius.

    Returns (edges, flux[n, K], area[n, K]); equivalent to exact aperture photometry to ~0.1 %."""
    n, h, w = img.shape
    nb = int(np.ceil(rmax / DR)) + 1
    off = (np.arange(SUBPIX) + 0.5) / SUBPIX - 0.5
    yy = (np.arange(h)[:, None] + off[None, :]).reshape(-1)  # (h*S,)
    xx = (np.arange(w)[:, None] + off[None, :]).reshape(-1)
    flux = np.empty((n, nb))
    area = np.empty((n, nb))
    for i in range(n):
        d = np.hypot(yy[:, None] - cy[i], xx[None, :] - cx[i])  # (h*S, w*S)
        b = np.minimum((d / DR).astype(np.int64), nb - 1)  # sub-pixel in bin b: radius in [b, b+1) * DR
        sub = np.repeat(np.repeat(img[i], SUBPIX, 0), SUBPIX, 1) / SUBPIX**2
        flux[i] = np.bincount(b.ravel(), weights=sub.ravel(), minlength=nb)
        area[i] = np.bincount(b.ravel(), minlength=nb) / SUBPIX**2
    edges = np.arange(1, nb + 1) * DR  # cumulative sums are the totals inside these radii
    return edges, np.cumsum(flux, 1), np.cumsum(area, 1)


def _interp_rows(x, xp, fp):
    """np.interp per row: x (n,), xp (K,), fp (n, K)."""
    j = np.clip(np.searchsorted(xp, x) - 1, 0, len(xp) - 2)
    t = np.clip((x - xp[j]) / (xp[j + 1] - xp[j]), 0, 1)
    rows = np.arange(len(x))
    return fp[rows, j] * (1 - t) + fp[rows, j + 1] * t


def _first_crossing(r, g, coarse):
    """Root of g (rows of samples on the fine grid r) the way statmorph finds it: the first point of the
    coarse grid where g <= 0, then (like its brentq) the first fine-grid sign change after the last
    coarse point where g > 0. Returns (root, found)."""
    kc = np.clip(np.searchsorted(r, coarse), 0, len(r) - 1)  # coarse points on the fine grid
    neg = g[:, kc] <= 0
    found = neg.any(axis=1)
    first = np.argmax(neg, axis=1)
    out = np.empty(len(g))
    for i in range(len(g)):
        if not found[i]:
            out[i] = r[-1]
            continue
        if first[i] == 0:
            out[i] = r[kc[0]]
            continue
        lo, hi = kc[first[i] - 1], kc[first[i]]
        seg = g[i, lo:hi + 1]
        j = int(np.argmax(seg <= 0))  # first fine sample at or below zero in the bracket
        a, b = seg[j - 1], seg[j]
        out[i] = r[lo + j - 1] + (r[lo + j] - r[lo + j - 1]) * a / (a - b) if a != b else r[lo + j]
    return out, found


def _petrosian(edges, flux, area, rmax):
    """Circular Petrosian radius (eta = 0.2): mean(annulus r +/- 0.5) / mean(< r) = eta, searched on
    statmorph's grid of 100 radii from 1 to the stamp diagonal."""
    r = np.arange(1.0, rmax + DR, DR)
    f_in, f_lo, f_hi = (np.stack([np.interp(x, edges, row) for row in flux]) for x in (r, r - 0.5, r + 0.5))
    a_in, a_lo, a_hi = (np.stack([np.interp(x, edges, row) for row in area]) for x in (r, r - 0.5, r + 0.5))
    mean_in = np.abs(f_in) / np.maximum(a_in, 1e-12)
    mean_ann = np.abs(f_hi - f_lo) / np.maximum(a_hi - a_lo, 1e-12)
    g = mean_ann / np.maximum(mean_in, 1e-30) - ETA
    out, _ = _first_crossing(r, g, np.linspace(1.0, rmax, 100))
    return out


def _radius_at_fraction(edges, flux, r_total, fraction):
    """Radius holding ``fraction`` of the flux inside r_total (statmorph's grid of 100 radii, then the root)."""
    total = np.abs(_interp_rows(r_total, edges, flux))
    r = np.concatenate([[0.0], edges])
    f = np.concatenate([np.zeros((len(flux), 1)), flux], axis=1)
    out = np.empty(len(flux))
    for i in range(len(flux)):
        root, found = _first_crossing(r, (fraction * total[i] - f[i])[None], np.linspace(0.0, r_total[i], 100))
        out[i] = root[0] if found[0] else r_total[i]
    return np.clip(out, 1e-3, None)


def _rotate180(img, cx, cy):
    """I(2c - x) by bilinear interpolation, zero outside (skimage.transform.rotate(img, 180, center=c)).

    img (n, h, w); cx, cy (n, m) candidate centres -> (n, m, h, w). For a 180-degree rotation the
    sampling offset 2c - floor(2c) is the same for every pixel, so the result is a blend of four
    integer shifts of the flipped image: windows of a zero-padded copy, no per-pixel gathers."""
    n, h, w = img.shape
    pad = np.pad(img[:, ::-1, ::-1], ((0, 0), (h, h), (w, w)))
    win = np.lib.stride_tricks.sliding_window_view(pad, (h, w), axis=(1, 2))  # (n, 2h+1, 2w+1, h, w)
    ky, kx = np.floor(2 * cy), np.floor(2 * cx)
    fy, fx = (2 * cy - ky)[..., None, None], (2 * cx - kx)[..., None, None]
    rows = np.arange(n)[:, None]
    out = 0.0
    for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        sy = np.clip(2 * h - 1 - ky.astype(np.int64) - dy, 0, 2 * h)  # window start in the padded flip
        sx = np.clip(2 * w - 1 - kx.astype(np.int64) - dx, 0, 2 * w)
        out = out + wgt * win[rows, sy, sx]
    return out


def _aperture_weights(cx, cy, r, h, w):
    """Fraction of each pixel inside a circle: clip(r - d + 1/2, 0, 1), a close approximation of exact overlap."""
    dy = (np.arange(h, dtype=np.float32)[:, None] - cy[..., None, None].astype(np.float32)) ** 2
    d = np.sqrt(dy + (np.arange(w, dtype=np.float32)[None, :] - cx[..., None, None].astype(np.float32)) ** 2)
    return np.clip(r[..., None, None].astype(np.float32) - d + 0.5, 0.0, 1.0)


def _asymmetry(img, cx, cy, radius, sky_asym):
    """CAS asymmetry (Lotz+2004 eq. 10) for candidate centres cx, cy of shape (n, m)."""
    _, h, w = img.shape
    rot = _rotate180(img, cx, cy)
    wts = _aperture_weights(cx, cy, np.broadcast_to(radius[:, None], cx.shape), h, w)
    diff = np.sum(wts * np.abs(rot - img[:, None]), axis=(2, 3))
    absum = np.sum(wts * np.abs(img[:, None]), axis=(2, 3))
    return (diff - wts.sum((2, 3)) * sky_asym[:, None]) / np.maximum(absum, 1e-30)


def _asymmetry_centre(img, cx, cy, radius, sky_asym):
    """Minimise A over the centre by a shrinking 3 x 3 pattern search (statmorph uses Nelder-Mead).

    Only images whose best centre moved are searched again at the same step."""
    grid = np.array([(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], dtype=float)
    cx, cy = cx.copy(), cy.copy()
    for step in (1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125):
        todo = np.arange(len(img))
        for _ in range(3):
            cand_x = cx[todo, None] + step * grid[None, :, 0]
            cand_y = cy[todo, None] + step * grid[None, :, 1]
            a = _asymmetry(img[todo], cand_x, cand_y, radius[todo], sky_asym[todo])
            best = np.argmin(a, axis=1)
            rows = np.arange(len(todo))
            cx[todo], cy[todo] = cand_x[rows, best], cand_y[rows, best]
            todo = todo[best != 4]
            if len(todo) == 0:
                break
    return cx, cy


def _power_spectrum(det):
    _, h, w = det.shape
    p = np.abs(np.fft.fft2(det)) ** 2 / (h * w)
    k = np.hypot(np.fft.fftfreq(h)[:, None] * h, np.fft.fftfreq(w)[None, :] * w)
    return {name: np.log10(np.maximum(p[:, (k >= lo) & (k < hi)].mean(1), 1e-30))
            for name, (lo, hi) in zip(("logP_low", "logP_mid", "logP_high"), PK_BINS)}


def statistics(images, sky_sigma, *, segmap=None, sky_asym=None, chunk: int = 128, progress: bool = False) -> dict:
    """Morphology statistics (``STATS``) of (N, 3, H, W) images in nanomaggies; returns {name: (N,) array}.

    ``sky_sigma``: per-band background noise (3,), e.g. ``ds.meta["config"]["sky_sigma"]``.
    ``segmap`` (N, H, W) bool and ``sky_asym`` (N,) override the built-in segmentation and the
    Gaussian sky-asymmetry term (the statmorph comparison test passes statmorph's own)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) images, got {images.shape}")
    sky_sigma = np.asarray(sky_sigma, dtype=np.float64)
    n, _, h, w = images.shape
    out = {s: np.empty(n) for s in STATS}
    starts = range(0, n, chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="morphology statistics", unit="chunk")
    for s in starts:
        sl = slice(s, min(s + chunk, n))
        img = np.asarray(images[sl], dtype=np.float64)
        det = img[:, DETECTION_BAND]
        det32 = det.astype(np.float32)  # the asymmetry search is bandwidth-bound: float32 halves it
        m = len(img)
        seg = _segmap(det, sky_sigma[DETECTION_BAND]) if segmap is None else np.asarray(segmap[sl], dtype=bool)
        sa = (np.full(m, 2.0 * sky_sigma[DETECTION_BAND] / np.sqrt(np.pi)) if sky_asym is None
              else np.asarray(sky_asym[sl], dtype=np.float64))
        # 1. centroid of the segment (statmorph: first moments of the segment's pixel values)
        segimg = np.where(seg, det, 0.0)
        tot = segimg.sum((1, 2))
        ok = tot > 0
        yy, xx = np.arange(h)[:, None], np.arange(w)[None, :]
        cx = np.where(ok, (segimg * xx).sum((1, 2)) / np.where(ok, tot, 1), (w - 1) / 2)
        cy = np.where(ok, (segimg * yy).sum((1, 2)) / np.where(ok, tot, 1), (h - 1) / 2)
        # 2. Petrosian radius about the centroid sets the asymmetry aperture
        rmax = float(np.hypot(h, w))
        e, f, a = _growth_curves(det, cx, cy, rmax)
        rp0 = _petrosian(e, f, a, rmax)
        # 3. asymmetry centre and asymmetry
        ax, ay = _asymmetry_centre(det32, cx, cy, PETRO_EXTENT * rp0, sa)
        out["asymmetry"][sl] = _asymmetry(det, ax[:, None], ay[:, None], PETRO_EXTENT * rp0, sa)[:, 0]
        # 4. Petrosian radius about the asymmetry centre; r20, r50, r80 within 1.5 r_petro
        e, f, a = _growth_curves(det, ax, ay, rmax)
        r_tot = PETRO_EXTENT * _petrosian(e, f, a, rmax)
        r20, r50, r80 = (_radius_at_fraction(e, f, r_tot, q) for q in (0.2, 0.5, 0.8))
        out["r50"][sl] = r50
        out["concentration"][sl] = 5 * np.log10(np.maximum(r80, 1e-3) / np.maximum(r20, 1e-3))
        # 5. fluxes and colours in the same aperture, all bands
        wts = _aperture_weights(ax, ay, r_tot, h, w)
        flux = np.maximum(np.einsum("nbhw,nhw->nb", img, wts), FLUX_FLOOR)
        mags = 22.5 - 2.5 * np.log10(flux)
        for j, b in enumerate(BANDS):
            out[f"mag_{b}"][sl] = mags[:, j]
        out["g_r"][sl] = mags[:, 0] - mags[:, 1]
        out["r_z"][sl] = mags[:, 1] - mags[:, 2]
        # 6. ellipticity from the segment's second moments about the asymmetry centre
        wsum = np.maximum(tot, 1e-30)
        dx, dy = xx[None] - ax[:, None, None], yy[None] - ay[:, None, None]
        cxx, cyy, cxy = ((segimg * q).sum((1, 2)) / wsum for q in (dx * dx, dy * dy, dx * dy))
        tr, det2 = cxx + cyy, cxx * cyy - cxy**2
        disc = np.sqrt(np.maximum(tr**2 / 4 - det2, 0))
        l1, l2 = tr / 2 + disc, np.maximum(tr / 2 - disc, 0)
        out["ellipticity"][sl] = np.where(l1 > 0, 1 - np.sqrt(l2 / np.where(l1 > 0, l1, 1)), 0.0)
        # 7. radial power spectrum of the r band
        for k, v in _power_spectrum(det).items():
            out[k][sl] = v
    for k in out:  # degenerate images (e.g. pure noise) must not poison the distances
        out[k] = np.nan_to_num(out[k], nan=0.0, posinf=1e3, neginf=-1e3)
    return out


# ---------------------------------------------------------------- distances and the score


def wasserstein(gen: dict, ref: dict) -> dict:
    """W1 per statistic, divided by the reference set's standard deviation."""
    from scipy.stats import wasserstein_distance

    return {s: float(wasserstein_distance(gen[s], ref[s]) / max(np.std(ref[s]), 1e-12)) for s in STATS}


@functools.lru_cache(maxsize=4)
def reference(dataset: str = "galaxies", fast: bool = False):
    """(test-split statistics, per-statistic floor dict, W_floor, sky_sigma, n) for a dataset; cached per process."""
    from .. import data

    ds = data.load(dataset, "test", fast=fast)
    if ds.arrays.get("images") is None or tuple(ds.images.shape[1:]) != (3, 64, 64):
        raise ScoreInputError(f"dataset {dataset!r} has no 3 x 64 x 64 'images'; expected an image set like galaxies")
    sky = np.asarray(ds.meta["config"]["sky_sigma"], dtype=np.float64)
    stats = statistics(ds.images, sky)
    even = {s: v[0::2] for s, v in stats.items()}
    odd = {s: v[1::2] for s, v in stats.items()}
    floor = wasserstein(even, odd)
    return stats, floor, float(np.mean(list(floor.values()))), sky, len(ds)


def _test_size(dataset: str) -> int:
    """Rows of the FAST test split (loaded, not measured): the minimum number of samples against it."""
    from .. import data

    return len(data.load(dataset, "test", fast=True))


def _scalar(pred, key, default):
    if key not in pred:
        return default
    v = np.asarray(pred[key])
    if v.ndim != 0:
        raise ScoreInputError(f"{key!r} has shape {v.shape}; expected a scalar")
    return v.item()


def score(pred: dict, task: str | None = None, *, return_stats: bool = False):
    """Score generated samples ``pred["images"]`` (N x 3 x 64 x 64, nanomaggies) against the test split.

    ``return_stats=True`` also returns the samples' per-image statistics (for plots, without recomputing)."""
    from ..notebook import fast as fast_mode

    # everything about the input is checked before the reference statistics (a minute for the full split)
    images = require(pred, "images", shape=(None, 3, 64, 64), kind="f")
    dataset = str(task or _scalar(pred, "dataset", "galaxies"))
    fast = bool(_scalar(pred, "fast", fast_mode()))
    require(pred, "images", min_rows=_test_size(dataset) if fast else MIN_SAMPLES_FULL)
    ref, floor, w_floor, sky, n_ref = reference(dataset, fast)
    gen = statistics(images, sky)
    w = wasserstein(gen, ref)
    w_mean = float(np.mean(list(w.values())))
    result = {"W_ratio": w_mean / w_floor, "W_mean": w_mean, "W_floor": w_floor, "n_samples": len(images),
              "n_reference": n_ref, "reference": f"{dataset} test ({'FAST' if fast else 'full'})",
              **{f"W_{s}": v for s, v in w.items()}, **{f"floor_{s}": v for s, v in floor.items()}}
    return (result, gen) if return_stats else result

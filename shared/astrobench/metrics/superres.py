"""Super-resolution metrics: PSNR, SSIM, flux conservation, P(k) ratio, one-point PDF distance.

``score({"sr": (N, C, H, W)}, task="superres-galaxies" | "superres-fields" | "superres-nbody")`` (or a real set
with LR pairs: "camels-cmd-mtot", "galaxy10-decals", "galaxy10-sdss") loads the test split
(FAST or full, told apart by N), scores the predictions against HR, and scores bicubic
upsampling of LR the same way (keys ``*_bicubic``) as the reference every model must beat.

Definitions (all on the test split, in the dataset's units):

* ``psnr``: 10 log10(range^2 / MSE) per image, averaged over images (dB). The data range is the
  HR image's own peak-to-peak value (max - min over all its bands and pixels), so bright and
  faint galaxies count equally; computed with ``skimage.metrics.peak_signal_noise_ratio``.
* ``ssim``: ``skimage.metrics.structural_similarity`` per image (bands as channels, the same data
  range, default 7x7 uniform window), averaged over images.
* ``flux_bias``: sum over all test images of (sum(SR) - sum(HR)) / sum of sum(HR), per band then
  averaged: flux created or destroyed systematically. ``flux_err_median``: median over images
  and bands of |sum(SR) - sum(HR)| / sum(HR): per-object error, which LR noise limits.
* ``pk_ratio``: radially averaged power spectrum of the (mean-subtracted) SR images over that of
  HR, in bins of width 1/N cycles per pixel centred on k = 1/N ... 1/2 (HR Nyquist); ``pk_k`` is
  the bin centres in cycles per HR pixel. ``pk_worst_half_nyquist`` = max |ratio - 1| over the
  bins with k <= 1/4 (half the HR Nyquist frequency). At x4 the LR Nyquist frequency is 1/8, so
  the bins between 1/8 and 1/4 hold scales that LR does not resolve at all: a model must
  *generate* them; ``pk_worst_lr_nyquist`` is the same worst case over k <= 1/8 only.
* ``pdf_w1`` (fields only): 1-Wasserstein distance between the one-point distributions of
  pixel values (density) of SR and HR over the whole test split (the same number as
  ``scipy.stats.wasserstein_distance``).

superres-nbody (``superres:nbody``) scores the statistics that the N-body super-resolution papers use (Li+2021),
besides all of the above:

* ``samples`` (optional, (N, S, 1, 128, 128), 1 <= S <= MAX_SAMPLES): S draws of a stochastic model per LR map
  beside ``sr``; then every metric is computed for each draw (draw s of every map as one SR set) and averaged
  over the S draws, curves bin by bin (``n_samples`` says S). Without it, ``sr`` is scored (S = 1).
* Densities must be >= 0 (rho = projected density / cosmic mean).
* ``rk``: cross-correlation coefficient r(k) = P_SR,HR / sqrt(P_SR P_HR) per k bin (the bins of ``pk_ratio``),
  summed over maps; 1 where SR's Fourier phases and amplitudes follow HR's up to a factor per bin.
  ``rk_min_half_nyquist`` / ``rk_min_lr_nyquist``: its smallest value for k <= 1/4 / k <= 1/8.
* ``pdf_w1_log``: W1 between the one-point PDFs of log10(rho + LOG_OFFSET) (voids and halos alike).
* ``peaks_ratio_lo`` / ``peaks_ratio_hi``: the number of density peaks (local maxima over 3 x 3 periodic
  neighbours of the map smoothed by a Gaussian of PEAK_SIGMA HR pixels, i.e. to about half the HR Nyquist
  frequency) above PEAK_THRESHOLDS, in SR over HR, summed over the test maps: a halo count proxy.
  ``peaks_worst`` = max |ratio - 1| over the two thresholds.
* Floors: ``*_bicubic`` (bicubic of LR, clipped at 0: its overshoot makes negative densities) and ``*_lr``
  (the LR run itself on the HR grid: each LR pixel repeated factor x factor times).
"""

from __future__ import annotations

import numpy as np

from . import ScoreInputError, require, split_mode

# the simulated sets first: a bare SR array is matched to the first dataset of its shape
SHAPES = {"superres-galaxies": (3, 64, 64), "superres-fields": (1, 128, 128), "superres-nbody": (1, 128, 128),
          "camels-cmd-mtot": (1, 128, 128), "galaxy10-decals": (3, 64, 64), "galaxy10-sdss": (3, 64, 64)}
DATASETS = tuple(SHAPES)
NONNEGATIVE = ("superres-nbody",)  # densities of particles: a negative value is a broken prediction
MAX_SAMPLES = 16  # draws per LR map that superres-nbody scores (``samples``)
LOG_OFFSET = 0.1  # log10(rho + 0.1): HR maps have empty pixels (rho = 0), a particle adds ~0.25 to a pixel
PEAK_SIGMA = 1.0  # HR pixels (1 Mpc/h): the Gaussian that smooths maps before peaks are counted
PEAK_THRESHOLDS = (3.0, 10.0)  # rho of the smoothed map; FAST test HR: 645 and 80 peaks (full: 6x more)
CHUNK = 256


def bicubic(lr: np.ndarray, factor: int, extensive: bool) -> np.ndarray:
    """Bicubic upsampling (torch's Keys kernel, a = -0.75, align_corners=False) of (N, C, h, w).

    For extensive images (flux per pixel) the result is divided by factor^2 so that it keeps the
    LR flux; intensive ones (density) keep their values."""
    import torch
    import torch.nn.functional as F

    out = []
    for i in range(0, len(lr), CHUNK):
        x = torch.from_numpy(np.asarray(lr[i : i + CHUNK], dtype=np.float64))
        out.append(F.interpolate(x, scale_factor=factor, mode="bicubic", align_corners=False).numpy())
    up = np.concatenate(out) if out else np.zeros((0, *lr.shape[1:2], lr.shape[2] * factor, lr.shape[3] * factor))
    return (up / factor**2 if extensive else up).astype(np.float32)


def data_range(hr: np.ndarray) -> np.ndarray:
    """Per-image peak-to-peak of HR over all bands and pixels: the PSNR/SSIM data range."""
    return np.ptp(hr.reshape(len(hr), -1), axis=1)


def psnr(hr: np.ndarray, sr: np.ndarray) -> np.ndarray:
    """Per-image PSNR (dB) on the HR image's own data range; inf where SR == HR."""
    from skimage.metrics import peak_signal_noise_ratio

    rng = data_range(hr)
    with np.errstate(divide="ignore"):  # identical images: MSE 0 -> +inf, the correct value
        return np.array([peak_signal_noise_ratio(h.astype(np.float64), s.astype(np.float64), data_range=r)
                         for h, s, r in zip(hr, sr, rng, strict=True)])


def ssim(hr: np.ndarray, sr: np.ndarray) -> np.ndarray:
    """Per-image SSIM, bands as channels (skimage's structural_similarity)."""
    from skimage.metrics import structural_similarity

    rng = data_range(hr)
    return np.array([structural_similarity(h.astype(np.float64), s.astype(np.float64), data_range=r,
                                           channel_axis=0) for h, s, r in zip(hr, sr, rng, strict=True)])


def flux_errors(hr: np.ndarray, sr: np.ndarray) -> tuple[float, float]:
    """(flux_bias, flux_err_median) as defined in the module docstring."""
    f_hr = hr.sum(axis=(2, 3), dtype=np.float64)
    f_sr = sr.sum(axis=(2, 3), dtype=np.float64)
    bias = float(np.mean((f_sr - f_hr).sum(axis=0) / f_hr.sum(axis=0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(f_sr - f_hr) / np.abs(f_hr)
    return bias, float(np.nanmedian(rel))


def power_spectrum(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of (N, C, H, H) images, averaged over images and bands.

    Returns (k, P): k = 1/H ... 1/2 cycles per pixel (bin i holds |k| H in [i - 1/2, i + 1/2))."""
    n, c, h, w = images.shape
    if h != w:
        raise ValueError(f"power_spectrum expects square images, got {h}x{w}")
    fy, fx = np.meshgrid(np.fft.fftfreq(h) * h, np.fft.fftfreq(w) * w, indexing="ij")
    idx = np.rint(np.hypot(fx, fy)).astype(int).ravel()
    nbins = h // 2 + 1
    counts = np.bincount(idx, minlength=nbins)[:nbins]
    total = np.zeros(nbins)
    for i in range(0, n, CHUNK):
        x = np.asarray(images[i : i + CHUNK], dtype=np.float64)
        x = x - x.mean(axis=(2, 3), keepdims=True)
        p = (np.abs(np.fft.fft2(x)) ** 2).sum(axis=(0, 1)).ravel()
        total += np.bincount(idx, weights=p, minlength=nbins)[:nbins]
    pk = total / np.maximum(counts, 1) / (n * c * h * w)
    return np.arange(1, nbins) / h, pk[1:]


def pk_ratio(hr: np.ndarray, sr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k in cycles per HR pixel, P_SR / P_HR)."""
    k, p_hr = power_spectrum(hr)
    _, p_sr = power_spectrum(sr)
    return k, p_sr / p_hr


def worst_ratio(k: np.ndarray, ratio: np.ndarray, kmax: float) -> float:
    """max |ratio - 1| over the bins with k <= kmax."""
    return float(np.max(np.abs(np.asarray(ratio)[np.asarray(k) <= kmax + 1e-9] - 1.0)))


def pdf_w1(hr: np.ndarray, sr: np.ndarray) -> float:
    """1-Wasserstein distance between the one-point pixel distributions of SR and HR.

    For two samples of equal size W1 is the mean absolute difference of the sorted samples (the
    quantile functions); this equals ``scipy.stats.wasserstein_distance`` (a test checks it) at
    a sixth of the time on a million pixels."""
    a = np.sort(np.asarray(sr, np.float64).ravel())
    b = np.sort(np.asarray(hr, np.float64).ravel())
    if a.shape != b.shape:
        raise ValueError(f"pdf_w1 expects equal sizes, got {a.size} and {b.size}")
    return float(np.mean(np.abs(a - b)))


def evaluate(hr: np.ndarray, sr: np.ndarray, factor: int = 4, pdf: bool = False) -> dict:
    """Every metric of SR against HR (no bicubic reference): a flat dict plus the P(k) curve."""
    hr, sr = np.asarray(hr), np.asarray(sr)
    k, ratio = pk_ratio(hr, sr)
    bias, err = flux_errors(hr, sr)
    out = {"psnr": float(np.mean(psnr(hr, sr))), "ssim": float(np.mean(ssim(hr, sr))),
           "pk_worst_half_nyquist": worst_ratio(k, ratio, 0.25),
           "pk_worst_lr_nyquist": worst_ratio(k, ratio, 0.5 / factor), "flux_bias": bias, "flux_err_median": err}
    if pdf:
        out["pdf_w1"] = pdf_w1(hr, sr)
    out["pk_k"], out["pk_ratio"] = k.tolist(), ratio.tolist()
    return out


def resolve_task(task: str | None, sr_shape: tuple | None = None) -> str:
    """Dataset name from ``task`` ("superres-fields", or the short "fields"), else from the SR shape."""
    if task is None:
        for name, shape in SHAPES.items():
            if sr_shape is not None and tuple(sr_shape[1:]) == shape:
                return name
        want = " or ".join(f"N x {'x'.join(map(str, s))} ({d})" for d, s in SHAPES.items())
        raise ScoreInputError(f"'sr' has shape {sr_shape}; expected {want}")
    name = task if task.startswith("superres-") or task in DATASETS else f"superres-{task}"
    if name not in DATASETS:
        if registered_pairs(task):  # a team's own pairs (data.register_arrays with 'hr' and 'lr')
            return task
        raise ScoreInputError(f"unknown superres task {task!r}; expected one of: {', '.join(DATASETS)}")
    return name


def registered_pairs(name: str) -> bool:
    """Whether ``name`` is a user dataset (``data.register_arrays``) whose splits hold 'hr' and 'lr' arrays."""
    from ..data import registry

    spec = registry.all_specs().get(name)
    path = getattr(spec, "path", None)
    return path is not None and all((path / f"test.{k}.npy").is_file() for k in ("hr", "lr"))


def shape_of(dataset: str) -> tuple:
    """(C, H, W) of a dataset's HR images: the kit's sets from SHAPES, a registered one from its test split."""
    if dataset in SHAPES:
        return SHAPES[dataset]
    from .. import data

    test = data.load(dataset, "test", fast=True, progress=False)
    if "hr" not in test.arrays or "lr" not in test.arrays:
        raise ScoreInputError(f"dataset {dataset!r} has arrays {', '.join(test.arrays)}; expected 'hr' and 'lr'")
    return tuple(test.hr.shape[1:])


def cross_correlation(hr: np.ndarray, sr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, r(k)) of (N, C, H, H) maps: the cross power over sqrt(P_SR P_HR), each summed over maps and bands."""
    h = hr.shape[-1]
    fy, fx = np.meshgrid(np.fft.fftfreq(h) * h, np.fft.fftfreq(h) * h, indexing="ij")
    idx, nbins = np.rint(np.hypot(fx, fy)).astype(int).ravel(), h // 2 + 1
    sums = np.zeros((3, nbins))
    for i in range(0, len(hr), CHUNK):
        a, b = (np.asarray(x[i : i + CHUNK], np.float64) for x in (hr, sr))
        fa, fb = (np.fft.fft2(x - x.mean(axis=(2, 3), keepdims=True)) for x in (a, b))
        for j, w in enumerate(((fa * fb.conj()).real, np.abs(fa) ** 2, np.abs(fb) ** 2)):
            sums[j] += np.bincount(idx, weights=w.sum(axis=(0, 1)).ravel(), minlength=nbins)[:nbins]
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant SR has no power: r = 0, not NaN
        r = np.nan_to_num(sums[0] / np.sqrt(sums[1] * sums[2]))
    return np.arange(1, nbins) / h, r[1:]


def peak_counts(maps: np.ndarray, thresholds=None, sigma: float = PEAK_SIGMA) -> np.ndarray:
    """Number of local maxima (3 x 3 periodic neighbourhood) above each threshold in the maps (N, C, H, W)
    smoothed by a periodic Gaussian of ``sigma`` pixels, summed over maps and bands."""
    from scipy import ndimage

    x = ndimage.gaussian_filter(np.asarray(maps, np.float64), (0, 0, sigma, sigma), mode="wrap")
    peak = x == ndimage.maximum_filter(x, size=(1, 1, 3, 3), mode="wrap")
    return np.array([np.sum(peak & (x > t)) for t in (thresholds or PEAK_THRESHOLDS)], dtype=float)


def evaluate_nbody(hr: np.ndarray, sr: np.ndarray, factor: int = 4, hr_peaks=None) -> dict:
    """``evaluate`` plus r(k), the log-density PDF distance and the peak counts of one SR set against HR."""
    out = evaluate(hr, sr, factor, pdf=True)
    k, r = cross_correlation(hr, sr)
    hr_peaks = peak_counts(hr) if hr_peaks is None else hr_peaks
    ratio = peak_counts(sr) / np.maximum(hr_peaks, 1)
    out.update(rk_min_half_nyquist=float(r[k <= 0.25 + 1e-9].min()),
               rk_min_lr_nyquist=float(r[k <= 0.5 / factor + 1e-9].min()),
               pdf_w1_log=pdf_w1(np.log10(hr + LOG_OFFSET), np.log10(np.maximum(sr, 0) + LOG_OFFSET)),
               peaks_ratio_lo=float(ratio[0]), peaks_ratio_hi=float(ratio[1]),
               peaks_worst=float(np.max(np.abs(ratio - 1))), rk=r.tolist())
    return out


def nbody_samples(pred: dict, sr: np.ndarray) -> np.ndarray:
    """(N, S, 1, H, W): ``samples`` checked (same N as ``sr``, 1 <= S <= MAX_SAMPLES, finite, >= 0), or sr."""
    n, shape = len(sr), SHAPES["superres-nbody"]
    if "samples" not in pred:
        draws = sr[:, None]
    else:
        draws = require(pred, "samples", shape=(n, None, *shape), kind="f")
        if not 1 <= draws.shape[1] <= MAX_SAMPLES:
            raise ScoreInputError(f"'samples' holds {draws.shape[1]} draws per map; expected 1 to {MAX_SAMPLES} "
                                  f"(shape N x S x {'x'.join(map(str, shape))})")
    for key, x in (("sr", sr), ("samples", draws)):
        if key in pred and np.min(x) < 0:
            raise ScoreInputError(f"{key!r} has {int(np.sum(x < 0))} negative densities (min {np.min(x):.3g}); "
                                  "expected rho >= 0 (projected density / cosmic mean)")
    return draws


def mean_of(results: list) -> dict:
    """The mean of each metric over the draws' results (curves bin by bin)."""
    return {k: (np.mean([r[k] for r in results], axis=0).tolist() if isinstance(results[0][k], list)
                else float(np.mean([r[k] for r in results]))) for k in results[0]}


def score_nbody(pred: dict, sr: np.ndarray, fast: bool) -> dict:
    """superres-nbody: every metric of the draws (averaged over them) and of the two floors; see module doc."""
    from .. import data

    draws = nbody_samples(pred, sr)
    test = data.load("superres-nbody", "test", fast=fast, progress=False)
    hr, lr, f = np.asarray(test.hr), np.asarray(test.lr), test.meta["config"]["factor"]
    hr_peaks = peak_counts(hr)
    model = mean_of([evaluate_nbody(hr, draws[:, s].astype(np.float32), f, hr_peaks) for s in range(draws.shape[1])])
    floors = {"bicubic": np.maximum(bicubic(lr, f, False), 0), "lr": np.repeat(np.repeat(lr, f, 2), f, 3)}
    refs = {name: evaluate_nbody(hr, x, f, hr_peaks) for name, x in floors.items()}
    curves = ("pk_k", "pk_ratio", "rk")
    out = {}
    for key in model:
        if key not in curves:
            out[key] = model[key]
            out.update({f"{key}_{name}": ref[key] for name, ref in refs.items()})
    out["psnr_gain_db"] = out["psnr"] - out["psnr_bicubic"]
    out.update(dataset="superres-nbody", fast=fast, n=len(sr), n_samples=int(draws.shape[1]),
               peak_thresholds=list(PEAK_THRESHOLDS), peaks_hr=hr_peaks.tolist(), pk_k=model["pk_k"],
               pk_ratio=model["pk_ratio"], rk=model["rk"])
    for name, ref in refs.items():
        out.update({f"pk_ratio_{name}": ref["pk_ratio"], f"rk_{name}": ref["rk"]})
    return out


def score(pred: dict, task: str | None = None) -> dict:
    """Score ``pred["sr"]`` (N, C, H, W) against the test split of the task's dataset; see module doc."""
    from .. import data

    if "sr" not in pred:
        require(pred, "sr")  # raises: missing key
    sr_shape = np.shape(pred["sr"])
    dataset = resolve_task(task, sr_shape)
    sr = require(pred, "sr", shape=(None, *shape_of(dataset)), kind="f")
    fast = split_mode(len(sr), dataset)
    if dataset == "superres-nbody":
        return score_nbody(pred, sr, fast)
    test = data.load(dataset, "test", fast=fast, progress=False)
    hr, lr = np.asarray(test.hr if "hr" in test.arrays else test.images), np.asarray(test.lr)  # Galaxy10: images
    cfg = test.meta["config"]
    fields = cfg["channels"] == ["rho"]  # density fields (simulated or CAMELS): also the one-point PDF
    model = evaluate(hr, sr.astype(np.float32), factor=cfg["factor"], pdf=fields)
    ref = evaluate(hr, bicubic(lr, cfg["factor"], cfg["extensive"]), factor=cfg["factor"], pdf=fields)
    out = {}
    for key in model:
        if key not in ("pk_k", "pk_ratio"):
            out[key], out[f"{key}_bicubic"] = model[key], ref[key]
    out["psnr_gain_db"] = out["psnr"] - out["psnr_bicubic"]
    out.update(dataset=dataset, fast=fast, n=len(sr), pk_k=model["pk_k"], pk_ratio=model["pk_ratio"],
               pk_ratio_bicubic=ref["pk_ratio"])
    return out

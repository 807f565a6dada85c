"""Batched Fourier-space renderer for bulge + disk galaxies convolved with a Moffat PSF.

Every ingredient has a closed-form Fourier transform, so a batch of galaxies is drawn with
one inverse FFT per band and no per-object Python loop:

* components are Spergel (2010) profiles, I(r) ~ (r/r0)^nu K_nu(r/r0), whose transform is
  F(k) = flux / (1 + (k r0)^2)^(1 + nu). nu = 0.5 is exactly an exponential disk and
  nu = -0.6 approximates a de Vaucouleurs bulge (GalSim's recommended stand-in);
* shapes are GalSim-convention reduced shears (g1, g2), area preserving;
* the PSF is a Moffat with beta = 3.5, F(k) = exp(-x) (x^2 + 3x + 3) / 3, x = k r_d
  (the half-integer Bessel K_{5/2} in closed form, so numpy and jax.numpy both work);
* the pixel response is sinc(kx/2) sinc(ky/2).

All lengths are in pixels. The functions take an array module ``xp`` (numpy or jax.numpy) so
the same code serves the cached datasets and a differentiable SBI likelihood.
A test checks this renderer against GalSim (``shared/tests/test_render.py``).
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

import numpy as np
from scipy import fft as sfft
from scipy import optimize, special

MOFFAT_BETA = 3.5
NU_DISK = 0.5  # exponential
NU_BULGE = -0.6  # de Vaucouleurs-like
PAD = 2.0  # FFT box = PAD * stamp for the most extended objects (and for jax, which needs one shape)
BOXES = (1.0, 1.5, 2.0)  # box sizes (x stamp) tried from small to large, see render()
WRAP_MAX = 1e-3  # largest fraction of an object's light allowed to wrap around into the stamp


def spergel_cdf(x, nu):
    """Fraction of a Spergel profile's flux inside radius x = r / r0."""
    x = np.asarray(x, dtype=float)
    x = np.maximum(x, 1e-12)
    return 1.0 - x ** (nu + 1) * special.kv(nu + 1, x) / (2.0**nu * special.gamma(nu + 1))


@cache
def spergel_hlr_over_r0(nu: float) -> float:
    """Half-light radius in units of the scale radius r0 (solves spergel_cdf = 1/2)."""
    return optimize.brentq(lambda x: spergel_cdf(x, nu) - 0.5, 1e-4, 100.0, xtol=1e-12)


def moffat_rd(fwhm):
    """Moffat scale radius from its FWHM."""
    return fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / MOFFAT_BETA) - 1.0))


def shear_matrix(g1, g2, xp=np):
    """Area-preserving GalSim shear matrix entries (a, b, d) of [[a, b], [b, d]]."""
    norm = 1.0 / xp.sqrt(1.0 - g1**2 - g2**2)
    return (1.0 + g1) * norm, g2 * norm, (1.0 - g1) * norm


@lru_cache(maxsize=8)
def _kgrid(n_fft: int):
    ky = 2 * np.pi * np.fft.fftfreq(n_fft)[:, None]
    kx = 2 * np.pi * np.fft.rfftfreq(n_fft)[None, :]
    pixel = np.sinc(kx / (2 * np.pi)) * np.sinc(ky / (2 * np.pi))
    return kx, ky, pixel


def render_kspace(params, npix: int = 64, xp=np, dtype="float32", pad: float = PAD, psf=None):
    """Fourier transform of a batch of multi-band images on the rfft grid of the padded box.

    ``params`` maps names to arrays (B = batch, C = bands), lengths in pixels:
      flux_bulge (B, C), flux_disk (B, C), hlr_bulge (B,), hlr_disk (B,), g1 (B,), g2 (B,),
      psf_fwhm (B, C), dx (B,), dy (B,).
    The profile centre sits at the stamp's true centre ((npix - 1) / 2, GalSim's convention)
    plus (dx, dy). Returns a complex array (B, C, n_fft, n_fft // 2 + 1), n_fft = round(pad * npix).
    ``psf``, when given, replaces the Moffat: a function of |k| (radians per pixel) returning the transform of a
    round PSF shared by every object and band (a space telescope's optics, tabulated from GalSim).
    """
    n_fft = round(pad * npix)
    kx, ky, pixel = (xp.asarray(a, dtype=dtype) for a in _kgrid(n_fft))

    def col(name):  # (B,) -> (B, 1, 1, 1)
        return xp.asarray(params[name], dtype=dtype)[:, None, None, None]

    def band(name):  # (B, C) -> (B, C, 1, 1)
        return xp.asarray(params[name], dtype=dtype)[:, :, None, None]

    a, b, d = shear_matrix(col("g1"), col("g2"), xp)
    # Sheared profile I(A^-1 x) has transform F(A^T k); A is symmetric with det 1.
    k2 = (a * kx + b * ky) ** 2 + (b * kx + d * ky) ** 2
    r0_b = col("hlr_bulge") / spergel_hlr_over_r0(NU_BULGE)
    r0_d = col("hlr_disk") / spergel_hlr_over_r0(NU_DISK)
    bulge = (1.0 + k2 * r0_b**2) ** (-(1.0 + NU_BULGE))
    disk = (1.0 + k2 * r0_d**2) ** (-(1.0 + NU_DISK))

    if psf is None:
        x = xp.sqrt(kx**2 + ky**2) * (band("psf_fwhm") / (2.0 * math.sqrt(2.0 ** (1.0 / MOFFAT_BETA) - 1.0)))
        psf = xp.exp(-x) * (x * x + 3.0 * x + 3.0) / 3.0
    else:
        kx0, ky0, _ = _kgrid(n_fft)
        psf = xp.asarray(psf(np.sqrt(kx0**2 + ky0**2)), dtype=dtype)

    centre = (n_fft - 1) / 2.0  # maps to (npix - 1) / 2 after the central crop
    # the shift theorem's phase is separable: two 1-D complex exponentials instead of one 2-D
    phase_x = xp.exp(-1j * kx * (centre + col("dx")))
    phase_y = xp.exp(-1j * ky * (centre + col("dy")))
    return ((band("flux_bulge") * bulge + band("flux_disk") * disk) * (psf * pixel)) * phase_x * phase_y


def _render_box(params, npix, xp, pad, workers):
    fk = render_kspace(params, npix=npix, xp=xp, pad=pad)
    n_fft = round(pad * npix)
    if xp is np:
        img = sfft.irfft2(fk, s=(n_fft, n_fft), axes=(-2, -1), workers=workers)
    else:
        img = xp.fft.irfft2(fk, s=(n_fft, n_fft), axes=(-2, -1))
    lo = (n_fft - npix) // 2
    return img[..., lo : lo + npix, lo : lo + npix]


def light_beyond(params, radius: float) -> np.ndarray:
    """Upper bound on the fraction of each object's light beyond ``radius`` pixels from its centre.

    The radius is shrunk by the shear's axis ratio and by the PSF FWHM, so the bound holds for
    the elongated, PSF-broadened image.
    """
    g = np.hypot(np.asarray(params["g1"]), np.asarray(params["g2"]))
    stretch = np.sqrt((1 + g) / (1 - g))
    r = np.maximum(radius - 1.0 - np.max(params["psf_fwhm"], axis=1), 1.0) / stretch
    fb, fd = np.asarray(params["flux_bulge"]).sum(1), np.asarray(params["flux_disk"]).sum(1)
    bt = fb / np.maximum(fb + fd, 1e-30)
    # (a point source, hlr 0, puts all its light inside any radius)
    r0_b = np.maximum(np.asarray(params["hlr_bulge"]), 1e-9) / spergel_hlr_over_r0(NU_BULGE)
    r0_d = np.maximum(np.asarray(params["hlr_disk"]), 1e-9) / spergel_hlr_over_r0(NU_DISK)
    return 1.0 - (bt * spergel_cdf(r / r0_b, NU_BULGE) + (1 - bt) * spergel_cdf(r / r0_d, NU_DISK))


def box_choice(params, npix: int = 64) -> np.ndarray:
    """Index into BOXES of the smallest FFT box whose wrap-around stays below WRAP_MAX.

    In a periodic box of side L, light lands back in the central stamp only from beyond
    L - npix / 2 from the centre; light between the stamp and that radius is lost, as in GalSim.
    """
    choice = np.full(len(params["g1"]), len(BOXES) - 1)
    for i in reversed(range(len(BOXES) - 1)):
        ok = light_beyond(params, round(BOXES[i] * npix) - npix / 2) < WRAP_MAX
        choice[ok] = i
    return choice


def render(params, npix: int = 64, xp=np, workers: int = -1, pad: float | None = None):
    """Noiseless images (B, C, npix, npix), pixel values = flux integrated over each pixel.

    The FFT box is periodic, so light beyond it wraps around. With numpy and ``pad=None``, each
    object gets the smallest box in BOXES that keeps the wrapped light below WRAP_MAX: most
    galaxies are compact, so this is several times faster than padding everything. With jax
    (``xp`` not numpy) shapes must be static: one box of ``pad or PAD`` times the stamp.
    """
    if xp is not np or pad is not None:
        return _render_box(params, npix, xp, pad or PAD, workers)
    choice = box_choice(params, npix)
    out = None
    for i, box in enumerate(BOXES):
        mask = choice == i
        if not mask.any():
            continue
        part = _render_box({k: np.asarray(v)[mask] for k, v in params.items()}, npix, np, box, workers)
        if out is None:
            out = np.empty((len(choice), *part.shape[1:]), part.dtype)
        out[mask] = part
    return out


def composite_radius(frac, bulge_frac, hlr_bulge, hlr_disk, iters: int = 60):
    """Radius enclosing ``frac`` of the light of a circularised bulge + disk (vectorised bisection)."""
    bulge_frac = np.asarray(bulge_frac, dtype=float)
    r0_b = np.asarray(hlr_bulge, dtype=float) / spergel_hlr_over_r0(NU_BULGE)
    r0_d = np.asarray(hlr_disk, dtype=float) / spergel_hlr_over_r0(NU_DISK)
    lo = np.zeros_like(bulge_frac)
    hi = 50.0 * np.maximum(hlr_bulge, hlr_disk) * np.ones_like(bulge_frac)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        cdf = bulge_frac * spergel_cdf(mid / r0_b, NU_BULGE) + (1 - bulge_frac) * spergel_cdf(mid / r0_d, NU_DISK)
        below = cdf < frac
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


@lru_cache(maxsize=1)
def _sersic_concentration_table():
    n = np.linspace(0.3, 10.0, 400)
    ratio = (special.gammaincinv(2 * n, 0.8) / special.gammaincinv(2 * n, 0.2)) ** n
    return ratio, n


def effective_sersic_n(bulge_frac, hlr_bulge, hlr_disk):
    """Sérsic index whose r80 / r20 equals that of the bulge + disk composite."""
    ratio = composite_radius(0.8, bulge_frac, hlr_bulge, hlr_disk) / composite_radius(
        0.2, bulge_frac, hlr_bulge, hlr_disk
    )
    table_ratio, table_n = _sersic_concentration_table()
    return np.interp(ratio, table_ratio, table_n)

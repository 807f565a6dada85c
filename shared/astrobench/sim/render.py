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
from functools import lru_cache

import numpy as np
from scipy import fft as sfft
from scipy import optimize, special

MOFFAT_BETA = 3.5
NU_DISK = 0.5  # exponential
NU_BULGE = -0.6  # de Vaucouleurs-like
PAD = 2  # FFT box = PAD * stamp: keeps wrap-around of wide profiles tiny


def spergel_cdf(x, nu):
    """Fraction of a Spergel profile's flux inside radius x = r / r0."""
    x = np.asarray(x, dtype=float)
    x = np.maximum(x, 1e-12)
    return 1.0 - x ** (nu + 1) * special.kv(nu + 1, x) / (2.0**nu * special.gamma(nu + 1))


@lru_cache(maxsize=None)
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


def render_kspace(params, npix: int = 64, xp=np, dtype="float32"):
    """Fourier transform of a batch of multi-band images on the rfft grid of the padded box.

    ``params`` maps names to arrays (B = batch, C = bands), lengths in pixels:
      flux_bulge (B, C), flux_disk (B, C), hlr_bulge (B,), hlr_disk (B,), g1 (B,), g2 (B,),
      psf_fwhm (B, C), dx (B,), dy (B,).
    The profile centre sits at the stamp's true centre ((npix - 1) / 2, GalSim's convention)
    plus (dx, dy). Returns a complex array (B, C, n_fft, n_fft // 2 + 1).
    """
    n_fft = PAD * npix
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

    x = xp.sqrt(kx**2 + ky**2) * (band("psf_fwhm") / (2.0 * math.sqrt(2.0 ** (1.0 / MOFFAT_BETA) - 1.0)))
    psf = xp.exp(-x) * (x * x + 3.0 * x + 3.0) / 3.0

    centre = (n_fft - 1) / 2.0  # maps to (npix - 1) / 2 after the central crop
    phase = xp.exp(-1j * (kx * (centre + col("dx")) + ky * (centre + col("dy"))))
    return (band("flux_bulge") * bulge + band("flux_disk") * disk) * (psf * pixel) * phase


def render(params, npix: int = 64, xp=np, workers: int = -1):
    """Noiseless images (B, C, npix, npix), pixel values = flux integrated over each pixel."""
    fk = render_kspace(params, npix=npix, xp=xp)
    n_fft = PAD * npix
    if xp is np:
        img = sfft.irfft2(fk, s=(n_fft, n_fft), axes=(-2, -1), workers=workers)
    else:
        img = xp.fft.irfft2(fk, s=(n_fft, n_fft), axes=(-2, -1))
    lo = (n_fft - npix) // 2
    return img[..., lo : lo + npix, lo : lo + npix]


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

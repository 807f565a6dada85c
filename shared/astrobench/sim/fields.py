"""2-D log-normal cosmological density fields with a ΛCDM-shaped power spectrum (``superres-fields``).

Physics, step by step (recorded in the card ``data/cards/superres-fields.md``):

1. Linear matter power spectrum shape P(k) = k^n_s T(k)^2 with the Eisenstein & Hu (1998)
   "no-wiggle" transfer function (their eqs. 26-31: the baryon-suppressed shape without the
   acoustic oscillations), evaluated for astropy's Planck18 cosmology (Om0, Ob0, h, Tcmb0, n_s).
2. A 2-D Gaussian random field g on a periodic HR grid whose spectrum has that shape at the
   grid's wavenumbers (a thin-slice toy: the 3-D shape used as the 2-D spectrum, not a projection
   integral), scaled to a pixel variance SIGMA_G^2.
3. Log-normal transform (Coles & Jones 1991): density rho = exp(g - sigma^2 / 2), so <rho> = 1
   and rho > 0, with the long positive tail of non-linear structure.
4. LR: the same field averaged over FACTOR x FACTOR blocks, what a simulation with 4x coarser cells
   reports (mass per cell); block averaging conserves the mean density exactly.
"""

from __future__ import annotations

import math

import numpy as np
from tqdm.auto import tqdm

VERSION = "1.0.0"
NPIX_HR = 128
FACTOR = 4
NPIX_LR = NPIX_HR // FACTOR
BOX_MPC_H = 128.0  # box side in Mpc/h: 1 Mpc/h HR cells, 4 Mpc/h LR cells
SIGMA_G = 1.0  # pixel standard deviation of the Gaussian field before the log-normal transform
CHUNK = 250  # fields per noise seed


def _cosmology():
    from astropy.cosmology import Planck18

    return Planck18


def cosmo_params() -> dict:
    """The cosmological parameters that set the spectrum's shape (astropy's Planck18)."""
    c = _cosmology()
    return {"name": c.name, "Om0": float(c.Om0), "Ob0": float(c.Ob0), "h": float(c.h),
            "Tcmb0_K": float(c.Tcmb0.value), "n_s": float(c.meta["n"])}


def transfer_eh98_nowiggle(k, Om0: float, Ob0: float, h: float, Tcmb0: float = 2.7255) -> np.ndarray:
    """Eisenstein & Hu (1998, ApJ 496, 605) zero-wiggle transfer function, eqs. 26-31; k in h/Mpc."""
    k = np.asarray(k, dtype=float)
    theta = Tcmb0 / 2.7
    om_h2, ob_h2, fb = Om0 * h**2, Ob0 * h**2, Ob0 / Om0
    s = 44.5 * np.log(9.83 / om_h2) / np.sqrt(1.0 + 10.0 * ob_h2**0.75)  # sound horizon, Mpc (eq. 26)
    alpha = 1.0 - 0.328 * np.log(431.0 * om_h2) * fb + 0.38 * np.log(22.3 * om_h2) * fb**2  # eq. 31
    gamma_eff = Om0 * h * (alpha + (1.0 - alpha) / (1.0 + (0.43 * k * h * s) ** 4))  # eq. 30, k*h in 1/Mpc
    q = k * theta**2 / gamma_eff  # eq. 28
    l0 = np.log(2.0 * math.e + 1.8 * q)
    c0 = 14.2 + 731.0 / (1.0 + 62.5 * q)  # eq. 29
    return l0 / (l0 + c0 * q**2)


def power_shape(k) -> np.ndarray:
    """Un-normalised linear P(k) = k^n_s T(k)^2 for Planck18; k in h/Mpc."""
    p = cosmo_params()
    k = np.asarray(k, dtype=float)
    t = transfer_eh98_nowiggle(k, p["Om0"], p["Ob0"], p["h"], p["Tcmb0_K"])
    return np.where(k > 0, np.abs(k) ** p["n_s"] * t**2, 0.0)


def _amplitude(npix: int = NPIX_HR, box: float = BOX_MPC_H) -> np.ndarray:
    """Fourier filter sqrt(P) on the rfft grid, scaled so the filtered unit white noise has pixel
    variance SIGMA_G^2 in expectation (Parseval: variance = mean of |filter|^2 over all modes)."""
    kf = 2 * np.pi / box
    ky = np.fft.fftfreq(npix, 1.0 / npix)[:, None] * kf
    kx = np.fft.rfftfreq(npix, 1.0 / npix)[None, :] * kf
    p = power_shape(np.sqrt(kx**2 + ky**2))
    weight = np.ones_like(p)  # rfft columns other than 0 and Nyquist stand for two modes
    weight[:, 1 : (npix - 1) // 2 + 1] = 2.0
    mean_p = (p * weight).sum() / npix**2
    return np.sqrt(p / mean_p) * SIGMA_G


def lognormal_fields(n: int, rng: np.random.Generator, npix: int = NPIX_HR) -> np.ndarray:
    """``n`` periodic log-normal density fields (n, npix, npix), float32, mean density 1."""
    amp = _amplitude(npix)
    white = rng.standard_normal((n, npix, npix))
    g = np.fft.irfft2(np.fft.rfft2(white) * amp, s=(npix, npix))
    return np.exp(g - SIGMA_G**2 / 2).astype(np.float32)


def block_mean(x: np.ndarray, factor: int = FACTOR) -> np.ndarray:
    """Average (..., H, W) over factor x factor blocks -> (..., H / factor, W / factor)."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // factor, factor, w // factor, factor).mean(axis=(-3, -1))


def config() -> dict:
    return {
        "npix_hr": NPIX_HR, "npix_lr": NPIX_LR, "factor": FACTOR, "box_mpc_h": BOX_MPC_H,
        "cell_hr_mpc_h": BOX_MPC_H / NPIX_HR, "cell_lr_mpc_h": BOX_MPC_H / NPIX_LR, "sigma_g": SIGMA_G,
        "power_spectrum": "P(k) = k^n_s T(k)^2, Eisenstein & Hu 1998 no-wiggle T(k) (eqs. 26-31)",
        "cosmology": cosmo_params(), "field": "rho = exp(g - sigma^2/2), g Gaussian (2-D, periodic)",
        "lr": "block mean over factor x factor HR cells", "units": "density / mean density (rho, mean 1)",
        "extensive": False, "channels": ["rho"],
    }


def generate(sizes: dict, seed: int, progress: bool = True) -> dict:
    """{split: {"hr": (N, 1, 128, 128), "lr": (N, 1, 32, 32), "truth": {...}}}, float32."""
    out = {}
    for block, (split, n) in enumerate(sizes.items()):
        hr = np.empty((n, 1, NPIX_HR, NPIX_HR), np.float32)
        with tqdm(total=n, desc=f"fields ({split})", unit="field", disable=not progress) as bar:
            for i0 in range(0, n, CHUNK):
                m = min(CHUNK, n - i0)
                rng = np.random.default_rng([seed, block, i0 // CHUNK])
                hr[i0 : i0 + m, 0] = lognormal_fields(m, rng)
                bar.update(m)
        lr = block_mean(hr.astype(np.float64)).astype(np.float32)
        truth = {"id": np.arange(n, dtype=np.int64), "mean_rho": hr.mean(axis=(1, 2, 3), dtype=np.float64),
                 "std_log_rho": np.log(hr).std(axis=(1, 2, 3), dtype=np.float64),
                 "max_rho": hr.max(axis=(1, 2, 3)).astype(np.float64)}
        out[split] = {"hr": hr, "lr": lr, "truth": truth}
    return out


def _spec():
    from ..data.specs import SimulatedSpec

    return SimulatedSpec(
        name="superres-fields",
        version=VERSION,
        description="2-D log-normal density fields, ΛCDM-shaped P(k) (Planck18, EH98 no-wiggle): "
                    "HR 128x128 (1 Mpc/h cells) paired with 32x32 block means (x4 super-resolution)",
        tracks=("superres",),
        sizes={"full": {"train": 4000, "test": 500}, "fast": {"train": 400, "test": 100}},
        generate=generate,
        config=config,
        citation="Astro x ML hackathon starter kit; Eisenstein & Hu 1998 (ApJ 496, 605); Coles & Jones 1991 "
                 "(MNRAS 248, 1); Planck 2018 VI (A&A 641, A6) via astropy.cosmology",
    )


DATASETS = [_spec()]

"""LR/HR particle-mesh N-body pairs from the same initial conditions (``superres-nbody``).

Physics, step by step (recorded in the card ``data/cards/superres-nbody.md``):

1. Linear matter P(k) at z = 0 from camb (Lewis, Challinor & Lasenby 2000) for astropy's Planck18 parameters
   with massless neutrinos (Omega_m = Om0: all matter is collisionless and cold, as the PM treats it), computed
   once per process and cached; camb's halofit (Takahashi+2012) from the same call is the non-linear reference.
2. One white-noise draw per box on the HR Lagrangian grid. The HR initial field uses all of its modes, the LR one
   the subset below the LR Nyquist frequency: the same modes with the same amplitudes and phases (Li+2021).
3. 2LPT displacements and momenta (Scoccimarro 1998) at a_init on each run's particle lattice.
4. Particle-mesh gravity (Hockney & Eastwood 1988): cloud-in-cell assignment on a mesh twice as fine as the particle
   lattice, FFT Poisson solve, spectral gradient, CIC interpolation back, kick-drift-kick leapfrog in the scale
   factor with FastPM's growth-consistent coefficients (Feng+2016), so linear modes grow exactly as D(a) whatever the
   number of steps. Flat matter + Lambda background (radiation is negligible after a_init).
5. Samples: CIC-projected density (in units of the cosmic mean) of slabs of the z = 0 boxes, a quarter of the box thick,
   along each axis: LR 32^2 maps from the LR run, HR 128^2 maps from the HR run (x4 per axis, x8 in particle mass).
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
from tqdm.auto import tqdm

VERSION = "1.0.0"
BOX_MPC_H = 128.0  # box side in Mpc/h
NP_LR, NP_HR = 32, 64  # particles per axis: 4 Mpc/h and 2 Mpc/h spacing, 5.5e12 and 6.9e11 Msun/h per particle
MESH = 2  # PM mesh cells per particle spacing (per axis): force resolution twice the lattice's
Z_INIT = 19.0  # 2LPT start (a = 0.05): displacements are well below the HR spacing there
N_STEPS = 10  # KDK steps uniform in a (one box against 24 steps: HR P(k) within 2.6 % with 12, 7 % with 8)
NPIX_LR, NPIX_HR = 32, 128  # projected map sizes
FACTOR = NPIX_HR // NPIX_LR
N_SLABS = 4  # slabs per axis: 32 Mpc/h thick, 3 axes -> 12 maps per box
MAPS_PER_BOX = 3 * N_SLABS
LN10_AS = 3.047  # Planck 2018 VI, Table 2 (TT,TE,EE+lowE+lensing+BAO), as astropy's Planck18
CAMB_KMAX = 20.0  # h/Mpc: above the largest |k| of the HR mesh (sqrt(3) x 3.1 h/Mpc), no extrapolation


# ---------------------------------------------------------------- cosmology and growth


def cosmo_params() -> dict:
    from astropy.cosmology import Planck18 as c

    return {"name": "Planck18 (astropy), massless neutrinos", "Om0": float(c.Om0), "Ob0": float(c.Ob0),
            "h": float(c.h), "n_s": float(c.meta["n"]), "ln10^10As": LN10_AS, "Tcmb0_K": float(c.Tcmb0.value)}


@functools.lru_cache(maxsize=1)
def camb_tables() -> dict:
    """camb's linear and halofit (Takahashi+2012) P(k) at z = 0, k in h/Mpc, P in (Mpc/h)^3, and sigma8.

    One camb call per process (a few seconds): the generator and the tests share it."""
    import camb

    p = cosmo_params()
    h = p["h"]
    pars = camb.CAMBparams()
    pars.set_cosmology(H0=100 * h, ombh2=p["Ob0"] * h**2, omch2=(p["Om0"] - p["Ob0"]) * h**2, mnu=0.0,
                       num_massive_neutrinos=0, TCMB=p["Tcmb0_K"])
    pars.InitPower.set_params(ns=p["n_s"], As=math.exp(LN10_AS) * 1e-10)
    pars.WantCls = False  # matter power only: 3x faster
    pars.set_matter_power(redshifts=[0.0], kmax=CAMB_KMAX, nonlinear=True)
    pars.NonLinearModel.set_params(halofit_version="takahashi")
    res = camb.get_results(pars)
    k, _, p_nl = res.get_matter_power_spectrum(minkh=1e-4, maxkh=CAMB_KMAX, npoints=400)
    k_lin, _, p_lin = res.get_linear_matter_power_spectrum(hubble_units=True, k_hunit=True)  # camb's own k grid
    p_lin = np.exp(np.interp(np.log(k), np.log(k_lin), np.log(p_lin[0])))
    return {"k": k, "linear": p_lin, "halofit": p_nl[0], "sigma8": float(res.get_sigma8_0()),
            "camb": camb.__version__}


def _loginterp(k, table: str) -> np.ndarray:
    t = camb_tables()
    k = np.asarray(k, dtype=float)
    out = np.exp(np.interp(np.log(np.maximum(k, 1e-30)), np.log(t["k"]), np.log(t[table])))
    return np.where(k > 0, out, 0.0)


def linear_power(k) -> np.ndarray:
    """camb's linear P(k) at z = 0 ((Mpc/h)^3, k in h/Mpc), 0 at k = 0."""
    return _loginterp(k, "linear")


def halofit_power(k) -> np.ndarray:
    """camb's halofit (Takahashi+2012) non-linear P(k) at z = 0."""
    return _loginterp(k, "halofit")


class Growth:
    """Linear growth of a flat matter + Lambda universe (H0 = 1 units), normalised to D(1) = 1.

    D(a) = 5 Om / 2 E(a) int_0^a da' / (a' E(a'))^3 (Heath 1977), tabulated once; ``gp(a)`` = a^3 E dD/da is
    the linear momentum per unit displacement, the quantity FastPM's kick is built on."""

    def __init__(self, om: float):
        self.om = om
        a = np.linspace(0.0, 1.0, 20001)[1:]
        integrand = 1.0 / (a * self.e(a)) ** 3
        # the integrand ~ a^{3/2} / Om^{3/2} near 0: its integral from 0 to a[0] is analytic
        first = a[0] ** 2.5 / (2.5 * om**1.5)
        cum = first + np.concatenate([[0.0], np.cumsum(0.5 * (integrand[1:] + integrand[:-1]) * np.diff(a))])
        d = 2.5 * om * self.e(a) * cum
        self._a, self._cum, self._d1 = a, cum, d[-1]

    def e(self, a):
        return np.sqrt(self.om / np.asarray(a, float) ** 3 + 1.0 - self.om)

    def _i(self, a):
        return np.interp(a, self._a, self._cum)

    def d(self, a):
        return 2.5 * self.om * self.e(a) * self._i(a) / self._d1

    def dd_da(self, a):
        a = np.asarray(a, float)
        de_da = -1.5 * self.om / a**4 / self.e(a)
        return 2.5 * self.om * (de_da * self._i(a) + self.e(a) / (a * self.e(a)) ** 3) / self._d1

    def gp(self, a):
        return a**3 * self.e(a) * self.dd_da(a)

    def omega_m(self, a):
        return self.om / a**3 / self.e(a) ** 2


# ---------------------------------------------------------------- meshes


def _kvec(n: int, box: float):
    """k_x, k_y, k_z (h/Mpc) broadcastable over an rfftn grid of n^3."""
    kf = 2 * np.pi / box
    k = np.fft.fftfreq(n, 1.0 / n) * kf
    return k[:, None, None], k[None, :, None], np.fft.rfftfreq(n, 1.0 / n)[None, None, :] * kf


def _cic_weights(pos: np.ndarray, n: int, cell: float):
    """Cloud-in-cell on a periodic n^3 mesh: flat indices and weights (8, M) of the cells around positions (M, 3)."""
    u = pos / cell
    i0 = np.floor(u)
    f = u - i0
    i0 = i0.astype(np.int64) % n
    i1 = (i0 + 1) % n
    corners = [(i0[:, j], i1[:, j], 1.0 - f[:, j], f[:, j]) for j in range(3)]
    idx = np.empty((8, len(pos)), np.int64)
    w = np.empty((8, len(pos)))
    c = 0
    for ix, wx in ((corners[0][0], corners[0][2]), (corners[0][1], corners[0][3])):
        for iy, wy in ((corners[1][0], corners[1][2]), (corners[1][1], corners[1][3])):
            row, wxy = (ix * n + iy) * n, wx * wy
            for iz, wz in ((corners[2][0], corners[2][2]), (corners[2][1], corners[2][3])):
                idx[c], w[c] = row + iz, wxy * wz
                c += 1
    return idx, w


def _paint(weights, n: int, n_particles: int) -> np.ndarray:
    idx, w = weights
    rho = np.bincount(idx.ravel(), weights=w.ravel(), minlength=n**3)
    return (rho * (n**3 / n_particles) - 1.0).reshape(n, n, n)


def cic_paint(pos: np.ndarray, n: int, box: float) -> np.ndarray:
    """Density contrast delta on a periodic n^3 mesh from equal-mass particles (M, 3) by CIC; mass is exact."""
    return _paint(_cic_weights(pos, n, box / n), n, len(pos))


def _read(weights, fields) -> np.ndarray:
    idx, w = weights
    return np.stack([(f.ravel()[idx] * w).sum(axis=0) for f in fields], axis=1)


@functools.lru_cache(maxsize=4)
def _force_kernels(n: int, box: float, om: float) -> tuple:
    """i 3/2 Om D_j(k) / k^2 per axis j on the rfftn grid, D_j = sin(k_j h) / h: F_j(k) = kernel_j delta(k)."""
    kv = _kvec(n, box)
    k2 = kv[0] ** 2 + kv[1] ** 2 + kv[2] ** 2
    k2[0, 0, 0] = np.inf  # no mean force
    cell = box / n
    return tuple((1j * 1.5 * om * np.sin(k * cell) / cell / k2).astype(np.complex64) for k in kv)


def gravity(pos: np.ndarray, n: int, box: float, om: float) -> np.ndarray:
    """PM acceleration F = -grad Phi, lap Phi = 3/2 Om delta (H0 = 1, comoving Mpc/h), at the particles.

    Green's function -1/k^2 and the two-point central difference gradient, i sin(k h) / h (Hockney & Eastwood):
    the spectral gradient i k, non-zero at the mesh Nyquist frequency, lets the particle lattice's comb (a
    Nyquist signal on a mesh twice finer) leak into the force, +20 % at the largest scales (measured)."""
    from scipy import fft

    weights = _cic_weights(pos, n, box / n)  # the same kernel paints and reads: no self-force
    delta_k = fft.rfftn(_paint(weights, n, len(pos)).astype(np.float32))
    forces = [fft.irfftn(kern * delta_k, s=(n, n, n)) for kern in _force_kernels(n, box, om)]
    return _read(weights, forces)


# ---------------------------------------------------------------- initial conditions and evolution


def white_noise_k(rng: np.random.Generator, n: int) -> np.ndarray:
    """rfftn of unit real-space white noise on an n^3 grid: <|W_k|^2> = n^3, Hermitian by construction."""
    from scipy import fft

    return fft.rfftn(rng.standard_normal((n, n, n)))


def restrict_modes(w_k: np.ndarray, n_hr: int, n_lr: int) -> np.ndarray:
    """The modes of the HR grid's rfftn that the LR grid represents, on the LR grid's rfftn layout, with the
    LR Nyquist planes zeroed (they alias two HR modes into one). Amplitudes keep <|W_k|^2> = n_lr^3."""
    h = n_lr // 2
    idx = np.r_[0:h, n_hr - h : n_hr]  # wavenumbers 0..h-1 and -h..-1 in fftfreq order
    out = w_k[np.ix_(idx, idx, np.arange(h + 1))] * (n_lr / n_hr) ** 1.5
    out[h, :, :] = 0.0  # index h holds wavenumber -h: the LR Nyquist plane
    out[:, h, :] = 0.0
    out[:, :, h] = 0.0
    return out


def linear_delta_k(w_k: np.ndarray, n: int, box: float) -> np.ndarray:
    """rfftn of the z = 0 linear density on an n^3 grid from white noise W_k: <|delta_k|^2> = n^6 P(k) / V."""
    kx, ky, kz = _kvec(n, box)
    k = np.sqrt(kx**2 + ky**2 + kz**2)
    return w_k * np.sqrt(linear_power(k) * n**3 / box**3)


def lpt2(delta_k: np.ndarray, n: int, box: float, growth: Growth, a: float):
    """2LPT positions and momenta p = a^3 E dx/da (H0 = 1) of an n^3 particle lattice at scale factor a.

    x = q - D1 grad phi1 + D2 grad phi2, lap phi1 = delta, lap phi2 = sum_{i<j} phi1_ii phi1_jj - phi1_ij^2,
    D2 = -3/7 D1^2 Om(a)^{-1/143}, dlnD2/dlna = 2 Om(a)^{6/11} (Scoccimarro 1998; Bouchet+1995)."""
    from scipy import fft

    kv = _kvec(n, box)
    k2 = kv[0] ** 2 + kv[1] ** 2 + kv[2] ** 2
    k2[0, 0, 0] = 1.0
    phi1 = -delta_k / k2

    def real(x_k):
        return fft.irfftn(x_k, s=(n, n, n))

    hess = {(i, j): real(-kv[i] * kv[j] * phi1) for i in range(3) for j in range(i, 3)}
    src = (hess[0, 0] * hess[1, 1] + hess[0, 0] * hess[2, 2] + hess[1, 1] * hess[2, 2]
           - hess[0, 1] ** 2 - hess[0, 2] ** 2 - hess[1, 2] ** 2)
    del hess
    phi2 = -fft.rfftn(src) / k2
    phi2[0, 0, 0] = 0.0
    grad1 = np.stack([real(1j * kv[i] * phi1).ravel() for i in range(3)], axis=1)
    grad2 = np.stack([real(1j * kv[i] * phi2).ravel() for i in range(3)], axis=1)
    d1, om_a = float(growth.d(a)), float(growth.omega_m(a))
    d2 = -3.0 / 7.0 * d1**2 * om_a ** (-1.0 / 143.0)
    dd1 = float(growth.dd_da(a))
    dd2 = d2 * 2.0 * om_a ** (6.0 / 11.0) / a
    q = (np.indices((n, n, n)).reshape(3, -1).T + 0.0) * (box / n)
    pos = (q - d1 * grad1 + d2 * grad2) % box
    mom = a**3 * float(growth.e(a)) * (-dd1 * grad1 + dd2 * grad2)
    return pos, mom


def evolve(pos: np.ndarray, mom: np.ndarray, mesh: int, box: float, growth: Growth, a_init: float,
           n_steps: int, a_final: float = 1.0) -> np.ndarray:
    """Kick-drift-kick PM from a_init to a_final in n_steps uniform in a; returns the final positions.

    FastPM coefficients (Feng+2016): a kick a0 -> a1 with the force at af adds F (gp(a1) - gp(a0)) /
    (3/2 Om D(af)); a drift a0 -> a1 with momentum at ap adds p (D(a1) - D(a0)) / gp(ap): exact for linear
    growth, so the large scales follow D(a) with few steps."""
    g, om = growth, growth.om
    edges = np.linspace(a_init, a_final, n_steps + 1)
    force = gravity(pos, mesh, box, om)
    for a0, a1 in itertools.pairwise(edges):
        ah = 0.5 * (a0 + a1)
        mom = mom + force * float((g.gp(ah) - g.gp(a0)) / (1.5 * om * g.d(a0)))
        pos = (pos + mom * float((g.d(a1) - g.d(a0)) / g.gp(ah))) % box
        force = gravity(pos, mesh, box, om)
        mom = mom + force * float((g.gp(a1) - g.gp(ah)) / (1.5 * om * g.d(a1)))
    return pos


def simulate_pair(box_seed: int, box: float = BOX_MPC_H, np_lr: int = NP_LR, np_hr: int = NP_HR,
                  mesh: int = MESH, z_init: float = Z_INIT, n_steps: int = N_STEPS, a_final: float = 1.0) -> dict:
    """One LR and one HR run from the same white noise: {"lr", "hr": final positions (M, 3) in Mpc/h,
    "w_k": the HR grid's white noise (rfftn), "growth": Growth}."""
    growth = Growth(cosmo_params()["Om0"])
    a_init = 1.0 / (1.0 + z_init)
    w_hr = white_noise_k(np.random.default_rng(box_seed), np_hr)
    out = {"w_k": w_hr, "growth": growth}
    for key, n, w in (("lr", np_lr, restrict_modes(w_hr, np_hr, np_lr)), ("hr", np_hr, w_hr)):
        pos, mom = lpt2(linear_delta_k(w, n, box), n, box, growth, a_init)
        out[key] = evolve(pos, mom, mesh * n, box, growth, a_init, n_steps, a_final)
    return out


# ---------------------------------------------------------------- statistics and maps


def power_spectrum(delta: np.ndarray, box: float, deconvolve_cic: bool = True):
    """Spherically averaged P(k) of a mesh density contrast (n^3): bins of width k_f centred on k_f, 2 k_f, ...
    up to the Nyquist frequency. Returns (k mean per bin, P, modes per bin); CIC window divided out if asked."""
    from scipy import fft

    n = delta.shape[0]
    dk = fft.rfftn(delta)
    kx, ky, kz = _kvec(n, box)
    kf = 2 * np.pi / box
    kmag = np.sqrt(kx**2 + ky**2 + kz**2)
    p = np.abs(dk) ** 2 * box**3 / n**6
    if deconvolve_cic:
        cell = box / n
        window = (np.sinc(kx * cell / (2 * np.pi)) * np.sinc(ky * cell / (2 * np.pi))
                  * np.sinc(kz * cell / (2 * np.pi))) ** 2  # np.sinc(x) = sin(pi x) / (pi x)
        p = p / window**2
    weight = np.ones(kmag.shape)  # rfft half plane: interior columns stand for two modes
    weight[..., 1 : (n - 1) // 2 + 1] = 2.0
    b = np.rint(kmag / kf).astype(int).ravel()
    nb = n // 2 + 1
    cnt = np.bincount(b, weights=weight.ravel(), minlength=nb)[1:nb]
    psum = np.bincount(b, weights=(p * weight).ravel(), minlength=nb)[1:nb]
    ksum = np.bincount(b, weights=(kmag * weight).ravel(), minlength=nb)[1:nb]
    return ksum / cnt, psum / cnt, cnt


def project_slab(pos: np.ndarray, axis: int, lo: float, hi: float, npix: int, box: float) -> np.ndarray:
    """Projected density of the particles with lo <= x_axis < hi in units of the cosmic mean (a slab's own mean
    varies with the structures it cuts): 2-D CIC, periodic."""
    x = pos[:, axis]
    x = np.where(x >= box, x - box, x)  # x % box can round up to box itself: that particle belongs at 0
    inside = (x >= lo) & (x < hi)
    xy = pos[inside][:, [i for i in range(3) if i != axis]]
    cell = box / npix
    u = xy / cell
    i0 = np.floor(u)
    f = u - i0
    i0 = i0.astype(np.int64) % npix
    i1 = (i0 + 1) % npix
    grid = np.zeros(npix * npix)
    for ix, wx in ((i0[:, 0], 1 - f[:, 0]), (i1[:, 0], f[:, 0])):
        for iy, wy in ((i0[:, 1], 1 - f[:, 1]), (i1[:, 1], f[:, 1])):
            grid += np.bincount(ix * npix + iy, weights=wx * wy, minlength=npix * npix)
    mean = len(pos) * (hi - lo) / box / npix**2  # particles per pixel of a uniform slab
    return (grid / mean).reshape(npix, npix)


def box_maps(run: dict, box: float = BOX_MPC_H):
    """(lr, hr, rows): the MAPS_PER_BOX slab maps of one pair, (M, 1, h, w) float32, with axis and slab edges."""
    thick = box / N_SLABS
    lr, hr, rows = [], [], []
    for axis in range(3):
        for s in range(N_SLABS):
            lo, hi = s * thick, (s + 1) * thick
            lr.append(project_slab(run["lr"], axis, lo, hi, NPIX_LR, box))
            hr.append(project_slab(run["hr"], axis, lo, hi, NPIX_HR, box))
            rows.append((axis, lo, hi))
    return np.asarray(lr, np.float32)[:, None], np.asarray(hr, np.float32)[:, None], rows


def box_seed(seed: int, block: int, box: int) -> int:
    """The integer that seeds box ``box`` of split number ``block``: different boxes for train and test."""
    return int(np.random.SeedSequence([seed, block, box]).generate_state(1, np.uint32)[0])


def config() -> dict:
    t = camb_tables()
    return {
        "npix_hr": NPIX_HR, "npix_lr": NPIX_LR, "factor": FACTOR, "box_mpc_h": BOX_MPC_H,
        "cell_hr_mpc_h": BOX_MPC_H / NPIX_HR, "cell_lr_mpc_h": BOX_MPC_H / NPIX_LR,
        "particles_lr": NP_LR**3, "particles_hr": NP_HR**3, "mesh_lr": MESH * NP_LR, "mesh_hr": MESH * NP_HR,
        "z_init": Z_INIT, "n_steps": N_STEPS, "redshift": 0.0, "slab_thickness_mpc_h": BOX_MPC_H / N_SLABS,
        "maps_per_box": MAPS_PER_BOX, "cosmology": {**cosmo_params(), "sigma8_camb": t["sigma8"]},
        "power_spectrum": f"camb {t['camb']} linear P(k) at z = 0, back-scaled with D(a) of flat LCDM",
        "ics": "2LPT (Scoccimarro 1998); HR white noise restricted to |n| < N_LR/2 for LR (Li+2021)",
        "pm": "CIC paint/read, FFT Poisson, spectral gradient, KDK in a with FastPM coefficients (Feng+2016)",
        "lr": "projected CIC density of the LR run: its own coarse simulation, not HR averaged over blocks",
        "units": "projected density / cosmic mean density (rho; mean 1 over the slabs of a box)",
        "extensive": False, "periodic": True, "channels": ["rho"],
    }


def generate(sizes: dict, seed: int, progress: bool = True):
    """Yields (split, {"hr": (N, 1, 128, 128), "lr": (N, 1, 32, 32), "truth": {...}}), N a multiple of 12."""
    p = cosmo_params()
    sigma8 = camb_tables()["sigma8"]
    for block, (split, n) in enumerate(sizes.items()):
        if n % MAPS_PER_BOX:
            raise ValueError(f"superres-nbody: {split} size {n} is not a multiple of {MAPS_PER_BOX} maps per box")
        lr, hr, truth = [], [], {k: [] for k in ("id", "box", "box_seed", "axis", "slab_lo_mpc_h",
                                                 "slab_hi_mpc_h")}
        with tqdm(total=n // MAPS_PER_BOX, desc=f"N-body pairs ({split})", unit="box", disable=not progress) as bar:
            for b in range(n // MAPS_PER_BOX):
                bs = box_seed(seed, block, b)
                run = simulate_pair(bs, box=BOX_MPC_H, np_lr=NP_LR, np_hr=NP_HR, mesh=MESH, z_init=Z_INIT,
                                    n_steps=N_STEPS)  # module settings read now (tests shrink them)
                m_lr, m_hr, rows = box_maps(run, BOX_MPC_H)
                lr.append(m_lr)
                hr.append(m_hr)
                for axis, lo, hi in rows:
                    truth["id"].append(len(truth["id"]))
                    truth["box"].append(b)
                    truth["box_seed"].append(bs)
                    truth["axis"].append(axis)
                    truth["slab_lo_mpc_h"].append(lo)
                    truth["slab_hi_mpc_h"].append(hi)
                bar.update(1)
        hr_a = np.concatenate(hr)
        table = {k: np.asarray(v, np.float64 if k.startswith("slab") else np.int64) for k, v in truth.items()}
        table.update(box_mpc_h=np.full(n, BOX_MPC_H), redshift=np.zeros(n), omega_m=np.full(n, p["Om0"]),
                     omega_b=np.full(n, p["Ob0"]), h=np.full(n, p["h"]), n_s=np.full(n, p["n_s"]),
                     sigma8=np.full(n, sigma8), max_rho_hr=hr_a.max(axis=(1, 2, 3)).astype(np.float64))
        yield split, {"hr": hr_a, "lr": np.concatenate(lr), "truth": table}


def _spec():
    from ..data.specs import SimulatedSpec

    return SimulatedSpec(
        name="superres-nbody",
        version=VERSION,
        description="LR/HR particle-mesh N-body pairs from the same initial conditions (Planck18, camb P(k), 2LPT, "
                    "z = 0): projected slab densities, LR 32x32 (32^3 particles) -> HR 128x128 (64^3 particles), x4",
        tracks=("superres",),
        sizes={"full": {"train": 24 * MAPS_PER_BOX, "test": 6 * MAPS_PER_BOX},
               "fast": {"train": 1 * MAPS_PER_BOX, "test": 1 * MAPS_PER_BOX}},  # 2 boxes: <= 20 s
        generate=generate,
        config=config,
        citation="Astro x ML hackathon starter kit; Li et al. 2021 (PNAS 118, e2022038118); Hockney & Eastwood 1988; "
                 "Feng et al. 2016 (MNRAS 463, 2273); camb (Lewis, Challinor & Lasenby 2000, ApJ 538, 473); "
                 "Takahashi et al. 2012 (ApJ 761, 152); Scoccimarro 1998 (MNRAS 299, 1097); Planck 2018 VI",
    )


DATASETS = [_spec()]

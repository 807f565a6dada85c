"""Validation of the ``superres-nbody`` PM generator (astrobench.sim.nbody) on small boxes: linear growth, LR/HR
agreement, halofit, mass conservation, determinism. The production-size figures are in the dataset's card."""

import numpy as np
import pytest

pytest.importorskip("camb")

from astrobench.sim import nbody as nb

SEEDS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def linear_pairs():
    """Pairs in a 2 Gpc/h box, where the fundamental modes are linear at z = 0: {a_final: [runs]}."""
    return {a: [nb.simulate_pair(s, box=2048.0, np_lr=16, np_hr=32, n_steps=8, a_final=a) for s in SEEDS[:2]]
            for a in (0.5, 1.0)}


@pytest.fixture(scope="module")
def pairs():
    """Four pairs at 16 / 8 Mpc/h spacing in a 256 Mpc/h box, evolved to z = 0 (non-linear on small scales)."""
    return [nb.simulate_pair(s, box=256.0, np_lr=16, np_hr=32) for s in SEEDS]


def measured(pos, n_particles, box):
    return nb.power_spectrum(nb.cic_paint(pos, 2 * n_particles, box), box)


def realised_linear(run, key, n, box):
    """z = 0 linear P(k) of this run's own initial modes (cosmic variance divides out of measured / this)."""
    from scipy import fft

    w = run["w_k"] if key == "hr" else nb.restrict_modes(run["w_k"], run["w_k"].shape[0], n)
    return nb.power_spectrum(fft.irfftn(nb.linear_delta_k(w, n, box), s=(n, n, n)), box, deconvolve_cic=False)


def test_growth_solves_the_linear_growth_equation():
    g = nb.Growth(nb.cosmo_params()["Om0"])
    a = np.array([0.05, 0.2, 0.5, 0.9])
    lhs = (g.gp(a + 1e-5) - g.gp(a - 1e-5)) / 2e-5  # d/da (a^3 E dD/da) = 3/2 Om D / (a^2 E)
    np.testing.assert_allclose(lhs, 1.5 * g.om * g.d(a) / (a**2 * g.e(a)), rtol=1e-5)
    assert g.d(1.0) == pytest.approx(1.0)
    assert g.d(1e-3) / 1e-3 == pytest.approx(g.d(2e-3) / 2e-3, rel=1e-3)  # matter era: D proportional to a
    assert g.d(0.5) == pytest.approx(0.6085, abs=2e-4)  # flat LCDM, Om = 0.30966 (Heath integral)


def test_initial_field_has_camb_linear_power():
    """White noise x sqrt(P_lin): the mode-averaged power of one 64^3 field matches camb's P_lin within 2 %."""
    n, box = 64, 256.0
    from scipy import fft

    delta = fft.irfftn(nb.linear_delta_k(nb.white_noise_k(np.random.default_rng(5), n), n, box), s=(n, n, n))
    k, p, modes = nb.power_spectrum(delta, box, deconvolve_cic=False)
    ratio = p / nb.linear_power(k)  # bin-mean k: P_lin is close to linear within a bin of width k_f
    use = modes >= 1000
    assert np.average(ratio[use], weights=modes[use]) == pytest.approx(1.0, abs=0.02)
    assert np.all(np.abs(ratio[use] - 1) < 0.12)  # per bin: a few sigma of sqrt(2 / modes)


@pytest.mark.parametrize("a_final", [0.5, 1.0])
@pytest.mark.parametrize("key,n", [("lr", 16), ("hr", 32)])
def test_large_scales_grow_as_linear_theory(linear_pairs, a_final, key, n):
    """P(k, a) / (D(a)^2 P_lin of the same modes) within 2 % (mode-weighted over k <= k_Nyquist / 4 of each run)."""
    box = 2048.0
    for run in linear_pairs[a_final]:
        _, p, modes = measured(run[key], n, box)
        _, p_lin, _ = realised_linear(run, key, n, box)
        use = slice(0, n // 8)  # bins up to a quarter of the run's particle Nyquist frequency
        ratio = p[use] / (run["growth"].d(a_final) ** 2 * p_lin[use])
        assert np.average(ratio, weights=modes[use]) == pytest.approx(1.0, abs=0.02), ratio
        assert np.all(np.abs(ratio - 1) < 0.04), ratio


def test_lr_and_hr_agree_below_half_the_lr_nyquist(pairs):
    """Same modes, same physics: mean over 4 boxes of P_LR / P_HR within 5 % for k <= k_Nyquist(LR) / 2 (the LR run
    lacks some of the non-linear power that HR resolves; at k_Nyquist(LR) / 4 they agree to 3 %)."""
    box, nbins = 256.0, 16 // 4  # LR Nyquist = 8 k_f
    ratios = []
    for run in pairs:
        _, p_lr, _ = measured(run["lr"], 16, box)
        _, p_hr, _ = measured(run["hr"], 32, box)
        ratios.append(p_lr[:nbins] / p_hr[:nbins])
    mean = np.mean(ratios, axis=0)
    assert np.all(np.abs(mean - 1) < 0.05), mean
    assert np.all(np.abs(mean[: nbins // 2] - 1) < 0.03), mean


def test_hr_against_halofit(pairs):
    """Mean HR P(k) of 4 boxes over camb's halofit (Takahashi+2012), bins with >= 90 modes up to half the HR
    particle Nyquist frequency (0.2 h/Mpc here): within 15 %, and not above it (PM at 8 Mpc/h spacing with a
    2-cell force resolution under-predicts small scales; the card gives the production-size figures)."""
    box = 256.0
    ps = [measured(run["hr"], 32, box) for run in pairs]
    k, modes = ps[0][0], ps[0][2]
    ratio = np.mean([p for _, p, _ in ps], axis=0) / nb.halofit_power(k)
    use = (modes >= 90) & (k <= 0.5 * np.pi * 32 / box)
    assert use.sum() >= 5
    assert np.all(np.abs(ratio[use] - 1) < 0.15), ratio[use]
    assert np.mean(ratio[use]) < 1.0


def test_mass_is_conserved(pairs):
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 100.0, (5000, 3))
    delta = nb.cic_paint(pos, 16, 100.0)
    assert delta.mean() == pytest.approx(0.0, abs=1e-12)  # CIC weights sum to one for every particle
    assert (1 + delta).min() >= 0
    run = pairs[0]
    lr, hr, rows = nb.box_maps(run, 256.0)
    # every particle lands in exactly one slab per axis and 2-D CIC keeps its mass: per axis, the slabs' mean
    # densities (units of the cosmic mean; each slab's own varies) average to exactly 1
    for m in (lr, hr):
        total = m.reshape(3, nb.N_SLABS, -1).mean(axis=2).sum(axis=1) / nb.N_SLABS
        np.testing.assert_allclose(total, 1.0, rtol=1e-6)
        assert m.min() >= 0
    assert [r[0] for r in rows] == [ax for ax in range(3) for _ in range(nb.N_SLABS)]


@pytest.fixture
def tiny_boxes(monkeypatch):
    """The generator shrunk to 8^3 / 16^3 particles and 4 steps: same code path, fractions of a second."""
    for name, value in (("NP_LR", 8), ("NP_HR", 16), ("N_STEPS", 4), ("NPIX_LR", 8), ("NPIX_HR", 32)):
        monkeypatch.setattr(nb, name, value)


def test_generation_is_deterministic_and_splits_use_different_boxes(tiny_boxes):
    sizes = {"train": 2 * nb.MAPS_PER_BOX, "test": nb.MAPS_PER_BOX}
    first = dict(nb.generate(sizes, seed=0, progress=False))
    again = dict(nb.generate(sizes, seed=0, progress=False))
    other = dict(nb.generate(sizes, seed=1, progress=False))
    for split in sizes:
        for key in ("lr", "hr"):
            assert first[split][key].dtype == np.float32
            assert first[split][key].shape == (sizes[split], 1, *(2 * (8 if key == "lr" else 32,)))
            assert np.array_equal(first[split][key], again[split][key])
            assert not np.array_equal(first[split][key], other[split][key])
    train, test = first["train"]["truth"], first["test"]["truth"]
    assert set(train["box_seed"]).isdisjoint(test["box_seed"])  # never slabs of one box on both sides
    assert len(set(train["box_seed"])) == 2
    assert np.all(train["redshift"] == 0) and np.all(train["box_mpc_h"] == nb.BOX_MPC_H)
    assert train["box_seed"][0] == nb.box_seed(0, 0, 0)
    for key in ("lr", "hr"):  # per box and axis, the slabs hold all the mass
        means = first["train"][key].reshape(2, 3, nb.N_SLABS, -1).mean(axis=(2, 3))
        np.testing.assert_allclose(means, 1.0, rtol=1e-5)


def test_registered_with_the_track_config():
    from astrobench import data

    info = data.info("superres-nbody")
    assert info["version"] == nb.VERSION == "1.0.0" and info["tracks"] == ["superres"]
    assert all(n % nb.MAPS_PER_BOX == 0 for sizes in info["sizes"].values() for n in sizes.values())
    cfg = nb.config()
    assert cfg["factor"] == nb.NPIX_HR // nb.NPIX_LR == 4
    assert cfg["extensive"] is False and cfg["channels"] == ["rho"] and cfg["periodic"] is True
    assert "block mean" not in cfg["lr"]  # LR is its own run: the upsampler must not project onto HR's block mean
    assert "superres-nbody" in info["card"]

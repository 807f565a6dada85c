"""The SBI scorer: C2ST sanity (reference vs itself, vs a shifted copy), calibration, bad input."""

import numpy as np
import pytest
from astrobench import cli
from astrobench.metrics import ScoreInputError, score
from astrobench.metrics.sbi import c2st_per_observation, calibration, tarp_coverage, tarp_curve
from astrobench.sim.sbi_tasks import get_task


@pytest.fixture(scope="module")
def reference():
    return get_task("galaxy-profile").reference_samples()


def test_c2st_reference_vs_reference_is_chance(reference):
    # disjoint halves of the reference: the classifier cannot tell them apart
    acc = c2st_per_observation(reference[:2, 5000:], reference[:2, :5000], n=1000)
    assert all(a <= 0.55 for a in acc), acc


def test_c2st_detects_a_two_sigma_shift(reference):
    shifted = reference[:2] + 2 * reference[:2].std(1, keepdims=True)
    acc = c2st_per_observation(shifted, reference[:2], n=1000)
    assert all(a >= 0.9 for a in acc), acc


def _gaussian_posteriors(scale=1.0, shift=0.0, m=200, s=100, seed=0):
    """Gaussian toy: prior N(0, 1), x = theta + N(0, 1), exact posterior N(x/2, 1/2). Returns samples of a posterior
    with the exact mean shifted by ``shift`` posterior sd and its width times ``scale``, and the true parameters."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(m, 5))
    x = theta + rng.normal(size=theta.shape)
    sd = np.sqrt(0.5)
    return x / 2 + shift * sd + scale * sd * rng.normal(size=(s, *theta.shape)), theta


def test_calibration_of_exact_posteriors_is_not_rejected():
    m = calibration(*_gaussian_posteriors())
    assert not m["sbc_rejected"] and not m["tarp_rejected"] and not m["calibration_rejected"]
    assert m["sbc_ks_pval_min"] >= 0.01 and m["tarp_ks_pval"] >= 0.01 and abs(m["tarp_atc"]) < 0.05
    assert m["calibration_p_threshold"] == 0.01 and m["calibration_num_sims"] == 200


@pytest.mark.parametrize(("scale", "sign"), [(0.5, -1), (0.2, -1), (2.0, 1)], ids=["overconfident-x0.5",
                                                                                 "overconfident-x0.2", "too-wide-x2"])
def test_miscalibrated_width_is_rejected_by_sbc_and_tarp(scale, sign):
    m = calibration(*_gaussian_posteriors(scale=scale))
    assert m["sbc_rejected"] and m["sbc_ks_pval_min"] < 0.01
    assert m["tarp_rejected"] and m["tarp_ks_pval"] < 0.01 and m["calibration_rejected"]
    assert np.sign(m["tarp_atc"]) == sign  # ATC < 0: too narrow, > 0: too wide (sbi's convention)


def test_biased_posterior_is_rejected():
    m = calibration(*_gaussian_posteriors(shift=0.5))  # half a posterior sd off, right width
    assert m["sbc_rejected"] and m["tarp_rejected"]


def test_a_bias_in_one_parameter_of_five_fails_the_report():
    # as the shipped lightcurve model does with t0: SBC's per-parameter ranks catch it, whatever TARP's joint test says
    samples, theta = _gaussian_posteriors()
    samples[..., 0] += 0.5 * np.sqrt(0.5)
    m = calibration(samples, theta)
    assert m["sbc_ks_pvals"][0] < 0.01 and min(m["sbc_ks_pvals"][1:]) >= 0.01 and m["calibration_rejected"]


def test_tarp_grid_is_fixed_and_sbi_check_tarp_alone_cannot_reject():
    import torch
    from sbi.diagnostics import check_tarp

    samples, theta = _gaussian_posteriors(scale=0.5)
    ecp, alpha = tarp_curve(samples, theta)
    assert isinstance(ecp, torch.Tensor) and ecp.shape == alpha.shape == (21,)
    assert float(alpha[0]) == 0 and float(alpha[-1]) == 1 and float(ecp[-1]) == 1
    # why the old report never failed: sbi's check_tarp p-value (KS between curve values and grid values) is far
    # above any threshold for this posterior half as wide as it should be, which calibration() rejects
    assert check_tarp(ecp, alpha)[1] > 0.05
    assert calibration(samples, theta)["tarp_ks_pval"] < 1e-4


def test_tarp_coverage_values_are_uniform_for_the_exact_posterior():
    from scipy.stats import kstest

    f = tarp_coverage(*_gaussian_posteriors(m=400, s=200, seed=3))
    assert f.shape == (400,) and f.min() >= 0 and f.max() <= 1
    assert kstest(f, "uniform").pvalue > 0.01 and abs(f.mean() - 0.5) < 0.05


def test_posterior_predictive_check_flags_a_wrong_posterior_and_survives_samples_outside_the_prior():
    from astrobench.metrics.sbi import posterior_predictive

    task = get_task("lightcurve")
    ref, x_obs = task.reference_samples(1000), task.observations()
    outside = ref.copy()
    outside[:, ::2, 3] = 1.5  # impact parameter b > 1: no transit, sqrt(1 - b^2) undefined
    p = posterior_predictive(task, outside, x_obs)
    assert np.all(np.isfinite(p)) and min(p) > 0.01
    wrong = posterior_predictive(task, ref[::-1], x_obs)  # each observation gets another observation's posterior
    assert sum(q < 0.02 for q in wrong) >= 8


def _pred(n=1000, dim=5, **extra):
    return {"samples": np.zeros((10, n, dim), np.float32), **extra}


@pytest.mark.parametrize(
    ("pred", "message"),
    [
        (_pred(dim=4), r"expected \(10, n, 5\)"),
        ({"samples": np.zeros((9, 1000, 5), np.float32)}, r"expected \(10, n, 5\)"),
        (_pred(n=999), "at least 1000"),
        ({"samples": np.full((10, 1000, 5), np.nan, np.float32)}, "NaN"),
        ({"posterior": np.zeros((10, 1000, 5))}, "missing key 'samples'"),
        (_pred(calib_theta=np.zeros((50, 5), np.float32), calib_samples=np.zeros((100, 50, 5), np.float32)),
         "at least 200"),
    ],
)
def test_bad_input_is_a_one_line_error(pred, message):
    with pytest.raises(ScoreInputError, match=message):
        score("sbi:lightcurve", pred)


def test_task_is_required_and_checked():
    with pytest.raises(ScoreInputError, match="expected sbi:<task>"):
        score("sbi", _pred())
    with pytest.raises(ScoreInputError, match="unknown SBI task"):
        score("sbi:two-moons", _pred())


def test_cli_exits_2_on_bad_samples(tmp_path, capsys):
    path = tmp_path / "p.npz"
    np.savez(path, samples=np.zeros((10, 10, 5), np.float32))
    assert cli.main(["score", "sbi:galaxy-profile", str(path)]) == 2
    err = capsys.readouterr().err
    assert "at least 1000" in err and len(err.strip().splitlines()) == 1


def test_c2st_is_remembered_in_an_existing_cache_and_never_creates_one(tmp_path, monkeypatch):
    """A second process scoring the same samples reads the number back (scripts, `astrobench score`, leaderboards);
    a missing cache is not created (a Codabench worker scores from its bundle alone)."""
    import sbi.utils.metrics
    from astrobench.metrics import sbi as scorer

    reference = get_task("two_moons").reference_samples()[:1]
    monkeypatch.setenv("ASTROBENCH_DATA", str(tmp_path / "none"))
    monkeypatch.setattr(scorer, "_C2ST_SEEN", {})
    first = c2st_per_observation(reference[:, 5000:], reference, n=1000)
    assert not (tmp_path / "none").exists()
    (tmp_path / "cache").mkdir()
    monkeypatch.setenv("ASTROBENCH_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(scorer, "_C2ST_SEEN", {})
    assert c2st_per_observation(reference[:, 5000:], reference, n=1000) == first
    assert len(list((tmp_path / "cache" / "c2st").iterdir())) == 1
    monkeypatch.setattr(scorer, "_C2ST_SEEN", {})  # as in another process: only the disk remembers
    monkeypatch.setattr(sbi.utils.metrics, "c2st", lambda *a, **k: pytest.fail("C2ST computed again"))
    assert c2st_per_observation(reference[:, 5000:], reference, n=1000) == first

"""The SBI scorer: C2ST sanity (reference vs itself, vs a shifted copy), calibration, bad input."""

import numpy as np
import pytest
from astrobench import cli
from astrobench.metrics import ScoreInputError, score
from astrobench.metrics.sbi import c2st_per_observation, calibration
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


def test_calibration_of_exact_posteriors_is_not_rejected():
    # Gaussian toy: prior N(0,1), x = theta + N(0,1) -> posterior N(x/2, 1/2); exact samples are calibrated
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(200, 5))
    x = theta + rng.normal(size=theta.shape)
    samples = x / 2 + np.sqrt(0.5) * rng.normal(size=(100, *theta.shape))
    m = calibration(samples, theta)
    assert m["sbc_ks_pval_min"] > 0.01 and m["tarp_ks_pval"] > 0.05 and abs(m["tarp_atc"]) < 0.1
    bad = calibration(x / 2 + 0.2 * np.sqrt(0.5) * rng.normal(size=(100, *theta.shape)), theta)  # overconfident
    assert bad["sbc_ks_pval_min"] < 1e-3


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

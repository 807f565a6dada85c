"""Super-resolution metrics on synthetic arrays: the properties the issue asks for, no dataset needed."""

import numpy as np
import pytest
from astrobench.metrics import superres as m
from astrobench.sim.fields import block_mean
from scipy import ndimage


def _fields(n=6, size=64, seed=0):
    """Smooth positive random images (N, 1, size, size) with power at all scales."""
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.standard_normal((n, 1, size, size)), sigma=(0, 0, 1.0, 1.0), mode="wrap")
    return np.exp(x / x.std()).astype(np.float32)


def test_identity_gives_infinite_psnr_unit_ssim_and_unit_pk_ratio():
    hr = _fields()
    out = m.evaluate(hr, hr.copy(), pdf=True)
    assert out["psnr"] == np.inf
    assert out["ssim"] == pytest.approx(1.0)
    assert np.allclose(out["pk_ratio"], 1.0)
    assert out["pk_worst_half_nyquist"] == pytest.approx(0.0, abs=1e-12)
    assert out["flux_bias"] == 0.0 and out["flux_err_median"] == 0.0
    assert out["pdf_w1"] == 0.0


def test_blurred_hr_has_too_little_power_at_high_k():
    hr = _fields()
    blurred = ndimage.gaussian_filter(hr, sigma=(0, 0, 1.5, 1.5), mode="wrap")
    k, ratio = m.pk_ratio(hr, blurred)
    assert np.all(ratio[k > 0.15] < 0.5)  # a Gaussian blur of 1.5 px kills small scales
    assert ratio[0] > 0.9  # and keeps the largest ones
    out = m.evaluate(hr, blurred)
    assert np.isfinite(out["psnr"]) and out["ssim"] < 1
    assert abs(out["flux_bias"]) < 1e-5  # blurring moves flux around, it does not create any


def test_bicubic_of_block_mean_scores_below_hr():
    hr = _fields()
    lr = block_mean(hr, 4)
    up = m.bicubic(lr, 4, extensive=False)
    assert up.shape == hr.shape
    res = m.evaluate(hr, up)
    assert 10 < res["psnr"] < np.inf
    assert res["ssim"] < 0.99
    k, ratio = np.array(res["pk_k"]), np.array(res["pk_ratio"])
    assert np.all(ratio[k >= 0.25] < 0.5)  # beyond the LR Nyquist frequency bicubic has little power
    assert res["pk_worst_half_nyquist"] > 0.5


def test_white_noise_spectrum_is_flat_at_its_variance():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2.0, (20, 2, 32, 32))
    k, p = m.power_spectrum(x)
    assert len(k) == 16 and k[-1] == 0.5
    assert np.allclose(p, 4.0, rtol=0.2)


def test_bicubic_keeps_flux_for_extensive_images():
    rng = np.random.default_rng(2)
    lr = ndimage.gaussian_filter(rng.random((4, 3, 16, 16)), sigma=(0, 0, 2, 2)).astype(np.float32)
    up = m.bicubic(lr, 4, extensive=True)
    assert np.allclose(up.sum(axis=(2, 3)), lr.sum(axis=(2, 3)), rtol=0.02)


def test_psnr_uses_each_hr_images_peak_to_peak_range():
    hr = np.zeros((1, 1, 8, 8))
    hr[0, 0, 4, 4] = 10.0
    sr = hr + 0.1  # MSE 0.01, range 10 -> 10 log10(100 / 0.01) = 40 dB
    assert m.psnr(hr, sr)[0] == pytest.approx(40.0)
    assert m.worst_ratio(np.array([0.1, 0.2, 0.3]), np.array([1.05, 0.8, 0.1]), 0.25) == pytest.approx(0.2)


def test_pdf_w1_matches_scipy():
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(4)
    a, b = rng.lognormal(size=(3, 1, 8, 8)), rng.lognormal(0.2, size=(3, 1, 8, 8))
    assert m.pdf_w1(a, b) == pytest.approx(wasserstein_distance(b.ravel(), a.ravel()), rel=1e-10)

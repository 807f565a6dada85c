"""The superres datasets and `astrobench score superres:<dataset>` on their FAST test splits."""

import numpy as np
import pytest
from astrobench import cli, data
from astrobench.metrics import ScoreInputError, score
from astrobench.metrics import superres as m
from astrobench.sim import fields, superres_galaxies


@pytest.fixture(scope="module")
def fields_test():
    return data.load("superres-fields", "test", fast=True, progress=False)


@pytest.fixture(scope="module")
def galaxies_test():
    return data.load("superres-galaxies", "test", fast=True, progress=False)


def test_fields_lr_is_the_block_mean_of_hr(fields_test):
    hr, lr = np.asarray(fields_test.hr), np.asarray(fields_test.lr)
    assert hr.shape == (100, 1, 128, 128) and lr.shape == (100, 1, 32, 32)
    assert np.allclose(lr, fields.block_mean(hr.astype(np.float64)), rtol=1e-5)
    assert hr.min() > 0 and abs(hr.mean() - 1) < 0.05  # log-normal density, mean 1
    assert fields_test.meta["config"]["extensive"] is False


def test_galaxy_pairs_conserve_flux(galaxies_test):
    t = galaxies_test.truth
    assert galaxies_test.hr.shape == (200, 3, 64, 64) and galaxies_test.lr.shape == (200, 3, 16, 16)
    for b in "grz":  # noiseless stamp fluxes: LR and HR hold the same light
        rel = np.abs(t[f"stamp_flux_lr_{b}"] / t[f"stamp_flux_hr_{b}"] - 1)
        assert np.median(rel) < 0.005 and np.percentile(rel, 95) < 0.015
    hr, lr = np.asarray(galaxies_test.hr), np.asarray(galaxies_test.lr)
    total = lr.sum(axis=(0, 2, 3)) / hr.sum(axis=(0, 2, 3))
    assert np.allclose(total, 1, atol=0.02)  # with noise, over the whole split
    assert np.all(superres_galaxies.sky_sigma("hr") < superres_galaxies.sky_sigma("lr") / 10)


def test_generators_are_deterministic():
    a = fields.generate({"train": 3, "test": 2}, seed=5, progress=False)
    b = fields.generate({"train": 3, "test": 2}, seed=5, progress=False)
    c = fields.generate({"train": 3, "test": 2}, seed=6, progress=False)
    assert np.array_equal(a["test"]["hr"], b["test"]["hr"]) and not np.array_equal(a["test"]["hr"], c["test"]["hr"])
    truth = superres_galaxies.draw_truth(4, seed=3)
    g1 = superres_galaxies.simulate(truth, seed=3, block=0, progress=False)
    g2 = superres_galaxies.simulate(truth, seed=3, block=0, progress=False)
    *arrays1, cols1 = g1
    *arrays2, cols2 = g2
    assert all(np.array_equal(x, y) for x, y in zip(arrays1, arrays2, strict=True))
    assert all(np.array_equal(cols1[k], cols2[k], equal_nan=True) for k in cols1)


def test_eh98_transfer_function_shape():
    k = np.array([1e-4, 0.02, 0.2, 2.0])
    t = fields.transfer_eh98_nowiggle(k, 0.31, 0.049, 0.677)
    assert t[0] == pytest.approx(1.0, abs=1e-3) and np.all(np.diff(t) < 0)
    kk = np.geomspace(1e-3, 1, 200)
    assert 0.01 < kk[np.argmax(fields.power_shape(kk))] < 0.03  # the ΛCDM turnover, k_eq ~ 0.015-0.02 h/Mpc


def test_identity_and_bicubic_scores(fields_test):
    hr, lr = np.asarray(fields_test.hr), np.asarray(fields_test.lr)
    ident = score("superres:fields", {"sr": hr.copy()})
    assert ident["psnr"] == np.inf and np.allclose(ident["pk_ratio"], 1.0) and ident["pdf_w1"] == 0
    assert ident["dataset"] == "superres-fields" and ident["fast"] is True
    bic = score("superres", {"sr": m.bicubic(lr, 4, extensive=False)})  # task inferred from the shape
    assert bic["psnr"] == pytest.approx(bic["psnr_bicubic"]) and bic["psnr"] < 40
    assert bic["ssim"] < ident["ssim"] and bic["pk_worst_half_nyquist"] > 0.5 and bic["pdf_w1"] > 0
    assert ident["psnr_bicubic"] == pytest.approx(bic["psnr"])  # the reference does not depend on the prediction


@pytest.mark.parametrize("pred, match", [
    ({"sr": np.zeros((100, 1, 64, 64), np.float32)}, "expected"),
    ({"sr": np.zeros((7, 1, 128, 128), np.float32)}, "7 rows"),
    ({"sr": np.full((100, 1, 128, 128), np.nan, np.float32)}, "NaN"),
    ({"sr": np.zeros((100, 1, 128, 128), np.int64)}, "dtype"),
    ({"hr": np.zeros((100, 1, 128, 128), np.float32)}, "missing key 'sr'"),
])
def test_bad_predictions_raise_one_line_errors(pred, match):
    with pytest.raises(ScoreInputError, match=match):
        score("superres:fields", pred)


def test_cli_exit_2_on_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, sr=np.full((100, 1, 128, 128), np.nan, np.float32))
    assert cli.main(["score", "superres:superres-fields", str(bad)]) == 2
    assert cli.main(["score", "superres:nosuch", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "NaN" in err[0] and "unknown superres task" in err[1]

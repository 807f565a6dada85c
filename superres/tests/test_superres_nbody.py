"""superres:nbody: what its statistics (P(k), r(k), log-density PDF, peak counts) do on known inputs, draws averaged,
one-line errors (exit 2), and both shipped nbody models scored on the FAST test split with scorer parity."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from astrobench import baseline, cli, data
from astrobench.metrics import score
from astrobench.metrics import superres as m
from scipy.ndimage import gaussian_filter

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import stochastic  # noqa: E402
import upsampler  # noqa: E402


@pytest.fixture(scope="module")
def test_split():
    return data.load("superres-nbody", "test", fast=True, progress=False)


@pytest.fixture(scope="module")
def hr(test_split):
    return np.asarray(test_split.hr)


def smooth(x, sigma=1.5):
    return gaussian_filter(x, (0, 0, sigma, sigma), mode="wrap").astype(np.float32)


def test_hr_scored_against_itself_is_perfect(hr):
    out = m.evaluate_nbody(hr, hr)
    assert out["rk_min_half_nyquist"] == pytest.approx(1, abs=1e-9) and np.allclose(out["rk"], 1)
    assert out["peaks_ratio_lo"] == out["peaks_ratio_hi"] == 1 and out["peaks_worst"] == 0
    assert out["pk_worst_half_nyquist"] == 0 and out["pdf_w1_log"] == 0
    assert np.all(m.peak_counts(hr) > [500, 50])  # thresholds 3 and 10: enough peaks in 12 maps to count


def test_smoothing_loses_power_and_peaks_but_not_rk(hr):
    out = m.evaluate_nbody(hr, smooth(hr))
    k, ratio = np.array(out["pk_k"]), np.array(out["pk_ratio"])
    assert ratio[k <= 1 / 64].min() > 0.9 and ratio[np.argmin(np.abs(k - 0.25))] < 0.2  # the small-scale deficit
    assert out["rk_min_half_nyquist"] > 0.99  # a filter scales each k bin: r(k) cannot see it, P(k) does
    assert out["peaks_ratio_hi"] < 0.7 and out["pdf_w1_log"] > 0.02
    other = m.evaluate_nbody(hr, np.roll(hr, 1, axis=0))  # another slab: same statistics, unrelated phases
    assert abs(np.mean(other["rk"])) < 0.2 and other["pk_worst_lr_nyquist"] < 0.5


def test_metrics_average_over_draws_and_floors_are_reported(hr):
    res = score("superres:nbody", {"sr": hr, "samples": np.stack([hr, smooth(hr)], axis=1)})
    alone = m.evaluate_nbody(hr, smooth(hr))
    assert res["n_samples"] == 2 and res["dataset"] == "superres-nbody" and res["fast"] is True
    for key in ("pk_worst_half_nyquist", "peaks_worst", "pdf_w1_log"):  # HR's own values are 0
        assert res[key] == pytest.approx(alone[key] / 2)
    assert res["rk"] == pytest.approx(((1 + np.array(alone["rk"])) / 2).tolist())
    for floor in ("bicubic", "lr"):  # neither makes small-scale structure or the dense peaks
        assert res[f"peaks_worst_{floor}"] > 0.5 and res[f"pk_worst_half_nyquist_{floor}"] > 0.9


BAD = {
    "wrong shape": ({"sr": np.ones((12, 1, 64, 64), np.float32)}, "shape"),
    "NaN": ({"sr": np.full((12, 1, 128, 128), np.nan, np.float32)}, "NaN"),
    "negative": ({"sr": np.full((12, 1, 128, 128), -0.5, np.float32)}, "negative densities"),
    "draws for other maps": ({"sr": np.ones((12, 1, 128, 128), np.float32),
                              "samples": np.ones((11, 2, 1, 128, 128), np.float32)}, "'samples' has shape"),
    "too many draws": ({"sr": np.ones((12, 1, 128, 128), np.float32),
                        "samples": np.ones((12, m.MAX_SAMPLES + 1, 1, 128, 128), np.float32)}, "draws per map"),
    "no draws": ({"sr": np.ones((12, 1, 128, 128), np.float32),
                  "samples": np.ones((12, 0, 1, 128, 128), np.float32)}, "draws per map"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_predictions_are_one_line_exit_2(case, test_split, tmp_path, capsys):
    arrays, needle = BAD[case]
    path = tmp_path / "bad.npz"
    baseline.save_predictions(path, test_split.meta, ("lr",), **arrays)
    assert cli.main(["score", "superres:nbody", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0], err


def scored_like_the_cli(out, tmp_path) -> dict:
    """metrics.json of a run, after checking it equals `astrobench score superres:nbody` of its predictions."""
    report = json.loads((out / "metrics.json").read_text())
    assert cli.main(["score", "superres:nbody", str(out / "predictions.npz"), "--json", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text()) == json.loads(json.dumps(report["metrics"]))
    return report["metrics"]


def test_shipped_stochastic_model_samples_and_scores(tmp_path, capsys):
    out = tmp_path / "stochastic"
    assert stochastic.main(["--fast", "--pretrained", "--threads", "1", "--out", str(out)]) == 0
    assert "(pretrained)" in capsys.readouterr().out
    res = scored_like_the_cli(out, tmp_path)
    assert res["n_samples"] == stochastic.FAST["samples"]
    # draws carry small-scale power, peaks and density contrast that bicubic lacks (full-run numbers: RESULTS.md)
    assert res["pk_worst_half_nyquist"] < 0.8 < res["pk_worst_half_nyquist_bicubic"]
    assert res["peaks_worst"] < res["peaks_worst_bicubic"] and res["pdf_w1_log"] < res["pdf_w1_log_bicubic"] / 2
    with np.load(out / "predictions.npz") as f:
        assert f["samples"].shape == (12, 2, 1, 128, 128) and np.array_equal(f["sr"], f["samples"][:, 0])


def test_shipped_deterministic_nbody_model_is_smooth(tmp_path):
    out = tmp_path / "upsampler"
    assert upsampler.main(["--fast", "--pretrained", "--dataset", "nbody", "--threads", "1", "--out", str(out)]) == 0
    res = json.loads((out / "metrics.json").read_text())["metrics"]  # (parity: the stochastic test, same scorer)
    assert res["psnr"] > res["psnr_bicubic"] and res["rk_min_lr_nyquist"] > res["rk_min_lr_nyquist_bicubic"]
    k, ratio = np.array(res["pk_k"]), np.array(res["pk_ratio"])
    assert ratio[np.argmin(np.abs(k - 0.25))] < 0.5  # the conditional mean: small-scale power is missing

"""anomaly/timeseries.py (task anomaly:lightcurves): the encoding of irregular curves, the model's interface, the
scorer parity, one-line errors for bad light curves, and the shipped model. Tiny budgets: the contract, not the
quality (the faketime test in shared/tests/test_baselines_contract.py runs the FAST setting)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from astrobench import baseline, cli, data, metrics
from astrobench.errors import ScoreInputError
from astrobench.metrics import anomaly as M
from astrobench.testing import flip_last_byte, shipped_copy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import timeseries as TS

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def fast():
    return TS.load(fast=True)


def _small_forest(train_feats, test_feats, seed):  # the comparison's IsolationForest, 30 trees (test time)
    from sklearn.ensemble import IsolationForest

    return -IsolationForest(n_estimators=30, random_state=seed).fit(train_feats).score_samples(test_feats)


@pytest.fixture(scope="module")
def run(fast, tmp_path_factory):
    """One FAST run of the script, 3 optimizer steps."""
    out = tmp_path_factory.mktemp("timeseries")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(TS, "iforest_scores", _small_forest)
        assert TS.main(["--fast", "--threads", "1", "--set", "steps=3", "--out", str(out)]) == 0
    return out


def test_encoding_and_model_interface(fast):
    _, test = fast
    enc = TS.encode(test)
    n, t = test.time.shape
    assert enc["x"].shape == (n, TS.CHANNELS, t + (-t % TS.DOWN)) and enc["w"].shape == (n, enc["x"].shape[-1])
    m = np.asarray(test.mask)
    assert np.array_equal(enc["x"][:, -1, :t] > 0, m) and not enc["w"][:, t:].any() and (enc["w"][:, :t][m] > 0).all()
    assert np.isfinite(enc["x"]).all() and (enc["x"][:, 2][:, :t][m] >= 0).all()  # log(1 + days since previous)
    u_hat, z = TS.build_model(TS.FAST)(torch.as_tensor(enc["x"][:4]))
    assert u_hat.shape == (4, enc["x"].shape[-1]) and z.shape == (4, 2 * TS.FAST["latent"])


def test_a_glint_scores_above_its_clean_curve(fast, run):
    # the score compares a curve's worst observations with its own residuals: one flash must raise it
    from astrobench.data.dataset import Dataset

    train, _ = fast
    model = TS.build_model(TS.FAST)
    model.load_state_dict(torch.load(run / "timeseries.pt", weights_only=True))  # the run's model (3 steps)
    rows = np.flatnonzero(np.asarray(train.truth["class"]) == "constant")[:8]
    arrays = {k: np.array(v[rows]) for k, v in train.arrays.items()}
    clean = TS.evaluate(model, TS.encode(Dataset("c", "train", arrays, train.truth[rows])))[0]
    first = arrays["mask"].argmax(1)  # each curve's first valid observation
    arrays["flux"][np.arange(8), first] *= 4  # a satellite glint: 3x the star's flux added in one exposure
    glint = TS.evaluate(model, TS.encode(Dataset("g", "train", arrays, train.truth[rows])))[0]
    assert (glint > clean + 1).all(), (clean, glint)


def test_fast_run_equals_astrobench_score(run, capsys):
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["task"] == "lightcurves" and saved["config"]["steps_done"] == 3 and not saved["stopped_by_clock"]
    assert set(saved["metrics"]["compare"]) == {"ae_mean_chi2", "iforest_features", "iforest_latent"}
    assert saved["versions"]["light-curve"] and (run / "topk_gallery.png").is_file()
    capsys.readouterr()
    assert cli.main(["score", "anomaly:lightcurves", str(run / "predictions.npz")]) == 0
    assert json.loads(capsys.readouterr().out) == saved["metrics"]
    m = saved["metrics"]
    assert m["n_test"] == 400 and m["n_anomalies"] == 16 and m["fast"] is True
    assert set(m["recall_per_type"]) == {"sn_ia", "sn_cc", "microlensing", "cloudy_night", "zp_jump",
                                         "satellite_glint", "tracking_failure"}


def test_scorer_refuses_wrong_predictions(run, capsys):
    pred = dict(np.load(run / "predictions.npz"))
    for bad, words in (({"score": pred["score"][:-1]}, "399 rows"), ({"score": pred["score"] * np.nan}, "NaN"),
                       ({"score": pred["score"][:, None]}, "2 dims"), ({}, "missing key 'score'")):
        with pytest.raises(ScoreInputError, match=words):
            metrics.score("anomaly:lightcurves", bad)
    bad_file = run / "bad.npz"
    np.savez(bad_file, score=np.zeros(6001))
    assert cli.main(["score", "anomaly:lightcurves", str(bad_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "6000 (full) or 400 (FAST)" in err
    labels, types = M.truth("lightcurves", fast=True)  # the labelled test split: 4 % rare, typed by class
    assert labels.sum() == 16 and set(types[labels == 0]) == {"none"}


def _own(monkeypatch, tmp_path, name, spoil):
    """A user dataset made of the first FAST light curves, with ``spoil(split arrays)`` applied to both splits."""
    splits = {}
    for split in ("train", "test"):
        ds = data.load("lightcurves", split, fast=True, progress=False)
        arrays = {k: np.array(v[:40]) for k, v in ds.arrays.items()}
        spoil(arrays)
        splits[split] = {**arrays, "truth": {c: np.asarray(ds.truth[c][:40]) for c in ("class", "is_rare")}}
    monkeypatch.setenv("ASTROBENCH_DATA", str(tmp_path / "own"))
    data.register_arrays(name, splits)
    return name


def _nan_time(a):
    a["time"][3, 5] = np.nan


def _unsorted(a):
    a["time"][3, [5, 6]] = a["time"][3, [6, 5]]
    a["mask"][3, [5, 6]] = True


BAD = [("short-flux", lambda a: a.update(flux=a["flux"][:, :-1]), "'flux' has shape (40, 621)"),
       ("nan-time", _nan_time, "NaN/inf times"),
       ("unsorted", _unsorted, "not sorted"),
       ("one-band", lambda a: a["band"].fill(1), "expected both 0 (g) and 1 (r)"),
       ("no-band", lambda a: a.pop("band"), "no array 'band'")]


@pytest.mark.parametrize("name,spoil,words", BAD, ids=[b[0] for b in BAD])
def test_bad_light_curves_are_one_line_and_exit_2(name, spoil, words, tmp_path, monkeypatch, capsys):
    dataset = _own(monkeypatch, tmp_path, name, spoil)
    out = tmp_path / "out"
    assert TS.main(["--fast", "--dataset", dataset, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and err.startswith("timeseries.py: error:"), err
    assert not out.exists()


def test_the_shipped_model_loads_and_scores(fast):
    _, test = fast
    state, cfg = baseline.load_pretrained(TS.PRETRAINED, test.meta)  # hashes and training data checked
    model = TS.build_model(cfg)
    model.load_state_dict(state)
    result = metrics.score("anomaly:lightcurves", {"score": TS.evaluate(model, TS.encode(test))[0].astype(float)})
    shipped = json.loads((TS.PRETRAINED / "metrics.json").read_text())
    assert shipped["config"]["mode"] == "full" and shipped["metrics"]["n_test"] == 6000
    assert result["auroc"] >= 0.8 and result["n_test"] == 400  # measured: see anomaly/RESULTS.md


def test_a_tampered_shipped_model_is_refused(tmp_path, monkeypatch, capsys):
    flip_last_byte(shipped_copy(TS, tmp_path, monkeypatch) / "model.safetensors")
    assert TS.main(["--pretrained", "--fast", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sha256" in err and not (tmp_path / "out").exists()

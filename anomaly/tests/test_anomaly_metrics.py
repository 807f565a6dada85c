"""astrobench.metrics.anomaly: AUROC, AUPRC, precision@k, recall at 1 % FPR; `astrobench score anomaly` checks."""

import numpy as np
import pytest
from astrobench import cli, metrics
from astrobench.metrics import ScoreInputError
from astrobench.metrics import anomaly as M


def _labels(n=20000, frac=0.04, seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.uniform(size=n) < frac).astype(int)
    types = np.where(labels == 1, rng.choice(["a", "b"], n), "none")
    return rng, labels, types


def test_random_scores_give_chance():
    rng, labels, types = _labels()
    m = M.anomaly_metrics(rng.uniform(size=len(labels)), labels, types)
    assert abs(m["auroc"] - 0.5) < 0.03
    assert abs(m["auprc"] - labels.mean()) < 0.02
    assert m["recall_at_1pct_fpr"] < 0.03 and set(m["recall_per_type"]) == {"a", "b"}


def test_perfect_and_inverted_scores():
    rng, labels, types = _labels()
    perfect = labels + 0.5 * rng.uniform(size=len(labels))
    m = M.anomaly_metrics(perfect, labels, types)
    assert m["auroc"] == 1.0 and m["auprc"] == 1.0
    assert m["precision_at_1pct"] == 1.0 and m["precision_at_50"] == 1.0 and m["recall_at_1pct_fpr"] == 1.0
    assert m["recall_per_type"] == {"a": 1.0, "b": 1.0}
    assert M.anomaly_metrics(-perfect, labels, types)["auroc"] == 0.0


def test_recall_per_type_and_fpr_threshold():
    labels = np.array([0] * 1000 + [1] * 20)
    types = np.array(["none"] * 1000 + ["easy"] * 10 + ["hard"] * 10)
    scores = np.concatenate([np.arange(1000.0), np.full(10, 5000.0), np.full(10, 500.0)])
    m = M.anomaly_metrics(scores, labels, types)
    assert m["recall_per_type"] == {"easy": 1.0, "hard": 0.0}
    thr = M.threshold_at_fpr(scores, labels)
    assert np.mean(scores[:1000] > thr) <= 0.01
    tied = M.anomaly_metrics(np.zeros(1020), labels, types)  # constant scores flag nothing
    assert tied["recall_at_1pct_fpr"] == 0.0 and tied["auroc"] == 0.5
    assert M.precision_at(scores, labels, 10) == 1.0


@pytest.fixture(scope="module")
def fast_truth():
    return M.truth(fast=True)


def test_score_uses_the_fast_test_split(fast_truth):
    labels, types = fast_truth
    n = len(labels)
    assert n == 400 and labels.sum() == 16 and len(set(types[labels == 1])) == 8
    perfect = labels.astype(float)
    out = metrics.score("anomaly", {"score": perfect, "score_random": np.random.default_rng(0).uniform(size=n)})
    assert out["auroc"] == 1.0 and out["fast"] is True and out["n_anomalies"] == 16
    assert 0.2 < out["compare"]["random"]["auroc"] < 0.8


@pytest.mark.parametrize("pred, match", [
    ({"scores": np.zeros(400)}, "missing key 'score'"),
    ({"score": np.zeros(399)}, "399 rows"),
    ({"score": np.full(400, np.nan)}, "NaN"),
    ({"score": np.zeros((400, 2))}, "dims"),
    ({"score": np.array(["a"] * 400)}, "dtype"),
    ({"score": np.zeros(400), "score_other": np.zeros(10)}, "score_other"),
])
def test_bad_input_names_what_was_expected(pred, match):
    with pytest.raises(ScoreInputError, match=match):
        metrics.score("anomaly", pred)


def test_cli_exit_codes(tmp_path, fast_truth, capsys):
    labels, _ = fast_truth
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    np.savez(good, score=labels.astype(float))
    np.savez(bad, score=np.append(labels.astype(float), np.nan))
    assert cli.main(["score", "anomaly", str(good)]) == 0
    assert '"auroc": 1.0' in capsys.readouterr().out
    assert cli.main(["score", "anomaly", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "NaN" in err

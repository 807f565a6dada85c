"""The multimodal scorer: probes, retrieval and input validation (FAST-sized galaxies set)."""

import subprocess
import sys

import numpy as np
import pytest
from astrobench import data
from astrobench.metrics import ScoreInputError, multimodal


@pytest.fixture(scope="module")
def truth():
    t = {s: data.load("galaxies", s, fast=True, progress=False).truth for s in ("train", "test")}
    return {s: np.stack([np.asarray(t[s][p], float) for p in multimodal.PROPERTIES], 1) for s in t}


def _pred(train, test):
    return {"image_emb": test, "spectrum_emb": test.copy(),
            "image_emb_train": train, "spectrum_emb_train": train.copy()}


def test_random_embeddings_score_zero_and_chance(truth):
    rng = np.random.default_rng(1)
    n_tr, n_te = len(truth["train"]), len(truth["test"])
    pred = {"image_emb": rng.normal(size=(n_te, 16)), "spectrum_emb": rng.normal(size=(n_te, 16)),
            "image_emb_train": rng.normal(size=(n_tr, 16)), "spectrum_emb_train": rng.normal(size=(n_tr, 16))}
    m = multimodal.score(pred)
    zero_shot = [v for k, v in m.items() if k.startswith("zeroshot_r2")]
    assert len(zero_shot) == 12 and max(abs(v) for v in zero_shot) < 0.1
    assert m["retrieval_n"] == n_te == 200
    assert m["retrieval_chance_top1"] == pytest.approx(1 / 200)
    for k in ("image_to_spectrum", "spectrum_to_image"):
        assert m[f"retrieval_{k}_top1"] <= 0.03  # chance 0.005
        assert m[f"retrieval_{k}_top5"] <= 0.07  # chance 0.025


def test_knn_probe_recovers_a_truth_embedding():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(22000, 4)) * [0.2, 0.4, 1.0, 0.7] + [0.3, 0.8, 20.0, 10.5]
    emb = (y - y[:20000].mean(0)) / y[:20000].std(0)
    assert np.all(multimodal.knn_probe(emb[:20000], y[:20000], emb[20000:], y[20000:]) > 0.98)  # 0.984 measured


def test_standardised_truth_embeddings_score_one(truth):
    mu, sd = truth["train"].mean(0), truth["train"].std(0)
    m = multimodal.score(_pred((truth["train"] - mu) / sd, (truth["test"] - mu) / sd))
    for mod in multimodal.MODALITIES:
        for p in ("z", "g_r", "log_mstar"):
            assert m[f"zeroshot_r2_{p}_{mod}"] > 0.95, (p, mod)
        # 64 neighbours among 800 FAST galaxies cannot follow the sparse bright tail of mag_r (0.79 here;
        # 0.997 with the full 20 000)
        assert m[f"zeroshot_r2_mag_r_{mod}"] > 0.75, mod
    for p in multimodal.PROPERTIES:
        assert m[f"fewshot10pct_r2_{p}_image"] > 0.8, p  # 80 labels suffice when the embedding is the answer
    assert m["retrieval_image_to_spectrum_top1"] == 1.0 and m["retrieval_spectrum_to_image_top5"] == 1.0


def test_supervised_ceiling_fraction(truth):
    z = truth["test"][:, 0]
    pred = _pred(truth["train"], truth["test"]) | {"supervised_z": z + 0.0}
    m = multimodal.score(pred)
    assert m["supervised_r2_z"] == pytest.approx(1.0)
    assert m["zeroshot_fraction_of_supervised_z_image"] == pytest.approx(m["zeroshot_r2_z_image"])


def test_retrieval_ranks():
    keys = np.eye(4)
    query = np.array([[1, 0, 0, 0], [1, 0.9, 0, 0], [0, 0, -1, 1], [0, 0, 0, 1.0]])  # ranks 0, 1, 3, 0
    assert multimodal.retrieval(query, keys, ks=(1, 2)) == {1: 0.5, 2: 0.75}


@pytest.mark.parametrize("mutate, match", [
    (lambda p: p.pop("spectrum_emb"), "missing key 'spectrum_emb'"),
    (lambda p: p.update(image_emb=p["image_emb"][:150]), "150 rows; expected the galaxies test split"),
    (lambda p: p["image_emb_train"].__setitem__((0, 0), np.nan), "NaN"),
    (lambda p: p.update(spectrum_emb=p["spectrum_emb"][:, :3]), "expected D=4"),
    (lambda p: p.update(extra=np.zeros(3)), "unexpected keys"),
    (lambda p: p.update(image_emb_train=np.zeros((20000, 4))), "different mode"),
    (lambda p: p.update(supervised_z=np.zeros(7)), "'supervised_z' has shape"),
])
def test_bad_input_is_a_one_line_error(truth, mutate, match):
    pred = _pred(truth["train"].copy(), truth["test"].copy())
    mutate(pred)
    with pytest.raises(ScoreInputError, match=match) as err:
        multimodal.score(pred)
    assert "\n" not in str(err.value)


def test_cli_exits_2_on_wrong_rows(tmp_path, truth):
    bad = tmp_path / "bad.npz"
    np.savez(bad, **_pred(truth["train"], truth["test"][:100]))
    proc = subprocess.run([sys.executable, "-m", "astrobench.cli", "score", "multimodal", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "expected the galaxies test split" in proc.stderr

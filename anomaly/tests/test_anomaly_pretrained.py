"""anomaly/autoencoder.py --pretrained: the shipped full-run model (anomaly/pretrained/) evaluated on the FAST test
split, and refused in one line when its files or its training data no longer match."""

import json
import sys
from pathlib import Path

import pytest
import torch

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import autoencoder as AE  # noqa: E402

torch.set_num_threads(1)


@pytest.mark.slow
def test_pretrained_fast_evaluation_beats_a_fast_trained_model(tmp_path):
    assert AE.main(["--pretrained", "--fast", "--threads", "1", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "metrics.json").read_text())
    m, cfg = saved["metrics"], saved["config"]
    # measured on galaxies-anomaly v2 (FAST split, 400 images, 16 anomalies): pretrained AUROC 0.802, AUPRC 0.350;
    # FAST-trained 0.814, 0.204. With 16 anomalies only AUPRC separates them (v1's bar, AUROC >= 0.90 and AUPRC >=
    # 0.5, was set on isolated galaxies: the scene sky is harder, see the README)
    assert m["auprc"] >= 0.30 and m["auroc"] >= 0.78 and m["n_test"] == 400
    assert cfg["mode"] == "fast" and cfg["pretrained"].startswith("python anomaly/autoencoder.py")
    assert cfg["widths"] == [16, 32, 64, 64] and cfg["steps_done"] == 9390  # the shipped settings, not FAST's
    assert {"predictions.npz", "topk_gallery.png", "score_hist.png"} <= {p.name for p in tmp_path.iterdir()}

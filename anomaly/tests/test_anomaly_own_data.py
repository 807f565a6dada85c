"""Your own data: arrays registered with `astrobench.data.register_arrays` run through autoencoder.py like a
built-in set (`--dataset NAME`), and the run records their name and hash."""

import json
import sys
from pathlib import Path

from astrobench.sim.anomalies import TYPES
from astrobench.testing import own_data_from

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import autoencoder as AE


def test_registered_arrays_train_and_score(tmp_path, monkeypatch):
    # images (N, 3, 64, 64) in nanomaggies, test truth with is_anomaly/anomaly_type, config with sky_sigma
    name = own_data_from("galaxies-anomaly", "my-survey", 200, 400, monkeypatch, tmp_path)
    out = tmp_path / "run"
    assert AE.main(["--fast", "--epochs", "1", "--dataset", name, "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["dataset"] == name and report["versions"]["dataset"]["name"] == name
    assert report["versions"]["dataset"]["sha256"]  # the registered arrays' manifest hash
    metrics = report["metrics"]
    assert 0.5 < metrics["auroc"] <= 1.0 and set(metrics["recall_per_type"]) == set(TYPES)  # the labels were used

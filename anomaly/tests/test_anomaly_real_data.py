"""The one-variable switch to real data: the baseline runs end to end on `galaxy10-decals` (a small synthetic file
in the real Galaxy10 format, served from 127.0.0.1: the real 2.5 GB file is never contacted), with Galaxy Zoo's
disturbed and merging classes as the labelled anomalies."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import autoencoder as AE  # noqa: E402

pytest.importorskip("h5py")


def test_baseline_runs_on_galaxy10_decals(tmp_path, monkeypatch):
    from astrobench import data, metrics
    from astrobench.testing import local_real_dataset

    monkeypatch.setenv("ASTROBENCH_DATA", str(tmp_path / "cache"))
    out = tmp_path / "out"
    with local_real_dataset("galaxy10-decals", tmp_path / "www", n=80):
        rc = AE.main(["--fast", "--dataset", "galaxy10-decals", "--device", "cpu", "--set", "steps=3",
                      "--out", str(out)])
        assert rc == 0
        test = data.load("galaxy10-decals", "test", fast=True)
        rescored = metrics.score("anomaly", out / "predictions.npz")  # finds the dataset in the predictions
    result = json.loads((out / "metrics.json").read_text())
    assert result["dataset"] == "galaxy10-decals" and result["metrics"]["n_test"] == len(test) == 8
    assert result["metrics"]["n_anomalies"] == int(np.isin(test.truth["label"], [0, 1]).sum())
    assert rescored["auroc"] == result["metrics"]["auroc"]
    sky, gain = AE.noise_model(test.meta)
    assert np.all(sky > 0) and np.all(gain == 0)  # composites: border-estimated sky noise, no Poisson term


def test_a_set_without_anomaly_labels_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from astrobench.testing import local_real_dataset

    monkeypatch.setenv("ASTROBENCH_DATA", str(tmp_path / "cache"))
    with local_real_dataset("galaxy10-sdss", tmp_path / "www", n=20):
        rc = AE.main(["--fast", "--dataset", "galaxy10-sdss", "--device", "cpu", "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # (after the download's progress bar)
    assert err.startswith("autoencoder.py: error: dataset 'galaxy10-sdss' has no anomaly labels")
    assert "galaxy10-decals" in err

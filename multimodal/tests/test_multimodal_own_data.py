"""Your own data: images + spectra (+ the wavelength grid and a redshift column) registered with
`astrobench.data.register_arrays` train and score through contrastive.py like a built-in set."""

import json
import sys
from pathlib import Path

import numpy as np
from astrobench.testing import own_data_from

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import contrastive as c


def test_registered_arrays_train_and_score(tmp_path, monkeypatch):
    name = own_data_from("galaxies", "my-pairs", 300, 100, monkeypatch, tmp_path)
    out = tmp_path / "run"
    assert c.main(["--fast", "--set", "steps=4", "--threads", "1", "--device", "cpu", "--dataset", name,
                   "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["dataset"] == name and report["versions"]["dataset"]["name"] == name
    assert report["metrics"]["retrieval_n"] == 100 and all(np.isfinite(v) for v in report["metrics"].values()
                                                           if isinstance(v, float))

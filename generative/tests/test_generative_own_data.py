"""Your own data: 3 x 64 x 64 images registered with `astrobench.data.register_arrays` (and the per-band
`sky_sigma` the normalisation needs) train and score through diffusion.py like a built-in set."""

import json
import sys
from pathlib import Path

import numpy as np
from astrobench.testing import own_data_from

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import diffusion


def test_registered_arrays_train_and_score(tmp_path, monkeypatch):
    name = own_data_from("galaxies", "my-cutouts", 200, 100, monkeypatch, tmp_path, config_keys=("sky_sigma",))
    out = tmp_path / "run"
    rc = diffusion.main(["--fast", "--device", "cpu", "--threads", "1", "--steps", "3", "--set", "ddim_steps=2",
                         "--dataset", name, "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["dataset"] == name and report["versions"]["dataset"]["name"] == name
    assert report["metrics"]["reference"] == f"{name} test (FAST)" and np.isfinite(report["metrics"]["W_ratio"])

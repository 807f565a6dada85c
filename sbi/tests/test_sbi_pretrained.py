"""sbi/npe.py --pretrained: the shipped full-run NPE of each task (sbi/pretrained/<task>/) evaluated with FAST's
sample counts, the task identity that scripts/ship_pretrained.py records (npe.task_meta), and one-line refusals when
the shipped files or the task's simulator no longer match."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from astrobench.testing import shipped_copy

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import npe  # noqa: E402


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:torch.triangular_solve is deprecated")  # nflows, inside sbi
def test_pretrained_fast_evaluation_beats_a_fast_trained_model(tmp_path):
    assert npe.main(["--pretrained", "--fast", "--task", "lightcurve", "--threads", "1", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "metrics.json").read_text())
    m, cfg = saved["metrics"], saved["config"]
    # measured (FAST counts: 1 000 samples per observation, 200 x 200 calibration): pretrained C2ST 0.773;
    # FAST-trained (10^3 simulations, 20 epochs) 0.977
    assert m["c2st_mean"] <= 0.85 and m["c2st_num_samples"] == 1000 and m["calibration_num_sims"] == 200
    assert cfg["mode"] == "fast" and cfg["pretrained"].startswith("python sbi/npe.py --task lightcurve")
    assert cfg["num_sims"] == 10_000 and cfg["epochs_trained"] == 98  # the shipped model's, not FAST's
    assert {"predictions.npz", "corner_obs0.png", "tarp.png"} <= {p.name for p in tmp_path.iterdir()}
    assert not (tmp_path / "npe.pt").exists()  # nothing was trained


@pytest.mark.parametrize("name", ["lightcurve", "galaxy-profile"])
def test_the_shipped_identity_is_task_meta(name):
    from astrobench import baseline
    from astrobench.sim.sbi_tasks import get_task

    manifest = json.loads((npe.PRETRAINED / name / "manifest.json").read_text())
    assert manifest["dataset"] == baseline.data_identity(npe.task_meta(get_task(name)))
    assert manifest["command"].startswith(f"python sbi/npe.py --task {name} ")


def refused(tmp_path, capsys, words):
    out = tmp_path / "out"
    assert npe.main(["--pretrained", "--fast", "--task", "lightcurve", "--threads", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert not out.exists()


def test_a_model_of_another_simulator_is_refused(tmp_path, monkeypatch, capsys):
    from astrobench.sim.sbi_tasks import lightcurve

    shipped_copy(npe, tmp_path, monkeypatch)
    monkeypatch.setattr(lightcurve.Task, "high", np.array([0.1, 0.2, 0.2, 0.9, 0.7], np.float32))  # a wider prior
    refused(tmp_path, capsys, ("--pretrained", "config_sha256", "regenerate", "python sbi/npe.py --task lightcurve"))

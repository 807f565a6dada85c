"""The model slot: a different, trivial density estimator (a mixture density network on a linear embedding of the
light curve, no CNN, no flow) put in ``build_model``, run through ``main`` end to end and scored with
`astrobench score sbi:lightcurve`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import npe  # noqa: E402


def tiny_model(task, cfg):
    """q(theta | x): a 2-component Gaussian mixture on 8 linear features of x."""
    from sbi.neural_nets import posterior_nn
    from torch import nn

    size = 1
    for n in task.x_shape:
        size *= n
    embedding = nn.Sequential(nn.Flatten(), nn.Linear(size, 8))
    tiny_model.calls += 1
    return posterior_nn(model="mdn", embedding_net=embedding, hidden_features=16, num_components=2)


tiny_model.calls = 0


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:torch.triangular_solve is deprecated")  # nflows, inside sbi
def test_a_trivial_model_in_the_slot_runs_and_scores(tmp_path, monkeypatch, capsys):
    from astrobench import cli
    from astrobench.metrics import sbi as scorer

    monkeypatch.setattr(npe, "build_model", tiny_model)
    # C2ST's classifier costs ~4 s per observation and is the scorer's business (tests/test_sbi_metrics.py): here a
    # cheap stand-in with its range, a function of the samples, so the CLI's score must still equal main's
    monkeypatch.setattr(scorer, "c2st_per_observation", lambda s, r, n: [
        0.5 + 0.5 * float(np.tanh(np.abs(s[i].mean(0) - r[i].mean(0)).sum())) for i in range(len(s))])
    out = tmp_path / "out"
    rc = npe.main(["--fast", "--task", "lightcurve", "--num-sims", "300", "--epochs", "3", "--threads", "1",
                   "--set", "calib_samples=100", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert tiny_model.calls == 1
    report = json.loads((out / "metrics.json").read_text())
    assert report["config"]["epochs_trained"] <= 3 and report["config"]["num_sims"] == 300
    assert report["metrics"]["amortisation_ratio"] > 0 and report["timing"]["train_s"] >= 0
    capsys.readouterr()
    assert cli.main(["score", "sbi:lightcurve", str(out / "predictions.npz")]) == 0
    scored = json.loads(capsys.readouterr().out)  # the CLI's scorer gives the numbers main wrote
    assert scored == report["metrics"]
    assert 0.5 <= report["metrics"]["c2st_mean"] <= 1.0 and len(report["metrics"]["c2st"]) == 10
    assert 0.0 <= report["metrics"]["sbc_ks_pval_min"] <= 1.0 and abs(report["metrics"]["tarp_atc"]) <= 1.0

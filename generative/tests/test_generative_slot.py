"""The model slot: a different model put into ``build_model`` runs the FAST pipeline end to end, and its
predictions.npz is scored by ``astrobench score generative``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from astrobench import cli

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import diffusion  # noqa: E402

torch = pytest.importorskip("torch")


class ConvVelocity(torch.nn.Module):
    """The slot's interface with almost no model: v = a 3 x 3 convolution of y, plus a learned per-level bias."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.level = torch.nn.Embedding(diffusion.T_TRAIN, 3)

    def forward(self, y, t):
        assert y.ndim == 4 and y.shape[1] == 3 and t.shape == (len(y),) and t.dtype == torch.int64
        return self.conv(y) + self.level(t)[:, :, None, None]


def test_a_replacement_model_runs_end_to_end_and_is_scored(tmp_path, monkeypatch, capsys):
    built = []
    monkeypatch.setattr(diffusion, "build_model", lambda cfg: built.append(cfg["resolution"]) or ConvVelocity())
    out = tmp_path / "out"
    rc = diffusion.main(["--fast", "--device", "cpu", "--threads", "1", "--steps", "3", "--set", "ddim_steps=2",
                         "--out", str(out)])
    assert rc == 0 and built == [32]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["config"]["steps_done"] == 3 and saved["config"]["training_finished"]
    model, _ = diffusion.load_model(out / diffusion.CKPT)  # the checkpoint loads back into the slot's model
    assert isinstance(model, ConvVelocity)
    capsys.readouterr()
    assert cli.main(["score", "generative", str(out / "predictions.npz")]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["n_samples"] == 200 and scored["reference"] == "galaxies test (FAST)"
    assert np.isfinite(scored["W_ratio"]) and scored["W_ratio"] > 1  # a convolution is no galaxy generator
    assert scored["W_ratio"] == pytest.approx(saved["metrics"]["W_ratio"], rel=1e-12)

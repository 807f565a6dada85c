"""The model slot: a different model put in `build_model` runs the whole FAST pipeline and is scored by
`astrobench score anomaly`, with nothing else edited."""

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import autoencoder as AE  # noqa: E402


class BlurModel(nn.Module):
    """Reconstruct each image as a learned colour mix of its 4x4-blurred self: smooth galaxies come back, sharp
    artefacts (trails, cosmic rays) do not. Latent: the mean stretched flux per band."""

    def __init__(self):
        super().__init__()
        self.mix = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        u = torch.asinh(x / AE.STRETCH)
        blurred = F.interpolate(F.avg_pool2d(u, 4), scale_factor=4, mode="nearest")
        return u, self.mix(blurred), u.mean(dim=(2, 3))


def test_a_swapped_model_runs_end_to_end_and_is_scored(tmp_path, monkeypatch, capsys):
    from astrobench import cli

    built = []
    monkeypatch.setattr(AE, "build_model", lambda cfg: built.append(cfg) or BlurModel())
    assert AE.main(["--fast", "--epochs", "1", "--out", str(tmp_path)]) == 0
    assert len(built) == 1 and built[0]["epochs"] == 1  # the slot got the run's settings
    saved = json.loads((tmp_path / "metrics.json").read_text())
    state = torch.load(tmp_path / "autoencoder.pt", weights_only=True)
    assert set(state) == {"mix.weight", "mix.bias"}  # the swapped model is what was trained and saved
    capsys.readouterr()
    assert cli.main(["score", "anomaly", str(tmp_path / "predictions.npz")]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored == saved["metrics"] and 0.5 < scored["auroc"] <= 1.0  # better than chance: it sees artefacts

"""The model slot: another model in ``build_model`` runs the FAST pipeline end to end and is scored by the CLI."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from astrobench import cli

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import upsampler  # noqa: E402


class BicubicPlusMix(torch.nn.Module):
    """A trivial super-resolver: bicubic upsampling plus a learned 1x1 mix of the bands (zero at the start)."""

    def __init__(self, channels: int, factor: int):
        super().__init__()
        self.factor = factor
        self.mix = torch.nn.Conv2d(channels, channels, 1)
        torch.nn.init.zeros_(self.mix.weight)
        torch.nn.init.zeros_(self.mix.bias)

    def forward(self, x):  # the slot's interface: normalised LR (B, C, h, w) -> (B, C, 4h, 4w), same units
        up = F.interpolate(x, scale_factor=self.factor, mode="bicubic", align_corners=False)
        return up + self.mix(up)


@pytest.mark.slow
def test_another_model_in_the_slot_runs_and_scores(tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnxruntime")
    built = []

    def build_model(cfg):
        built.append(cfg)
        return BicubicPlusMix(cfg["channels"], cfg["factor"])

    monkeypatch.setattr(upsampler, "build_model", build_model)
    monkeypatch.setattr(upsampler, "EDGE_IMAGES", 4)
    out, onnx = tmp_path / "run", tmp_path / "edge" / "slot.onnx"
    argv = ["--fast", "--dataset", "fields", "--steps", "5", "--threads", "1", "--out", str(out), "--export-onnx",
            str(onnx)]
    assert upsampler.main(argv) == 0
    assert len(built) == 1 and built[0]["channels"] == 1 and built[0]["factor"] == 4
    state = torch.load(out / "model.pt")
    assert set(state) == {"mix.weight", "mix.bias"}  # the slot's model was trained and saved
    assert json.loads(onnx.with_suffix(".onnx.json").read_text())["max_abs_diff_vs_torch"]["sr"] <= 1e-4
    saved = json.loads((out / "metrics.json").read_text())
    capsys.readouterr()
    assert cli.main(["score", "superres:fields", str(out / "predictions.npz")]) == 0
    rescored = json.loads(capsys.readouterr().out)
    assert rescored["psnr"] == pytest.approx(saved["metrics"]["psnr"])
    # bicubic plus a band mix after 5 small steps: finite, and within 1 dB of bicubic
    assert np.isfinite(rescored["psnr"]) and abs(rescored["psnr"] - rescored["psnr_bicubic"]) < 1.0
    assert 0 < rescored["ssim"] <= 1 and abs(rescored["flux_bias"]) < 0.05

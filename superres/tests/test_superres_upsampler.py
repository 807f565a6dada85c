"""The baseline script: model pieces, CLI errors, and an end-to-end FAST run that `astrobench score` reproduces."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from astrobench import cli
from astrobench.metrics import superres as m

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import upsampler  # noqa: E402


def test_untrained_model_is_bicubic_and_shapes_match():
    torch.manual_seed(0)
    model = upsampler.Upsampler(channels=3, width=8, blocks=1)
    lr = np.random.default_rng(0).random((2, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        sr = model(torch.from_numpy(lr)).numpy()
    assert sr.shape == (2, 3, 64, 64)
    assert np.allclose(sr, m.bicubic(lr, 4, extensive=False), atol=1e-5)  # zero-initialised tail


def test_consistency_layer_makes_block_means_equal_lr():
    torch.manual_seed(1)
    model = upsampler.Upsampler(channels=1, width=8, blocks=1, consistent=True)
    torch.nn.init.normal_(model.tail[0].weight)  # a non-trivial correction
    lr = torch.rand(2, 1, 8, 8) + 0.5
    with torch.no_grad():
        sr = model(lr)
    assert torch.allclose(upsampler.block_mean(sr, 4), lr, atol=1e-5)


def test_spectral_loss_and_augment():
    x = torch.randn(4, 1, 32, 32)
    assert float(upsampler.spectral_loss(x, x)) == pytest.approx(0.0, abs=1e-10)
    assert float(upsampler.spectral_loss(0.5 * x, x)) == pytest.approx(np.log(0.25) ** 2, rel=1e-4)
    lr, hr = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 32, 32)
    a, b = upsampler.augment(lr, hr, np.random.default_rng(0), patch=4)
    assert a.shape == (2, 1, 4, 4) and b.shape == (2, 1, 16, 16)


def test_normalise_round_trip():
    rng = np.random.default_rng(3)
    lr, hr = rng.random((3, 3, 16, 16)) * 50, rng.random((3, 3, 64, 64))
    x, y, scale = upsampler.normalise(lr, hr, 4, extensive=True)
    assert np.abs(x).max() == pytest.approx(1.0) and np.allclose(y * scale, hr)


def test_training_is_deterministic_and_follows_the_step_count():
    rng = np.random.default_rng(0)
    hr = rng.random((24, 1, 32, 32)).astype(np.float32) + 0.5
    lr = upsampler.block_mean(torch.from_numpy(hr), 4).numpy()
    cfg = dict(upsampler.FAST, steps=6, width=8, blocks=1, batch=4, dataset="test", factor=4, extensive=False,
               channels=1, consistent=True, patch=4, periodic=True)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = upsampler.build_model(cfg)
        runs.append((upsampler.train(model, lr, hr, cfg, progress=False), upsampler.predict(model, lr[:3], cfg)))
    assert len(runs[0][0]) == 6 and runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])


@pytest.mark.slow
def test_fast_run_end_to_end_and_score_reproduces(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    onnx = tmp_path / "edge" / "fields.onnx"  # --export-onnx (parity in detail: test_superres_onnx.py)
    monkeypatch.setattr(upsampler, "EDGE_IMAGES", 4)
    assert upsampler.main(["--fast", "--dataset", "fields", "--steps", "3", "--threads", "1", "--out", str(out),
                           "--export-onnx", str(onnx)]) == 0
    info = json.loads(onnx.with_suffix(".onnx.json").read_text())
    assert onnx.is_file() and info["max_abs_diff_vs_torch"]["sr"] <= 1e-4 and info["parity_images"] == 4
    saved = json.loads((out / "metrics.json").read_text())
    assert "onnx" not in saved  # metrics.json as without the flag
    assert saved["track"] == "superres" and saved["dataset"] == "superres-fields"
    assert saved["config"]["steps_done"] == 3 and saved["versions"]["dataset"]["sha256"]
    assert saved["config"]["mode"] == "fast" and saved["config"]["threads"] == 1 and not saved["stopped_by_clock"]
    for name in ("predictions.npz", "examples.png", "pk.png", "model.pt", "model_config.json"):
        assert (out / name).is_file()
    model = upsampler.build_model(json.loads((out / "model_config.json").read_text()))  # the README's recipe
    model.load_state_dict(torch.load(out / "model.pt"))
    capsys.readouterr()
    assert cli.main(["score", "superres:superres-fields", str(out / "predictions.npz")]) == 0
    rescored = json.loads(capsys.readouterr().out)
    for key, value in saved["metrics"].items():
        assert rescored[key] == pytest.approx(value), key
    assert abs(saved["metrics"]["flux_bias"]) < 1e-5  # the consistency layer conserves mass exactly

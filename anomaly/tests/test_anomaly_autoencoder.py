"""anomaly/autoencoder.py: shapes, the noise-normalised score, training, the CLI contract."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import autoencoder as AE  # noqa: E402

torch.set_num_threads(1)  # tiny tensors: a second thread only adds waiting on a shared 2-core CPU


def test_model_shapes():
    model = AE.build_model(AE.FAST)
    x = torch.randn(5, 3, 64, 64)
    u, u_hat, z = model(x)
    assert u.shape == u_hat.shape == x.shape and z.shape == (5, AE.FAST["latent"])


def test_chi2_is_one_for_pure_noise_and_scales_with_poisson():
    gen = torch.Generator().manual_seed(0)
    gain = torch.tensor([0.06, 0.04, 0.01])
    truth = torch.zeros(4, 3, 64, 64)
    truth[:, :, 20:44, 20:44] = 500.0  # a bright source: its Poisson noise dominates there
    sigma = torch.sqrt(1 + gain.view(1, 3, 1, 1) * truth)
    x = truth + sigma * torch.randn(truth.shape, generator=gen)
    chi2 = AE.chi2_map(x, truth, gain)
    assert abs(chi2.mean().item() - 1.0) < 0.02
    assert abs(chi2[:, :, 20:44, 20:44].mean().item() - 1.0) < 0.05  # not inflated where it is bright
    u = torch.asinh(x / AE.STRETCH)
    u_true = torch.asinh(truth / AE.STRETCH)
    assert abs(AE.chi2_loss(x, u, u_true, gain).mean().item() - chi2.mean().item()) < 0.1  # first-order agreement


def test_training_reduces_the_loss_deterministically():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    blobs = np.exp(-((xx - 31.5) ** 2 + (yy - 31.5) ** 2) / (2 * rng.uniform(2, 6, (64, 1, 1, 1)) ** 2)) * 50
    x = (blobs + rng.standard_normal((64, 3, 64, 64))).astype(np.float32)
    gain = np.full(3, 0.03, np.float32)
    runs, before, after = [], [], []
    for _ in range(2):
        torch.manual_seed(0)
        model = AE.build_model(AE.FAST)
        before.append(AE.evaluate(model, x, gain)[0].mean())
        runs.append(AE.train(model, x, gain, dict(AE.FAST, epochs=10, batch=16, lr=3e-3), progress=False))
        after.append(AE.evaluate(model, x, gain)[0].mean())
    assert runs[0] == runs[1] and after[0] == after[1]
    assert after[0] < 0.6 * before[0]
    scores, latents, recon, top = AE.evaluate(model, x, gain)
    assert scores.shape == top.shape == (64,) and latents.shape == (64, AE.FAST["latent"]) and recon.shape == x.shape
    assert np.all(top >= scores)  # the worst pixels are worse than the average


def test_iforest_ranks_outliers_first():
    rng = np.random.default_rng(0)
    train = rng.standard_normal((500, 4))
    test = np.vstack([rng.standard_normal((50, 4)), rng.standard_normal((5, 4)) + 6])
    s = AE.iforest_scores(train, test, seed=0)
    assert set(np.argsort(-s)[:5]) == set(range(50, 55))


def test_noise_model_from_meta():
    meta = {"config": {"sky_sigma": [0.0065, 0.011, 0.034], "exposure_zp": 31.0, "image_zp": 22.5}}
    sky, gain = AE.noise_model(meta)
    counts_sigma = sky / 10 ** (-0.4 * 8.5)  # sky sigma in counts = sqrt(sky counts)
    np.testing.assert_allclose(gain, 1 / counts_sigma, rtol=1e-5)


def test_lr_follows_the_step_alone():
    lrs = [AE.lr_at(step, 100, 1e-3, 0.05) for step in range(100)]
    assert lrs[0] == 0 and max(lrs) == pytest.approx(1e-3) and lrs[-1] < 1e-5
    assert lrs == [AE.lr_at(step, 100, 1e-3, 0.05) for step in range(100)]


@pytest.mark.slow
def test_fast_run_is_reproduced_by_astrobench_score(tmp_path, monkeypatch):
    monkeypatch.setattr(AE, "EDGE_IMAGES", 8)
    onnx = tmp_path / "edge" / "anomaly.onnx"  # --export-onnx (parity in detail: test_anomaly_onnx.py)
    # the contract, not the quality (one epoch): notebooks and the faketime test run the real FAST setting
    assert AE.main(["--fast", "--epochs", "1", "--out", str(tmp_path), "--export-onnx", str(onnx)]) == 0
    info = json.loads(onnx.with_suffix(".onnx.json").read_text())
    assert onnx.is_file() and max(info["max_rel_diff_vs_torch"].values()) <= 1e-4
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert "onnx" not in saved  # metrics.json as without the flag
    assert set(saved) >= {"track", "task", "dataset", "metrics", "config", "versions", "seconds", "stopped_by_clock"}
    assert saved["versions"]["dataset"]["sha256"] and (tmp_path / "topk_gallery.png").is_file()
    assert saved["config"]["epochs"] == 1 and saved["config"]["mode"] == "fast" and not saved["stopped_by_clock"]
    cmd = [sys.executable, "-m", "astrobench.cli", "score", "anomaly", str(tmp_path / "predictions.npz")]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == saved["metrics"]
    assert set(saved["metrics"]["compare"]) == {"ae_top_pixels", "iforest_latent", "iforest_pca"}

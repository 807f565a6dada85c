"""The contrastive baseline: augmentations keep the physics, the loss behaves, the CLI contract holds."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import contrastive as c  # noqa: E402

CFG = {"sigma_sky": 0.05, "gain": 0.005, "spec_mean": 4.0, "spec_sd": 1.0}


def test_image_augmentation_is_a_symmetry_of_the_square_and_keeps_photometry():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8)
    y = c.augment_images(x, gen)
    torch.testing.assert_close(y.sum((2, 3)), x.sum((2, 3)))  # band fluxes, hence colours, unchanged
    for i in range(64):
        ref = [x[i].rot90(k, (-2, -1)) for k in range(4)]
        ref += [g.flip(-1) for g in ref]
        assert any(torch.equal(y[i], r) for r in ref)
    assert len({tuple(y[i].flatten()[:4].tolist()) for i in range(64)}) > 1  # not always the identity


def test_spectrum_augmentation_masks_a_bounded_stretch_and_adds_model_noise():
    gen = torch.Generator().manual_seed(0)
    raw = torch.full((500, 512), 2.0)
    x = c.augment_spectra(raw, gen, CFG)
    clean = c.preprocess_spectra(raw, CFG)
    masked = (x == 0).sum(1)
    assert masked.max() <= c.SPEC_MASK_MAX and masked.float().mean() > 0.3 * c.SPEC_MASK_MAX
    keep = x != 0
    noise_flux = torch.sinh(x[keep] * CFG["spec_sd"] + CFG["spec_mean"]) * CFG["sigma_sky"] - 2.0
    sigma = np.sqrt(CFG["sigma_sky"] ** 2 + CFG["gain"] * 2.0)
    assert float(noise_flux.std()) == pytest.approx(c.SPEC_NOISE * sigma, rel=0.05)
    assert torch.allclose(clean, c.preprocess_spectra(raw, CFG))  # input left untouched


def test_infonce_is_symmetric_and_rewards_aligned_pairs():
    torch.manual_seed(0)
    model = c.CLIP(4, 512).eval()
    assert not model.log_scale.requires_grad and float(model.log_scale.exp()) == pytest.approx(c.LOGIT_SCALE)
    emb = torch.nn.functional.normalize(torch.randn(32, c.EMBED_DIM), dim=-1)
    model.embed_image = lambda x: emb
    model.embed_spectrum = lambda s: emb
    aligned = float(model.loss(torch.zeros(32, 1), None))
    model.embed_spectrum = lambda s: emb[torch.randperm(32)]
    shuffled = float(model.loss(torch.zeros(32, 1), None))
    assert aligned < 0.1 < np.log(32) / 2 < shuffled


def test_encoders_shapes_and_normalised_embeddings():
    model = c.CLIP(4, 512).eval()
    with torch.no_grad():
        zi = model.embed_image(torch.randn(5, 3, c.CROP, c.CROP))
        zs = model.embed_spectrum(torch.randn(5, 512))
    assert zi.shape == zs.shape == (5, c.EMBED_DIM)
    torch.testing.assert_close(zi.norm(dim=1), torch.ones(5))


@pytest.mark.slow
def test_short_run_writes_outputs_that_the_scorer_reproduces(tmp_path, monkeypatch):
    """A 1-epoch FAST run through run(): metrics.json equals `astrobench score` on its predictions."""
    monkeypatch.setitem(c.EPOCHS, "fast", 1)
    result = c.run(fast=True, out=tmp_path, seed=0, device="cpu")
    for name in ("metrics.json", "predictions.npz", "clip.png", "clip.pt", "clip.config.json"):
        assert (tmp_path / name).is_file(), name
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["track"] == "multimodal" and on_disk["versions"]["dataset"]["name"] == "galaxies"
    proc = subprocess.run([sys.executable, "-m", "astrobench.cli", "score", "multimodal",
                           str(tmp_path / "predictions.npz")], capture_output=True, text=True, check=True)
    rescored = json.loads(proc.stdout)
    assert rescored.keys() == result["metrics"].keys()
    for k, v in result["metrics"].items():
        assert rescored[k] == pytest.approx(v, abs=1e-9), k


@pytest.mark.parametrize("args, message", [
    (["--device", "tpu"], "invalid choice"),
    (["--dataset", "nope"], "nope"),
    (["--seed", "x"], "invalid int"),
])
def test_cli_bad_input_exits_2_with_one_line(args, message, tmp_path):
    proc = subprocess.run([sys.executable, str(TRACK_DIR / "contrastive.py"), "--fast", "--out", str(tmp_path),
                           *args], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr

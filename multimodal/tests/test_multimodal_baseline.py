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
    aligned = float(model(torch.zeros(32, 1), None))
    model.embed_spectrum = lambda s: emb[torch.randperm(32)]
    shuffled = float(model(torch.zeros(32, 1), None))
    assert aligned < 0.1 < np.log(32) / 2 < shuffled


def test_encoders_shapes_and_normalised_embeddings():
    model = c.CLIP(4, 512).eval()
    with torch.no_grad():
        zi = model.embed_image(torch.randn(5, 3, c.CROP, c.CROP))
        zs = model.embed_spectrum(torch.randn(5, 512))
    assert zi.shape == zs.shape == (5, c.EMBED_DIM)
    torch.testing.assert_close(zi.norm(dim=1), torch.ones(5))


def test_build_model_follows_the_settings():
    model = c.build_model(dict(c.FAST, learn_temperature=True, spec_ssl_weight=0.0), 512)
    assert model.log_scale.requires_grad and model.spec_ssl_weight == 0.0
    assert model.image_encoder[0][0].out_channels == c.FAST["width"]


@pytest.mark.slow
def test_short_run_writes_outputs_that_the_scorer_reproduces(tmp_path, monkeypatch, capsys):
    """A 1-epoch run, FAST through ASTROBENCH_FAST=1 alone: metrics.json equals `astrobench score` on its
    predictions."""
    monkeypatch.setenv("ASTROBENCH_FAST", "1")
    assert c.main(["--out", str(tmp_path), "--epochs", "1", "--threads", "1", "--device", "cpu"]) == 0
    for name in ("metrics.json", "predictions.npz", "clip.png", "clip.pt", "clip.config.json"):
        assert (tmp_path / name).is_file(), name
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["track"] == "multimodal" and on_disk["versions"]["dataset"]["name"] == "galaxies"
    cfg = on_disk["config"]
    assert cfg["mode"] == "fast" and cfg["n_train"] == 800 and cfg["epochs"] == 1 and cfg["threads"] == 1
    assert cfg["steps_done"] == 800 // c.FAST["batch"] and on_disk["stopped_by_clock"] is False
    capsys.readouterr()
    proc = subprocess.run([sys.executable, "-m", "astrobench.cli", "score", "multimodal",
                           str(tmp_path / "predictions.npz")], capture_output=True, text=True, check=True)
    rescored = json.loads(proc.stdout)
    assert rescored.keys() == on_disk["metrics"].keys()
    for k, v in on_disk["metrics"].items():
        assert rescored[k] == pytest.approx(v, abs=1e-9), k


@pytest.mark.parametrize("args, env, message", [
    (["--device", "tpu"], {}, "invalid choice"),
    (["--dataset", "nope"], {}, "nope"),
    (["--seed", "x"], {}, "invalid int"),
    (["--seed", "-1"], {}, "--seed -1"),
    (["--epochs", "0"], {}, "--epochs 0"),
    (["--max-minutes", "0"], {}, "--max-minutes"),
    (["--threads", "0"], {}, "--threads 0"),
    (["--grad-accum", "0"], {}, "--grad-accum 0"),
    (["--mixed-precision", "fp16", "--device", "cpu"], {}, "fp16"),
    (["--set", "nope=1"], {}, "KEY one of"),
    (["--set", "width=wide"], {}, "expected a int"),
    (["--set", "width=0"], {}, "width=0"),
    (["--set", "steps=abc"], {}, "steps='abc'"),
    (["--set", "steps=0"], {}, "steps=0"),
    (["--set", "batch=1"], {}, "batch=1"),
    (["--set", "lr=-1"], {}, "lr=-1"),
    (["--set", "warmup=1.5"], {}, "warmup=1.5"),
    (["--set", "spec_ssl_weight=-1"], {}, "spec_ssl_weight"),
    (["--set", "batch=900"], {}, "more than the 800 training rows"),  # after loading: still nothing written
    ([], {"ASTROBENCH_FAST": "maybe"}, "ASTROBENCH_FAST"),
    ([], {"OMP_NUM_THREADS": "two"}, "OMP_NUM_THREADS"),
])
def test_cli_bad_input_exits_2_with_one_line(args, env, message, tmp_path, monkeypatch, capsys):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "out"
    fast = [] if "ASTROBENCH_FAST" in env else ["--fast"]  # (--fast needs no look at ASTROBENCH_FAST)
    rc = c.main([*fast, "--out", str(out), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("contrastive.py: error: ") and message in err, err
    assert not out.exists()


def test_cli_out_that_is_a_file_exits_2(tmp_path, capsys):
    out = tmp_path / "file"
    out.write_text("")
    assert c.main(["--fast", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "is a file" in err


def test_script_runs_as_a_program_and_exits_2_on_bad_input(tmp_path):
    proc = subprocess.run([sys.executable, str(TRACK_DIR / "contrastive.py"), "--fast", "--out", str(tmp_path / "o"),
                           "--seed", "x"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "invalid int" in proc.stderr

"""The diffusion baseline: exact resume, checkpoint round trip, normalisation, sampling, CLI errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import diffusion  # noqa: E402

torch = pytest.importorskip("torch")
diffusion.set_threads()


def _config(resolution=32):
    return dict(steps=4, batch=4, lr=1e-3, warmup=1, channels=[8, 8], layers=1, ema_decay=0.9, ckpt_every=2,
                seed=0, resolution=resolution, normalisation={"kind": "asinh"})


@pytest.fixture(scope="module")
def tiny_data():
    x, meta = diffusion.load_training_images("galaxies", True, 32, limit=16)
    return x, [float(s) for s in meta["config"]["sky_sigma"]]


def test_resume_reproduces_an_uninterrupted_run(tmp_path, tiny_data):
    x, _ = tiny_data
    cfg = _config()
    full, losses_full, done = diffusion.train(x, cfg, tmp_path / "a", progress=False)
    assert done and len(losses_full) == 4
    _, losses_half, done = diffusion.train(x, cfg, tmp_path / "b", stop_after=2, progress=False)
    assert not done and len(losses_half) == 2
    resumed, losses_resumed, done = diffusion.train(x, cfg, tmp_path / "b", resume=True, progress=False)
    assert done and losses_resumed == losses_full
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    # and the saved training state (raw weights, AdamW moments, EMA, RNG) is identical too
    from safetensors.torch import load_file

    sa, sb = (load_file(tmp_path / d / diffusion.CKPT / "train_state.safetensors") for d in ("a", "b"))
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_differs_from_a_fresh_run_with_a_different_seed(tmp_path, tiny_data):
    x, _ = tiny_data  # guards against a test that passes because training does nothing
    a, _, _ = diffusion.train(x, _config(), tmp_path / "a", progress=False)
    b, _, _ = diffusion.train(x, dict(_config(), seed=1), tmp_path / "b", progress=False)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_checkpoint_loads_and_samples_in_nanomaggies(tmp_path, tiny_data):
    x, sky = tiny_data
    trained, _, _ = diffusion.train(x, _config(), tmp_path, progress=False)
    model, config = diffusion.load_model(tmp_path / diffusion.CKPT)
    assert (tmp_path / diffusion.CKPT / "config.json").is_file()
    assert config["unet"]["sample_size"] == 32 and config["run"]["steps"] == 4
    for p, q in zip(trained.parameters(), model.parameters()):  # the file holds the EMA weights
        assert torch.equal(p, q)
    y_range = (float(x.min()), float(x.max()))
    out = diffusion.sample(model, 5, sky, y_range, ddim_steps=2, batch=3, progress=False)
    assert out.shape == (5, 3, 64, 64) and out.dtype == np.float32 and np.all(np.isfinite(out))
    # outside the 32 x 32 crop: pure sky noise with each band's sigma
    border = out[:, :, :8, :]
    np.testing.assert_allclose(border.std(axis=(0, 2, 3)), sky, rtol=0.15)
    again = diffusion.sample(model, 5, sky, y_range, ddim_steps=2, batch=3, progress=False)
    np.testing.assert_array_equal(out, again)  # seeded


def test_normalisation_round_trip_and_range(tiny_data):
    _, sky = tiny_data
    x = torch.tensor(np.random.default_rng(0).normal(scale=5.0, size=(4, 3, 8, 8)), dtype=torch.float64)
    y = diffusion.normalise(x, sky)
    torch.testing.assert_close(diffusion.denormalise(y, sky), x)
    noise = torch.randn(1000, 3, 8, 8, dtype=torch.float64) * torch.tensor(sky, dtype=torch.float64)[:, None, None]
    assert 0.2 < float(diffusion.normalise(noise, sky).std()) < 0.35  # sky noise ~ unit width / SCALE


def test_64_pixel_model_samples(tmp_path):
    model = diffusion.make_model(64, [8, 8], 1, seed=0).eval()
    out = diffusion.sample(model, 2, [0.01, 0.01, 0.03], (-1.0, 3.0), ddim_steps=1, progress=False)
    assert out.shape == (2, 3, 64, 64) and np.all(np.isfinite(out))


@pytest.mark.parametrize("args, message", [
    (["--resolution", "48"], "invalid choice"),
    (["--steps", "0"], "--steps 0"),
    (["--channels", "12", "16"], "multiples of 8"),
    (["--dataset", "no-such-set", "--fast"], "no-such-set"),
])
def test_cli_errors_exit_2(args, message):
    proc = subprocess.run([sys.executable, str(TRACK_DIR / "diffusion.py"), *args], capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

"""The diffusion baseline: exact resume, checkpoint round trip, normalisation, sampling, the opt-in clock."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import diffusion  # noqa: E402
from astrobench import baseline  # noqa: E402

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny tensors: a second thread only adds waiting on a shared 2-core CPU


def _config(resolution=32):
    return dict(diffusion.FAST, steps=4, batch=4, lr=1e-3, warmup=1, channels=(8, 8), ema_decay=0.9, ckpt_every=2,
                resolution=resolution)


def _run(seed=0):
    return baseline.local_run("cpu", seed=seed)


@pytest.fixture(scope="module")
def tiny_data():
    x, meta = diffusion.load_training_images("galaxies", True, 32, limit=16)
    return x, [float(s) for s in meta["config"]["sky_sigma"]]


def test_resume_reproduces_an_uninterrupted_run(tmp_path, tiny_data):
    x, _ = tiny_data
    cfg = _config()
    full, losses_full, done = diffusion.train(x, cfg, tmp_path / "a", _run(), progress=False)
    assert done and len(losses_full) == 4
    _, losses_half, done = diffusion.train(x, cfg, tmp_path / "b", _run(), stop_after=2, progress=False)
    assert not done and len(losses_half) == 2
    resumed, losses_resumed, done = diffusion.train(x, cfg, tmp_path / "b", _run(), resume=True, progress=False)
    assert done and losses_resumed == losses_full
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    # and the saved training state (raw weights, AdamW moments, EMA, RNG) is identical too
    from safetensors.torch import load_file

    sa, sb = (load_file(tmp_path / d / diffusion.CKPT / "train_state.safetensors") for d in ("a", "b"))
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_refuses_a_checkpoint_with_other_settings(tmp_path, tiny_data):
    x, _ = tiny_data
    diffusion.train(x, _config(), tmp_path, _run(), stop_after=1, progress=False)
    with pytest.raises(baseline.BaselineError, match="trained with steps=4"):
        diffusion.train(x, dict(_config(), steps=6), tmp_path, _run(), resume=True, progress=False)


def test_a_different_seed_trains_a_different_model(tmp_path, tiny_data):
    x, _ = tiny_data  # guards against a resume test that passes because training does nothing
    a, _, _ = diffusion.train(x, _config(), tmp_path / "a", _run(0), progress=False)
    b, _, _ = diffusion.train(x, _config(), tmp_path / "b", _run(1), progress=False)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_checkpoint_loads_and_samples_in_nanomaggies(tmp_path, tiny_data):
    x, sky = tiny_data
    trained, _, _ = diffusion.train(x, _config(), tmp_path, _run(), progress=False)
    model, config = diffusion.load_model(tmp_path / diffusion.CKPT)
    assert config["unet"]["sample_size"] == 32 and config["run"]["steps"] == 4
    for p, q in zip(trained.parameters(), model.parameters()):  # the file holds the EMA weights
        assert torch.equal(p, q)
    y_range = (float(x.min()), float(x.max()))
    out = diffusion.sample(model, 5, sky, y_range, ddim_steps=2, resolution=32, batch=3, progress=False)
    assert out.shape == (5, 3, 64, 64) and out.dtype == np.float32 and np.all(np.isfinite(out))
    # outside the 32 x 32 crop: pure sky noise with each band's sigma
    border = out[:, :, :8, :]
    np.testing.assert_allclose(border.std(axis=(0, 2, 3)), sky, rtol=0.15)
    again = diffusion.sample(model, 5, sky, y_range, ddim_steps=2, resolution=32, batch=3, progress=False)
    np.testing.assert_array_equal(out, again)  # seeded
    # ddim_eta = 1 adds fresh noise at each step: other samples, still seeded
    noisy = diffusion.sample(model, 5, sky, y_range, ddim_steps=2, resolution=32, batch=3, progress=False, eta=1.0)
    assert not np.array_equal(noisy, out)
    np.testing.assert_array_equal(noisy, diffusion.sample(model, 5, sky, y_range, ddim_steps=2, resolution=32,
                                                          batch=3, progress=False, eta=1.0))


def test_normalisation_round_trip_and_range(tiny_data):
    _, sky = tiny_data
    x = torch.tensor(np.random.default_rng(0).normal(scale=5.0, size=(4, 3, 8, 8)), dtype=torch.float64)
    y = diffusion.normalise(x, sky)
    torch.testing.assert_close(diffusion.denormalise(y, sky), x)
    noise = torch.randn(1000, 3, 8, 8, dtype=torch.float64) * torch.tensor(sky, dtype=torch.float64)[:, None, None]
    assert 0.2 < float(diffusion.normalise(noise, sky).std()) < 0.35  # sky noise ~ unit width / SCALE


def test_64_pixel_model_samples():
    torch.manual_seed(0)
    model = diffusion.build_model(dict(diffusion.FAST, resolution=64, channels=(8, 8))).eval()
    out = diffusion.sample(model, 2, [0.01, 0.01, 0.03], (-1.0, 3.0), ddim_steps=1, resolution=64, progress=False)
    assert out.shape == (2, 3, 64, 64) and np.all(np.isfinite(out))


def test_env_selects_fast_and_the_clock_stops_with_a_checkpoint(tmp_path, monkeypatch):
    """ASTROBENCH_FAST=1 without --fast runs FAST; --max-minutes (a tiny value: it fires after the first step)
    checkpoints, samples and scores what it has, and metrics.json says stopped_by_clock."""
    monkeypatch.setenv("ASTROBENCH_FAST", "1")
    out = tmp_path / "out"
    rc = diffusion.main(["--out", str(out), "--device", "cpu", "--threads", "1", "--max-minutes", "1e-9",
                         "--set", "ddim_steps=1"])
    assert rc == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["stopped_by_clock"] is True and result["config"]["mode"] == "fast"
    assert result["config"]["steps_done"] == 1 and not result["config"]["training_finished"]
    assert result["config"]["channels"] == list(diffusion.FAST["channels"]) and result["config"]["n_train"] == 800
    assert result["metrics"]["n_samples"] == diffusion.FAST["samples"] and result["metrics"]["W_ratio"] > 0
    assert json.loads((out / diffusion.CKPT / "train_state.json").read_text())["step"] == 1


def test_stop_after_writes_a_checkpoint_and_no_samples(tmp_path, capsys):
    out = tmp_path / "out"
    rc = diffusion.main(["--fast", "--out", str(out), "--device", "cpu", "--threads", "1", "--stop-after", "2"])
    assert rc == 0 and "continue with --resume" in capsys.readouterr().err
    assert json.loads((out / diffusion.CKPT / "train_state.json").read_text())["step"] == 2
    assert not (out / "predictions.npz").exists() and not (out / "metrics.json").exists()
    # resuming with other settings is refused in one line
    rc = diffusion.main(["--fast", "--out", str(out), "--device", "cpu", "--resume", "--steps", "30"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "steps=20" in err and "Traceback" not in err

"""diffusion.py --pretrained: the shipped full-run EMA model (generative/pretrained/) sampled with FAST's sample and
DDIM-step counts and scored on the FAST test split, and refused in one line when its files or its training data no
longer match."""

import json
import sys
from pathlib import Path

import pytest
import torch

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import diffusion  # noqa: E402

torch.set_num_threads(1)


def run(out, *extra):
    return diffusion.main(["--pretrained", "--fast", "--device", "cpu", "--threads", "1", "--out", str(out), *extra])


@pytest.mark.slow
def test_pretrained_fast_evaluation_beats_a_fast_trained_model(tmp_path):
    assert run(tmp_path) == 0
    saved = json.loads((tmp_path / "metrics.json").read_text())
    m, cfg = saved["metrics"], saved["config"]
    shipped = json.loads((diffusion.PRETRAINED / "config.json").read_text())
    # measured (FAST split, 200 samples, 5 DDIM steps, lower is better): pretrained W_ratio 11.47, W_mean 1.79;
    # FAST-trained (20 steps): W_ratio 27.72, W_mean 4.32
    assert m["W_ratio"] < 14 and m["W_mean"] < 2.2 and m["n_samples"] == 200
    assert cfg["mode"] == "fast" and cfg["pretrained"].startswith("python generative/diffusion.py")
    assert cfg["samples"] == 200 and cfg["ddim_steps"] == 5  # FAST's sampling counts
    assert cfg["channels"] == [16, 32, 32] and cfg["steps_done"] == 3000  # the shipped model's settings, not FAST's
    assert cfg["normalisation"] == shipped["normalisation"]  # its sky sigmas and clamp range
    assert {"predictions.npz", "samples.png", "statistics.png"} <= {p.name for p in tmp_path.iterdir()}
    assert not (tmp_path / diffusion.CKPT).exists()  # nothing was trained


def refused(tmp_path, capsys, words, *extra):
    assert run(tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and all(w in err for w in words), err
    assert not (tmp_path / "out").exists()


def test_a_missing_shipped_model_and_training_flags_are_refused(tmp_path, monkeypatch, capsys):
    refused(tmp_path, capsys, ("--pretrained", "--resume"), "--resume")
    monkeypatch.setattr(diffusion, "PRETRAINED", tmp_path / "nothing")
    refused(tmp_path, capsys, ("--pretrained", "no shipped model"))

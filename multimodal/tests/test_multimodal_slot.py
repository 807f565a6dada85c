"""The model slot: a different, trivial CLIP-like model put in ``build_model`` runs the whole FAST pipeline through
``main`` and its predictions score with ``astrobench score multimodal``."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import contrastive as c  # noqa: E402

DIM = 8


class TinyCLIP(nn.Module):
    """Linear maps of the mean band fluxes and of an 8x-binned spectrum into an 8-d space; CLIP's loss only."""

    def __init__(self, n_wave: int):
        super().__init__()
        self.image, self.spectrum = nn.Linear(3, DIM), nn.Linear(n_wave // 8, DIM)

    def embed_image(self, x):  # (B, 3, CROP, CROP) -> (B, DIM), unit rows
        return F.normalize(self.image(x.mean((2, 3))), dim=-1)

    def embed_spectrum(self, s):  # (B, n_wave) -> (B, DIM), unit rows
        return F.normalize(self.spectrum(F.avg_pool1d(s[:, None], 8)[:, 0]), dim=-1)

    def forward(self, x, s, s2=None):  # the training loss; ignores the second spectrum view
        logits = 10.0 * self.embed_image(x) @ self.embed_spectrum(s).T
        labels = torch.arange(len(logits), device=logits.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


@pytest.mark.slow
def test_a_trivial_model_in_the_slot_runs_end_to_end_and_scores(tmp_path, monkeypatch, capsys):
    from astrobench import cli

    built = []

    def build(cfg, n_wave):
        built.append(TinyCLIP(n_wave))
        return built[-1]

    monkeypatch.setattr(c, "build_model", build)
    out = tmp_path / "out"
    assert c.main(["--fast", "--out", str(out), "--set", "steps=6", "--threads", "1", "--device", "cpu"]) == 0
    assert len(built) == 1  # everything goes through the slot
    pred = np.load(out / "predictions.npz")
    assert pred["image_emb"].shape == (200, DIM) and pred["spectrum_emb_train"].shape == (800, DIM)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["config"]["steps_done"] == 6 and saved["config"]["logit_scale"] is None
    loss = saved["config"]["loss_first_last"]  # mean InfoNCE of the first and last 3 steps
    assert loss["last"] < loss["first"] < np.log(c.FAST["batch"]) + 2  # it learns, from about chance (log B)

    capsys.readouterr()
    assert cli.main(["score", "multimodal", str(out / "predictions.npz")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics == pytest.approx(saved["metrics"], abs=1e-9)
    assert all(np.isfinite(v) for v in metrics.values())
    assert 0 <= metrics["retrieval_image_to_spectrum_top1"] <= 1 and metrics["retrieval_n"] == 200
    # mean band fluxes carry the brightness: even a 6-step linear embedding knows the r magnitude
    assert metrics["zeroshot_r2_mag_r_image"] > 0.3

"""DDP under HF accelerate: two gloo processes on the CPU train the FAST autoencoder for a few steps.

`accelerate launch --cpu --num_processes 2` starts ONE process in accelerate 1.x (its simple launcher only
spawns several CPU processes through mpirun), so the test launches through torchrun with `--multi_gpu`; the
script asks for `cpu=True` (``--device cpu``), which makes accelerate pick gloo DDP (DistributedType.MULTI_CPU).
Slow (~15-25 s on 2 cores: two interpreters import torch); still part of `make test`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from astrobench.testing import run_under_accelerate

TRACK_DIR = Path(__file__).resolve().parents[1]
STEPS = 16  # enough for the trimmed chi^2 to fall clearly below its first steps' (batch-to-batch noise ~0.3)


@pytest.mark.slow
def test_two_process_gloo_ddp_run(tmp_path):
    pytest.importorskip("accelerate")
    out, edge = tmp_path / "out", tmp_path / "edge"
    proc, logs = run_under_accelerate(TRACK_DIR / "autoencoder.py", "--fast", "--device", "cpu", "--set",
                                      f"steps={STEPS}", "--out", str(out), "--export-onnx", str(edge / "anomaly.onnx"),
                                      out=out, log_suffix="_autoencoder")
    # both ranks trained, on different batches of one shared permutation
    first = [set(g["first_indices"]) for g in logs]
    assert len(first[0]) == len(first[1]) == 64 and not first[0] & first[1]
    # one checkpoint, one metrics.json, scoring and the ONNX export once (main process)
    assert sorted(p.name for p in out.iterdir()) == [
        "autoencoder.json",
        "autoencoder.pt",
        "metrics.json",
        "predictions.npz",
        "score_hist.png",
        "shard_rank0_autoencoder.json",
        "shard_rank1_autoencoder.json",
        "topk_gallery.png",
    ]
    assert sorted(p.name for p in edge.iterdir()) == ["anomaly.onnx", "anomaly.onnx.json"]
    assert proc.stdout.count("AUROC") == 1 and proc.stdout.count("ONNX ->") == 1
    result = json.loads((out / "metrics.json").read_text())
    assert result["config"]["processes"] == 2 and result["config"]["steps_done"] == STEPS
    assert set(result["metrics"]["compare"]) == {"ae_top_pixels", "iforest_latent", "iforest_pca"}
    hist = result["config"]["loss_first_last"]  # mean trimmed chi^2 of the first and last 3 steps (rank 0's batches)
    assert hist["last"] < hist["first"]

"""DDP under HF accelerate: two gloo processes on the CPU train the FAST CLIP baseline for a few steps.

`accelerate launch --cpu --num_processes 2` starts ONE process in accelerate 1.x (its simple launcher only
spawns several CPU processes through mpirun), so the test launches through torchrun with `--multi_gpu`; the
script asks for `cpu=True` (``--device cpu``), which makes accelerate pick gloo DDP (DistributedType.MULTI_CPU).
Slow (~40-60 s on 2 cores); still part of `make test`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from astrobench.testing import run_under_accelerate

TRACK_DIR = Path(__file__).resolve().parents[1]
STEPS = 6


@pytest.mark.slow
def test_two_process_gloo_ddp_run(tmp_path):
    pytest.importorskip("accelerate")
    proc, logs = run_under_accelerate(TRACK_DIR / "contrastive.py", "--fast", "--device", "cpu", "--set",
                                      f"steps={STEPS}", "--out", str(tmp_path), out=tmp_path, log_suffix="_CLIP")
    # both ranks trained, on different batches of one shared permutation
    first = [set(g["first_indices"]) for g in logs]
    assert len(first[0]) == len(first[1]) == 100 and not first[0] & first[1]
    # one checkpoint, one metrics.json, metrics computed once
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clip.config.json", "clip.png", "clip.pt", "metrics.json", "predictions.npz", "shard_rank0_CLIP.json",
        "shard_rank0_supervised.json", "shard_rank1_CLIP.json", "shard_rank1_supervised.json"]
    assert proc.stdout.count("zero-shot z R²") == 1
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["config"]["processes"] == 2 and result["config"]["steps_done"] == STEPS
    assert set(result["metrics"]) >= {"retrieval_image_to_spectrum_top1", "zeroshot_r2_z_image"}
    hist = result["config"]["loss_first_last"]  # mean CLIP loss of the first and last 3 steps
    assert hist["last"] < hist["first"]

"""DDP under HF accelerate: two gloo processes on the CPU train the FAST CLIP baseline for a few steps.

`accelerate launch --cpu --num_processes 2` starts ONE process in accelerate 1.x (its simple launcher only
spawns several CPU processes through mpirun), so the test launches through torchrun with `--multi_gpu`; the
script asks for `cpu=True` (``--device cpu``), which makes accelerate pick gloo DDP (DistributedType.MULTI_CPU).
Slow (~40-60 s on 2 cores); still part of `make test`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from astrobench.testing import accelerate_cpu_command

TRACK_DIR = Path(__file__).resolve().parents[1]
STEPS = 6


@pytest.mark.slow
def test_two_process_gloo_ddp_run(tmp_path):
    pytest.importorskip("accelerate")
    cmd = accelerate_cpu_command(TRACK_DIR / "contrastive.py", "--fast", "--device", "cpu", "--max-steps", str(STEPS),
                                 "--out", str(tmp_path))
    env = dict(os.environ, ASTROBENCH_FAST="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # both ranks trained, on different batches of one shared permutation
    logs = [json.loads((tmp_path / f"shard_rank{r}_CLIP.json").read_text()) for r in (0, 1)]
    assert [g["processes"] for g in logs] == [2, 2]
    first = [set(g["first_indices"]) for g in logs]
    assert len(first[0]) == len(first[1]) == 100 and not first[0] & first[1]
    # one checkpoint, one metrics.json, metrics computed once
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clip.config.json", "clip.png", "clip.pt", "metrics.json", "predictions.npz", "shard_rank0_CLIP.json",
        "shard_rank1_CLIP.json"]
    assert proc.stdout.count("wrote ") == 1
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["config"]["processes"] == 2 and result["config"]["steps"] == STEPS
    assert set(result["metrics"]) >= {"retrieval_image_to_spectrum_top1", "zeroshot_r2_z_image"}
    hist = result["config"]["loss_first_last"]  # mean CLIP loss of the first and last 3 steps
    assert hist["last"] < hist["first"]

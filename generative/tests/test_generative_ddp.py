"""DDP under HF accelerate: two gloo processes on the CPU train the FAST diffusion model for a few steps.

`accelerate launch --cpu --num_processes 2` starts ONE process in accelerate 1.x (its simple launcher only
spawns several CPU processes through mpirun), so the test launches through torchrun with `--multi_gpu`; the
script asks for `cpu=True` (``--device cpu``), which makes accelerate pick gloo DDP (DistributedType.MULTI_CPU).
Slow (~40-60 s on 2 cores: two interpreters import torch and diffusers); still part of `make test`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astrobench.testing import run_under_accelerate

TRACK_DIR = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_process_gloo_ddp_run(tmp_path):
    pytest.importorskip("accelerate")
    from safetensors.torch import load_file

    proc, logs = run_under_accelerate(TRACK_DIR / "diffusion.py", "--fast", "--device", "cpu", "--threads", "1",
                                      "--steps", "12", "--set", "ddim_steps=2", "--out", str(tmp_path), out=tmp_path)
    # both ranks trained, each on its own shard of the training images (baseline.shard logs its first rows)
    seen = [set(g["first_indices"]) for g in logs]
    assert all(i % 2 == r for r, s in enumerate(seen) for i in s)  # rank r holds images r, r + 2, ...
    assert not seen[0] & seen[1]
    # one checkpoint, one metrics.json, metrics computed once
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json")) == [
        "checkpoint/config.json", "checkpoint/train_state.json", "metrics.json", "shard_rank0.json",
        "shard_rank1.json"]
    assert proc.stdout.count("W_ratio") == 1
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["config"]["processes"] == 2 and result["config"]["steps_done"] == 12
    assert np.isfinite(result["metrics"]["W_ratio"])
    state = load_file(tmp_path / "checkpoint" / "train_state.safetensors")
    assert state["rng_ranks"].shape[0] == 2  # every rank's random stream, for --resume
    losses = state["losses"].numpy()
    assert len(losses) == 12 and losses[-3:].mean() < losses[:3].mean()  # the loss went down

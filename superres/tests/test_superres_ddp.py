"""DDP under HF accelerate: two gloo processes on the CPU train the FAST upsampler for a few steps.

`accelerate launch --cpu --num_processes 2` starts ONE process in accelerate 1.x (its simple launcher only
spawns several CPU processes through mpirun), so the test launches through torchrun with `--multi_gpu`; the
script asks for `cpu=True` (``--device cpu``), which makes accelerate pick gloo DDP (DistributedType.MULTI_CPU).
Slow (~15-30 s on 2 cores: two interpreters import torch); still part of `make test`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from astrobench.testing import run_under_accelerate

TRACK_DIR = Path(__file__).resolve().parents[1]
STEPS = 10


@pytest.mark.slow
def test_two_process_gloo_ddp_run(tmp_path):
    pytest.importorskip("accelerate")
    proc, logs = run_under_accelerate(TRACK_DIR / "upsampler.py", "--fast", "--device", "cpu", "--steps", str(STEPS),
                                      "--dataset", "superres-galaxies", "--out", str(tmp_path), out=tmp_path)
    # both ranks trained, each on its own shard of the training pairs (baseline.shard logs its first 64 rows)
    seen = [g["first_indices"] for g in logs]
    assert seen == [list(range(0, 128, 2)), list(range(1, 128, 2))]  # rank r holds pairs r, r + 2, ...
    # one checkpoint, one metrics.json, figures and predictions once, metrics computed and printed once
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "examples.png",
        "metrics.json",
        "model.pt",
        "model_config.json",
        "pk.png",
        "predictions.npz",
        "shard_rank0.json",
        "shard_rank1.json",
    ]
    assert proc.stdout.count("PSNR") == 1
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["config"]["processes"] == 2 and result["config"]["steps_done"] == STEPS
    assert {"psnr", "psnr_bicubic", "ssim"} <= set(result["metrics"])
    hist = result["config"]["loss_first_last"]  # mean training loss (rank 0) of the first and last 3 steps
    assert hist["last"] < hist["first"]


def test_scaling_flags(capsys, tmp_path):
    sys.path.insert(0, str(TRACK_DIR))
    import upsampler

    args = upsampler.parser().parse_args(["--grad-accum", "4", "--mixed-precision", "bf16"])
    assert (args.grad_accum, args.mixed_precision) == (4, "bf16")
    default = upsampler.parser().parse_args([])
    assert (default.grad_accum, default.mixed_precision) == (1, None)  # accelerate decides
    out = tmp_path / "out"
    for argv in (["--grad-accum", "0"], ["--mixed-precision", "fp8"]):
        assert upsampler.main([*argv, "--out", str(out)]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists()  # rejected before anything was written

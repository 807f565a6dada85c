"""Two gloo processes under HF accelerate: the simulations are split between them, the main one trains and scores.

`accelerate launch --cpu --num_processes 2` starts ONE process in accelerate 1.x (its simple launcher only
spawns several CPU processes through mpirun), so the test launches through torchrun with `--multi_gpu`; the
script asks for `cpu=True` (``--device cpu``), which makes accelerate pick gloo (DistributedType.MULTI_CPU).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from astrobench.testing import run_under_accelerate

TRACK_DIR = Path(__file__).resolve().parents[1]
SIMS = 400


@pytest.mark.slow
def test_two_process_gloo_run(tmp_path):
    pytest.importorskip("accelerate")
    proc, logs = run_under_accelerate(TRACK_DIR / "npe.py", "--fast", "--task", "lightcurve", "--device", "cpu",
                                      "--num-sims", str(SIMS), "--epochs", "8", "--out", str(tmp_path),
                                      out=tmp_path, log_suffix="_simulate")
    # each rank simulated its own half of the rows; together they cover all of them
    assert [g["first_indices"] for g in logs] == [list(range(SIMS // 2)), list(range(SIMS // 2, SIMS))]
    # one set of weights, one metrics.json, scored once
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["c2st.png", "corner_obs0.png", "metrics.json", "npe.pt", "npe_config.json", "predictions.npz",
                     "sbc_ranks.png", "shard_rank0_simulate.json", "shard_rank1_simulate.json", "tarp.png",
                     "tensorboard"]
    assert proc.stdout.count("C2ST") == 1
    result = json.loads((tmp_path / "metrics.json").read_text())
    config = result["config"]
    assert config["processes"] == 2 and config["num_sims"] == SIMS and config["epochs_trained"] <= 8
    assert 0.5 <= result["metrics"]["c2st_mean"] <= 1.0
    first, last = config["training_loss_first_last"]
    assert last < first


def test_cuda_without_a_gpu_is_a_one_line_error(tmp_path):
    import sys

    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    proc = subprocess.run([sys.executable, str(TRACK_DIR / "npe.py"), "--fast", "--device", "cuda", "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and not (tmp_path / "o").exists()
    assert proc.stderr.strip() == ("npe.py: error: --device cuda: no CUDA GPU visible to torch; "
                                   "expected --device cpu or auto")

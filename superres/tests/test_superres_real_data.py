"""The one-variable switch to real data: the baseline runs end to end on `camels-cmd-mtot` and `galaxy10-decals`
(small synthetic files in the real formats, served from 127.0.0.1: the real hosts are never contacted)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import upsampler  # noqa: E402

pytest.importorskip("h5py")


@pytest.mark.parametrize(("name", "patch", "shape"), [("camels-cmd-mtot", 16, (1, 128, 128)),
                                                      ("galaxy10-decals", None, (3, 64, 64))])
def test_baseline_runs_on_real_pairs(tmp_path, monkeypatch, name, patch, shape):
    from astrobench import metrics
    from astrobench.testing import local_real_dataset

    monkeypatch.setenv("ASTROBENCH_DATA", str(tmp_path / "cache"))
    out = tmp_path / "out"
    with local_real_dataset(name, tmp_path / "www", n=30):
        assert upsampler.main(["--fast", "--dataset", name, "--device", "cpu", "--steps", "3", "--out", str(out)]) == 0
        rescored = metrics.score(f"superres:{name}", out / "predictions.npz")
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["dataset"] == name and saved["metrics"]["psnr"] == rescored["psnr"]
    cfg = saved["config"]
    # LR is HR's exact block mean in both: the model projects onto LR-consistent images
    assert cfg["consistent"] is True and cfg["patch"] == patch and cfg["extensive"] is False
    assert cfg["periodic"] is (name != "camels-cmd-mtot")
    assert np.load(out / "predictions.npz")["sr"].shape[1:] == shape


def test_non_periodic_crops_stay_inside_and_keep_pairs_aligned():
    rng = np.random.default_rng(0)
    y = torch.rand(2, 1, 128, 128, dtype=torch.float64)
    x = torch.nn.functional.avg_pool2d(y, 4)  # LR = block mean of HR
    for _ in range(20):
        xc, yc = upsampler.augment(x, y, rng, patch=16, periodic=False)
        assert xc.shape[-2:] == (16, 16) and yc.shape[-2:] == (64, 64)
        torch.testing.assert_close(xc, torch.nn.functional.avg_pool2d(yc, 4))

"""The one-variable switch to real data: the baseline runs end to end on `galaxy10-decals` (a small synthetic file
in the real Galaxy10 format, served from 127.0.0.1: the real 2.5 GB file is never contacted)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import diffusion  # noqa: E402

pytest.importorskip("h5py")


def test_baseline_runs_on_galaxy10_decals(tmp_path, monkeypatch):
    from astrobench.testing import local_real_dataset

    monkeypatch.setenv("ASTROBENCH_DATA", str(tmp_path / "cache"))
    with local_real_dataset("galaxy10-decals", tmp_path / "www", n=60):
        rc = diffusion.main(["--fast", "--dataset", "galaxy10-decals", "--device", "cpu", "--threads", "1",
                             "--steps", "3", "--set", "samples=8", "--set", "ddim_steps=2",
                             "--out", str(tmp_path / "out")])
    assert rc == 0
    result = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert result["dataset"] == "galaxy10-decals" and result["metrics"]["n_reference"] == 6
    assert result["versions"]["dataset"]["name"] == "galaxy10-decals" and result["versions"]["dataset"]["sha256"]
    sky = result["config"]["normalisation"]["sky_sigma"]  # estimated from the image borders by the adapter
    assert len(sky) == 3 and min(sky) > 0
    assert result["metrics"]["W_ratio"] > 0

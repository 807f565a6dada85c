"""Your own data: HR/LR pairs registered with `astrobench.data.register_arrays` (config: factor, extensive,
channels) train and score through upsampler.py like a built-in set, and `astrobench score superres:NAME` agrees."""

import json
import sys
from pathlib import Path

import pytest
from astrobench import cli
from astrobench.testing import own_data_from

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import upsampler


def test_registered_pairs_train_and_score(tmp_path, monkeypatch, capsys):
    name = own_data_from("superres-galaxies", "my-pairs", 100, 40, monkeypatch, tmp_path)
    out = tmp_path / "run"
    assert upsampler.main(["--fast", "--dataset", name, "--steps", "3", "--threads", "1", "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["dataset"] == name and report["metrics"]["n"] == 40
    capsys.readouterr()
    assert cli.main(["score", f"superres:{name}", str(out / "predictions.npz")]) == 0
    assert json.loads(capsys.readouterr().out)["psnr"] == pytest.approx(report["metrics"]["psnr"], rel=1e-9)

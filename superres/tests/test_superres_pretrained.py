"""--pretrained: the shipped full-run models evaluate on the FAST test split well above a FAST-trained model, and a
changed or stale shipped model is one line, exit 2 (never used silently)."""

import json
import shutil
import sys
from pathlib import Path

import pytest
from astrobench.testing import flip_last_byte, restamp_training_data, shipped_copy

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import upsampler  # noqa: E402

# PSNR gain over bicubic on the FAST test split that the shipped model must reach; a FAST-trained model (250 steps,
# --threads 1, seed 0) gives +6.3 dB on the galaxies (38.84 vs 32.50 dB) and +0.36 dB on the fields (30.60 vs 30.24)
SHIPPED = {"superres-galaxies": 8.0, "superres-fields": 0.42}  # shipped, FAST split: +9.4 (v2 scenes) and +0.47 dB


@pytest.mark.parametrize("dataset", sorted(SHIPPED))
def test_pretrained_fast_evaluation_beats_a_fast_trained_model(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    assert upsampler.main(["--fast", "--pretrained", "--dataset", dataset, "--threads", "1", "--out", str(out)]) == 0
    assert "(pretrained)" in capsys.readouterr().out
    report = json.loads((out / "metrics.json").read_text())
    m, config = report["metrics"], report["config"]
    assert m["psnr"] - m["psnr_bicubic"] >= SHIPPED[dataset], m
    assert m["ssim"] > m["ssim_bicubic"]
    manifest = json.loads((upsampler.PRETRAINED / dataset / "manifest.json").read_text())
    assert config["pretrained"] == manifest["command"] and config["mode"] == "fast"
    shipped = json.loads((upsampler.PRETRAINED / dataset / "config.json").read_text())
    assert (config["width"], config["blocks"]) == (shipped["width"], shipped["blocks"])  # not FAST's settings
    for name in ("predictions.npz", "examples.png", "pk.png"):
        assert (out / name).is_file()


@pytest.mark.parametrize("damage", ["weights", "config", "stale", "missing"])
def test_changed_or_stale_shipped_model_is_one_line_exit_2(damage, tmp_path, monkeypatch, capsys):
    dataset = sorted(SHIPPED)[0]
    folder = shipped_copy(upsampler, tmp_path, monkeypatch) / dataset
    if damage == "weights":
        flip_last_byte(folder / "model.safetensors")
    elif damage == "config":
        (folder / "config.json").write_text((folder / "config.json").read_text().replace('"blocks": ', '"blocks": 1'))
    elif damage == "stale":  # the data generator changed since the model was trained
        restamp_training_data(folder, version="0.0.1")
    else:
        shutil.rmtree(folder)
    out = tmp_path / "out"
    rc = upsampler.main(["--fast", "--pretrained", "--dataset", dataset, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("upsampler.py: error: --pretrained:")
    assert ("regenerate it" in err) if damage == "stale" else True
    assert not out.exists()

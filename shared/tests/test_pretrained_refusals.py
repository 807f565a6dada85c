"""Every baseline's --pretrained refuses a shipped model it cannot trust in one line (exit 2, nothing written): weights
that no longer match the manifest's sha256, a model trained on data or a simulator that has changed since (the line
says how to regenerate it), and no shipped model at all. One parametrised test for all scripts; what each track's
shipped model must score stays in its own tests (<track>/tests/test_*_pretrained.py)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
from astrobench.testing import flip_last_byte, restamp_training_data, shipped_copy

ROOT = Path(__file__).resolve().parents[2]

# script -> (extra flags, the shipped model's folder under PRETRAINED, a changed training identity, command prefix)
CASES = {
    "generative/diffusion.py": (["--device", "cpu"], ".", {"config_sha256": "0" * 64},
                                "python generative/diffusion.py"),
    "sbi/npe.py": (["--task", "lightcurve"], "lightcurve", {"config_sha256": "0" * 64},
                   "python sbi/npe.py --task lightcurve"),
    "multimodal/contrastive.py": ([], ".", {"version": "0.9.0"}, "python multimodal/contrastive.py"),
    "anomaly/autoencoder.py": ([], ".", {"config_sha256": "0" * 64}, "python anomaly/autoencoder.py"),
    "superres/upsampler.py": (["--dataset", "superres-fields"], "superres-fields", {"version": "0.0.1"},
                              "python superres/upsampler.py"),
}


def load(script: str):
    """The script as a module (its own folder on sys.path, as when it runs)."""
    path = ROOT / script
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(f"refusal_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def refused(module, script, tmp_path, capsys, words):
    out = tmp_path / "out"
    extra = CASES[script][0]
    assert module.main(["--pretrained", "--fast", "--threads", "1", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"{Path(script).name}: error: --pretrained"), err
    assert all(w in err for w in words), err
    assert not (out / "metrics.json").exists() and not (out / "predictions.npz").exists()


@pytest.mark.parametrize("script", CASES)
def test_tampered_weights_are_refused(script, tmp_path, monkeypatch, capsys):
    module = load(script)
    folder = shipped_copy(module, tmp_path, monkeypatch) / CASES[script][1]
    flip_last_byte(folder / "model.safetensors")
    refused(module, script, tmp_path, capsys, ("model.safetensors", "sha256"))


@pytest.mark.parametrize("script", CASES)
def test_a_model_trained_on_other_data_is_refused(script, tmp_path, monkeypatch, capsys):
    module = load(script)
    _, sub, identity, command = CASES[script]
    restamp_training_data(shipped_copy(module, tmp_path, monkeypatch) / sub, **identity)
    refused(module, script, tmp_path, capsys, (*identity, "regenerate", command))


@pytest.mark.parametrize("script", CASES)
def test_no_shipped_model_is_refused(script, tmp_path, monkeypatch, capsys):
    module = load(script)
    folder = shipped_copy(module, tmp_path, monkeypatch) / CASES[script][1]
    shutil.rmtree(folder)
    refused(module, script, tmp_path, capsys, ("no shipped model",))

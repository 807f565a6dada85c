"""Every shipped model (<track>/pretrained/**/manifest.json) matches its manifest: the sha256 of each file, a
training data identity, the command that made it; and the shipped models stay small."""

import json
from pathlib import Path

from astrobench.data.cache import sha256_file

ROOT = Path(__file__).resolve().parents[2]
TRACKS = ("generative", "sbi", "multimodal", "anomaly", "superres")


def manifests():
    return sorted(p for t in TRACKS for p in (ROOT / t / "pretrained").rglob("manifest.json"))


def test_shipped_files_match_their_manifests():
    for path in manifests():
        manifest = json.loads(path.read_text())
        for fname, sha in manifest["files"].items():
            assert sha256_file(path.parent / fname) == sha, f"{path.parent / fname} differs from its manifest"
        assert manifest["command"] and {"name", "version", "config_sha256"} <= set(manifest["dataset"])
        assert json.loads((path.parent / "metrics.json").read_text())["stopped_by_clock"] is False


def test_all_shipped_models_fit_in_25_mb():
    total = sum(f.stat().st_size for t in TRACKS for f in (ROOT / t / "pretrained").rglob("*") if f.is_file())
    assert total <= 25e6, f"{total / 1e6:.1f} MB shipped"

"""Deploy at the edge: the ONNX export of the scorer (raw nanomaggies -> score) matches PyTorch under onnxruntime."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")  # torch.onnx's dynamo exporter

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import autoencoder as AE  # noqa: E402
from astrobench.deploy import onnx_session  # noqa: E402

torch.set_num_threads(1)
TOL = 1e-4  # |onnx - torch| <= TOL * max(1, |torch|): absolute for O(1) outputs; chi^2 of an anomaly reaches 1e5,
# where float32 itself only resolves ~1e-2, so beyond 1 the same bound is relative
SKY = np.array([0.0065, 0.011, 0.034], np.float32)  # nanomaggies, as galaxies-anomaly
GAIN = np.array([0.06, 0.037, 0.012], np.float32)


def galaxies_in_nanomaggies(n: int, seed: int = 0) -> np.ndarray:
    """Blobs with sky noise, in raw nanomaggies (what a site has), one with a saturated-star-like spike."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64]
    r2 = (xx - 31.5) ** 2 + (yy - 31.5) ** 2
    blobs = np.exp(-r2 / (2 * rng.uniform(2, 6, (n, 1, 1, 1)) ** 2)) * rng.uniform(5, 200, (n, 1, 1, 1))
    x = blobs + rng.standard_normal((n, 3, 64, 64))
    x[0, :, 10, 10] += 300.0
    return (x * SKY[None, :, None, None]).astype(np.float32)


def close(a, b) -> bool:
    return bool(np.all(np.abs(a - b) <= TOL * np.maximum(np.abs(b), 1.0)))


@pytest.mark.slow
def test_onnx_scorer_matches_torch_and_the_baseline_scoring(tmp_path):
    torch.manual_seed(0)
    model = AE.build_model(AE.FAST).eval()
    images = galaxies_in_nanomaggies(8)
    info = AE.export_onnx(model, tmp_path / "scorer.onnx", SKY, GAIN, images)
    saved = json.loads((tmp_path / "scorer.onnx.json").read_text())
    assert saved["max_abs_diff_vs_torch"] == info["max_abs_diff_vs_torch"]
    assert set(saved["latency_ms_per_image"]) == {"torch", "onnxruntime"} and saved["threads"] == 1

    # The exported graph, on a batch size it was not traced with, against the baseline's own evaluate().
    session = onnx_session(tmp_path / "scorer.onnx", threads=1)
    assert [i.name for i in session.get_inputs()] == ["images"]
    for batch in (images[:1], galaxies_in_nanomaggies(5, seed=1)):
        score, top, recon = session.run(None, {"images": batch})
        s_ref, _, recon_ref, top_ref = AE.evaluate(model, AE.to_sigma(batch, SKY), GAIN)
        assert close(score, s_ref) and close(top, top_ref)
        assert close(recon / SKY[None, :, None, None], recon_ref)  # in sky-sigma units
    assert s_ref.min() > 0 and not np.allclose(s_ref, s_ref[0])  # a real comparison, not of constants


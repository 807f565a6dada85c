"""Deploy at the edge: the ONNX export (raw LR -> SR, normalisation inside) matches PyTorch under onnxruntime."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from astrobench.deploy import onnx_session

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")  # torch.onnx's dynamo exporter

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import upsampler  # noqa: E402


@pytest.mark.slow  # the export itself takes ~5 s
@pytest.mark.parametrize(("channels", "extensive", "consistent"), [(3, True, False), (1, False, True)])
def test_onnx_upsampler_matches_predict(tmp_path, channels, extensive, consistent):
    torch.manual_seed(0)
    model = upsampler.Upsampler(channels, width=8, blocks=1, consistent=consistent)
    torch.nn.init.normal_(model.tail[0].weight, std=0.05)  # a non-trivial correction to bicubic
    cfg = {"dataset": "test", "factor": 4, "extensive": extensive, "channels": channels, "units": None}
    rng = np.random.default_rng(0)
    lr = (rng.random((4, channels, 16, 16)) * rng.uniform(1e-3, 50, (4, 1, 1, 1))).astype(np.float32)
    info = upsampler.export_onnx(model, tmp_path / "sr.onnx", cfg, lr)
    assert info["max_abs_diff_vs_torch"]["sr"] <= 1e-4 and info["max_rel_diff_vs_torch"]["sr"] <= 1e-4
    saved = json.loads((tmp_path / "sr.onnx.json").read_text())
    assert saved == json.loads(json.dumps(info)) and saved["latency_ms_per_image"]["onnxruntime"] > 0
    assert set(saved["input"]) == {"lr"} and set(saved["outputs"]) == {"sr"} and saved["factor"] == 4

    # Other batch sizes and LR sizes than the traced ones, against the baseline's predict() (numpy normalisation).
    session = onnx_session(tmp_path / "sr.onnx", threads=1)
    for x in (lr[:1], (rng.random((3, channels, 12, 20)) * 7).astype(np.float32)):
        sr = session.run(None, {"lr": x})[0]
        ref = upsampler.predict(model, x, cfg)
        assert sr.shape == ref.shape == (len(x), channels, 4 * x.shape[2], 4 * x.shape[3])
        assert np.max(np.abs(sr - ref)) <= 1e-4
        assert not np.allclose(ref, upsampler.predict(upsampler.Upsampler(channels, 8, 1), x, cfg), atol=1e-3)


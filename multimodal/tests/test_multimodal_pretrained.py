"""multimodal/contrastive.py --pretrained: the shipped full-run CLIP (multimodal/pretrained/) evaluated on the FAST
split, and refused in one line when its files or its training data no longer match."""

import json
import sys
from pathlib import Path

import pytest
import torch

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import contrastive as c  # noqa: E402

torch.set_num_threads(1)


@pytest.mark.slow
def test_pretrained_fast_evaluation_beats_a_fast_trained_model(tmp_path):
    assert c.main(["--pretrained", "--fast", "--threads", "1", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "metrics.json").read_text())
    m, cfg = saved["metrics"], saved["config"]
    shipped = json.loads((c.PRETRAINED / "config.json").read_text())
    # measured (FAST split: 800 train / 200 test galaxies; seed 0): retrieval top-1 image->spectrum 0.605 pretrained vs
    # 0.140 FAST-trained (top-5 0.955 vs 0.455), zero-shot z R² image 0.362 vs 0.311. The spectrum's 64-NN z probe
    # is lower (0.420 vs 0.638): 800 train neighbours are too few for the full model's finer embedding (README)
    assert m["retrieval_image_to_spectrum_top1"] >= 0.45 and m["retrieval_spectrum_to_image_top1"] >= 0.45
    assert m["retrieval_image_to_spectrum_top5"] >= 0.85 and m["zeroshot_r2_z_image"] >= 0.3
    assert m["zeroshot_r2_z_spectrum"] >= 0.3 and m["zeroshot_r2_g_r_image"] >= 0.7
    assert "supervised_r2_z" not in m and "not shipped" in cfg["supervised_ceiling"]  # no ceiling: not shipped
    assert cfg["mode"] == "fast" and cfg["n_test"] == 200 and cfg["pretrained"].startswith(
        "python multimodal/contrastive.py")
    # the shipped settings and the shipped spectrum standardisation, not FAST's
    assert cfg["width"] == shipped["width"] == c.FULL["width"] and cfg["steps_done"] == shipped["steps_done"]
    assert cfg["preprocess"] == shipped["preprocess"]
    assert {"predictions.npz", "clip.png"} <= {p.name for p in tmp_path.iterdir()}

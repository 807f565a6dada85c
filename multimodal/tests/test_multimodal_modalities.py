"""contrastive.py --modalities: the flag's one-line errors, the tri-modal loss, the shipped model's names, and tiny
runs on a registered numpy stand-in of galaxies-multi (the real FAST set takes ~30 s to generate) whose metrics.json
equals `astrobench score multimodal:<it>` of its predictions. The FAST galaxies-multi run and its faketime check are
in multimodal/RESULTS.md; the faketime test (shared/tests/test_baselines_contract.py) runs the default path."""

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from astrobench import cli, data
from astrobench.data.specs import SimulatedSpec
from astrobench.sim.galaxies_multi import MORPHOLOGY

TRACK_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRACK_DIR))
import contrastive as c  # noqa: E402

NAME, BARE = "test-multi-tiny", "test-multi-nospace"
SIZES = {"full": {"train": 400, "test": 200}, "fast": {"train": 96, "test": 48}}
TINY = ["--fast", "--set", "steps=2", "--set", "batch=32", "--set", "width=4", "--threads", "1", "--device", "cpu"]


def _generate(sizes, seed, progress=True, space=True):
    """Noise images and spectra with galaxies-multi's arrays (shapes, dtypes) and truth columns."""
    rng = np.random.default_rng(seed)
    for split, n in sizes.items():
        t = {"id": np.arange(n), "z": rng.uniform(0, 1, n), "g_r": rng.normal(0.8, 0.3, n),
             "mag_r": rng.uniform(16, 21, n), "log_mstar": rng.normal(10, 0.5, n)}
        t.update({q: rng.integers(0, k, n).astype(np.int8) for q, (k, _) in MORPHOLOGY.items()})
        arrays = {"images": rng.normal(0, 0.01, (n, 3, 64, 64)).astype(np.float16),
                  "spectra": rng.normal(0, 0.05, (n, 512)).astype(np.float32)}
        if space:
            arrays["space"] = rng.normal(0, 0.002, (n, 1, 84, 84)).astype(np.float16)
        yield split, {**arrays, "truth": t}


def _config():
    return {"sky_sigma": [0.0066, 0.0097, 0.030], "spectrum": {"sigma_sky": 0.05, "gain": 0.005},
            "space": {"sky_sigma_nmgy": 0.0019}}


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("ASTROBENCH_DATA", str(tmp_path_factory.mktemp("cache")))
    for name, space in ((NAME, True), (BARE, False)):
        data.register(SimulatedSpec(name=name, version="1", description="numpy stand-in", tracks=("multimodal",),
                                    sizes=SIZES, config=_config,
                                    generate=lambda s, seed, progress=True, sp=space: _generate(s, seed, progress, sp)))
    yield
    for name in (NAME, BARE):
        data.unregister(name)
    mp.undo()


@pytest.mark.parametrize("argv, message", [
    (["--modalities", "ground,radio"], "unknown name 'radio'"),
    (["--modalities", "ground"], "expected at least 2 distinct names"),
    (["--modalities", "ground,ground"], "expected at least 2 distinct names"),
    (["--modalities", "space,spectrum"], "ground among them"),
    (["--modalities", "ground,space,spectrum", "--pretrained"], "--pretrained: expected ground,spectrum"),
    (["--modalities", "ground,space", "--dataset", BARE], f"dataset {BARE!r} has no space images"),
])
def test_bad_modalities_exit_2_with_one_line(sets, argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert c.main([*TINY, "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("contrastive.py: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_default_model_keeps_the_shipped_names_and_space_adds_its_own():
    from safetensors import safe_open

    with safe_open(str(c.PRETRAINED / "model.safetensors"), "pt") as f:
        shipped = set(f.keys())
    assert set(c.CLIP(c.FULL["width"], 512).state_dict()) == shipped
    tri = set(c.build_model(dict(c.FAST, modalities=("ground", "space", "spectrum")), 512).state_dict())
    assert {k.split(".")[0] for k in tri - shipped} == {"space_encoder", "space_head"}


def test_tri_modal_loss_averages_the_three_pairs_plus_the_spectrum_views():
    torch.manual_seed(0)
    model = c.CLIP(4, 512, modalities=("ground", "space", "spectrum")).eval()
    emb = {m: torch.nn.functional.normalize(torch.randn(16, c.EMBED_DIM), dim=-1) for m in "gps2"}
    model.embed_image, model.embed_space = (lambda x: emb["g"]), (lambda x: emb["p"])
    model.embed_spectrum = lambda s: emb["s"] if s == "view1" else emb["2"]
    scale = model.log_scale.exp()
    pairs = [c.info_nce(a, b, scale) for a, b in itertools.combinations([emb["g"], emb["p"], emb["s"]], 2)]
    expected = sum(pairs) / 3 + c.info_nce(emb["s"], emb["2"], scale)
    torch.testing.assert_close(model(None, "view1", "view2", space=None), expected)
    x = torch.randn(3, 1, c.SPACE_CROP, c.SPACE_CROP)
    assert c.CLIP(4, 512, modalities=("ground", "space")).embed_space(x).shape == (3, c.EMBED_DIM)


@pytest.mark.parametrize("modalities", ["ground,space,spectrum", "ground,space"])
def test_tiny_instrument_run_scores_as_the_scorer_does(sets, modalities, tmp_path):
    out = tmp_path / "out"
    assert c.main([*TINY, "--out", str(out), "--dataset", NAME, "--modalities", modalities]) == 0
    mods = modalities.split(",")
    pred = np.load(out / "predictions.npz")
    keys = {f"{m}_emb{s}" for m in mods for s in ("", "_train")}
    assert set(pred.files) - {"made_on"} == keys
    assert pred["space_emb"].shape == (48, c.EMBED_DIM) and pred["ground_emb_train"].shape == (96, c.EMBED_DIM)
    assert set(json.loads(str(pred["made_on"]))["inputs"]) == {c.MODALITIES[m][0] for m in mods}
    report = json.loads((out / "metrics.json").read_text())
    assert report["config"]["modalities"] == mods and report["config"]["steps_done"] == 2
    assert "supervised_r2_z" not in report["metrics"] and "morph_mean_auroc_ground" in report["metrics"]
    assert ("retrieval_space_to_spectrum_top1" in report["metrics"]) == ("spectrum" in mods)
    assert cli.main(["score", f"multimodal:{NAME}", str(out / "predictions.npz"), "--json", str(tmp_path / "s.json")]
                    ) == 0  # the command's code path, in this process (the stand-in is registered here)
    rescored = json.loads((tmp_path / "s.json").read_text())
    assert rescored.keys() == report["metrics"].keys()
    for k, v in report["metrics"].items():
        assert rescored[k] == pytest.approx(v, abs=1e-12, nan_ok=True), k

"""The instrument scorer (multimodal:galaxies-multi): morphology probes, cross-instrument retrieval and its one-line
errors, on a registered numpy-only stand-in with the same truth columns (the real set takes minutes to render)."""

import numpy as np
import pytest
from astrobench import data, metrics
from astrobench.data.specs import SimulatedSpec
from astrobench.metrics import ScoreInputError, multimodal
from astrobench.sim.galaxies_multi import MORPHOLOGY

NAME, BARE = "test-instruments", "test-instruments-bare"
SIZES = {"full": {"train": 1500, "test": 1000}, "fast": {"train": 600, "test": 300}}


def _generate(sizes, seed, progress=True, morphology=True):
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in sizes.items():
        t = {"id": np.arange(n), "z": rng.uniform(0, 1, n), "g_r": rng.normal(0.8, 0.3, n),
             "mag_r": rng.uniform(16, 21, n), "log_mstar": rng.normal(10, 0.5, n)}
        if morphology:
            for q, (k, _) in MORPHOLOGY.items():
                t[q] = rng.integers(0, k, n).astype(np.int8)
            t["gz_arms_tight"][t["gz_spiral"] != 1] = -1  # asked of spirals only
            t["gz_edge_on"][rng.uniform(size=n) < 0.8] = 0  # a rare answer
        out[split] = {"images": np.zeros((n, 1), np.float32), "truth": t}
    return out


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("ASTROBENCH_DATA", str(tmp_path_factory.mktemp("cache")))
    for name, morph in ((NAME, True), (BARE, False)):
        data.register(SimulatedSpec(name=name, version="1", description="numpy stand-in", tracks=("multimodal",),
                                    sizes=SIZES, config=dict,
                                    generate=lambda s, seed, progress=True, m=morph: _generate(s, seed, progress, m)))
    truth = {s: data.load(NAME, s, fast=True, progress=False).truth for s in ("train", "test")}
    yield truth
    for name in (NAME, BARE):
        data.unregister(name)
    mp.undo()


def _answers(t) -> np.ndarray:
    """A perfect embedding: each question's answer one-hot, scaled apart, plus redshift."""
    cols = [np.asarray(t["z"], float)[:, None]]
    for q, (k, _) in MORPHOLOGY.items():
        a = np.asarray(t[q])
        cols.append(5.0 * (a[:, None] == np.arange(-1, k)[None, :]))
    emb = np.hstack(cols)
    return emb + np.random.default_rng(len(emb)).normal(0, 0.05, emb.shape)  # no exact ties (slow k-NN trees)


def _pred(train, test, modalities=("ground", "space", "spectrum")):
    return {f"{m}_emb{s}": (train if s else test).copy() for m in modalities for s in ("", "_train")}


def test_perfect_embeddings_answer_every_question_and_find_their_partner(sets):
    m = metrics.score(f"multimodal:{NAME}", _pred(_answers(sets["train"]), _answers(sets["test"])))
    for q, (k, _) in MORPHOLOGY.items():
        for mod in ("ground", "space", "spectrum"):
            assert m[f"morph_acc_{q}_{mod}"] > 0.95, (q, mod)
            if k == 2:
                assert m[f"morph_auroc_{q}_{mod}"] > 0.95, (q, mod)
        assert m[f"morph_majority_{q}"] < 0.95
    assert m["morph_mean_auroc_space"] > 0.95
    assert abs(m["morph_mean_auroc_photometry"] - 0.5) < 0.1  # the stand-in's answers ignore its photometry
    assert m["retrieval_n"] == 300 and "zeroshot_r2_z_spectrum" in m
    assert m["retrieval_ground_to_space_top1"] == 1.0  # the same rows


def test_random_embeddings_are_at_chance(sets):
    rng = np.random.default_rng(1)
    pred = {f"{mod}_emb{s}": rng.normal(size=(600 if s else 300, 8)) for mod in ("ground", "space")
            for s in ("", "_train")}
    m = multimodal.score(pred, NAME)
    assert "retrieval_ground_to_spectrum_top1" not in m  # spectrum is optional
    assert m["retrieval_ground_to_space_top1"] < 0.02 and m["retrieval_chance_top5"] == pytest.approx(5 / 300)
    for q, (k, _) in MORPHOLOGY.items():
        if k == 2:
            assert abs(m[f"morph_auroc_{q}_ground"] - 0.5) < 0.15, q
        assert m[f"morph_acc_{q}_space"] < m[f"morph_majority_{q}"] + 0.1, q


@pytest.mark.parametrize("mutate, match", [
    (lambda p: [p.pop(k) for k in ("space_emb", "space_emb_train")], "missing modality 'space'"),
    (lambda p: p.pop("ground_emb_train"), "missing key 'ground_emb_train'"),
    (lambda p: p.update(radio_emb=p["ground_emb"]), "unknown modality 'radio'"),
    (lambda p: p.update(space_emb=p["space_emb"][:, 0]), "'space_emb' has 1 dims"),
    (lambda p: p.update(space_emb=p["space_emb"][:100]), "100 rows; expected the test-instruments test split"),
    (lambda p: p.update(space_emb_train=p["space_emb_train"][:, :3]), "expected D="),
    (lambda p: p.update(spectrum_emb=p["spectrum_emb"][:, :3], spectrum_emb_train=p["spectrum_emb_train"][:, :3]),
     "one shared width for retrieval"),
    (lambda p: p.update(ground_emb=np.full_like(p["ground_emb"], np.nan)), "NaN"),
])
def test_bad_input_is_a_one_line_error(sets, mutate, match):
    pred = _pred(np.ones((600, 4)), np.ones((300, 4)))
    mutate(pred)
    with pytest.raises(ScoreInputError, match=match) as err:
        multimodal.score(pred, NAME)
    assert "\n" not in str(err.value)


def test_a_dataset_without_morphology_truth_is_refused(sets):
    with pytest.raises(ScoreInputError, match="no morphology truth"):
        multimodal.score(_pred(np.ones((600, 4)), np.ones((300, 4))), BARE)


def test_routing_keeps_the_image_spectrum_task():
    assert multimodal._instruments_wanted({"ground_emb": 0}, "galaxies")
    assert multimodal._instruments_wanted({"radio_emb": 0}, "galaxies-multi")  # then: unknown modality
    assert not multimodal._instruments_wanted({"image_emb": 0, "spectrum_emb": 0}, "galaxies-multi")
    assert not multimodal._instruments_wanted({"image_emb": 0, "radio_emb": 0}, "galaxies")

"""Multimodal track: how much physics do image and spectrum embeddings carry, and do they align?

Predictions (``astrobench score multimodal PRED.npz``) hold embeddings of the ``galaxies`` set:

=====================  ==============  =====================================================
key                    shape           meaning
=====================  ==============  =====================================================
``image_emb``          (N_test, D)     image embeddings of the test split, in row order
``spectrum_emb``       (N_test, D)     spectrum embeddings of the test split (same D: a shared space)
``image_emb_train``    (N_train, D)    image embeddings of the train split (the probes are fit on these)
``spectrum_emb_train`` (N_train, D)    spectrum embeddings of the train split
``supervised_z``       (N_test,)       optional: redshift predicted by a supervised model (the ceiling)
=====================  ==============  =====================================================

N is 2000 / 20000 (full) or 200 / 800 (FAST). Metrics, all on the held-out test split:

- ``zeroshot_r2_<prop>_<modality>``: AstroCLIP's zero-shot probe,
  ``KNeighborsRegressor(n_neighbors=64, weights="distance")`` on standardised embeddings fit on train,
  R² for ``z``, ``g_r``, ``mag_r``, ``log_mstar`` from ``image``, ``spectrum`` and ``both`` (concatenated).
- ``fewshot<pct>_r2_<prop>_<modality>``: an MLP probe trained on 1 % and 10 % of the train labels
  (a fixed random subset, the same for every modality).
- ``retrieval_{image_to_spectrum,spectrum_to_image}_top{1,5}``: cross-modal retrieval by cosine similarity
  among the first 1000 test galaxies (the whole 200-galaxy test split in FAST mode; chance is
  ``retrieval_chance_top1`` = 1/n and ``retrieval_chance_top5`` = 5/n).
- with ``supervised_z``: ``supervised_r2_z`` and ``zeroshot_fraction_of_supervised_z_image``, the image
  zero-shot R² as a fraction of the supervised one.

**Instruments** (``astrobench score multimodal:galaxies-multi PRED.npz``): the same sky seen from the ground
(DECam g, r, z) and from space (Euclid VIS), plus the spectrum. Predictions hold ``<m>_emb`` (N_test, D_m) and
``<m>_emb_train`` (N_train, D_m) for the modalities ``m`` in ``INSTRUMENTS`` (ground and space required, spectrum
optional; each its own width D_m, except that retrieval needs equal widths). N is 2000 / 10000 (full) or
100 / 200 (FAST). Metrics, on the test split:

- ``zeroshot_r2_<prop>_<m>``: the zero-shot probe above, per modality;
- ``morph_acc_<question>_<m>`` and, for yes/no questions, ``morph_auroc_<question>_<m>``: a morphology probe,
  ``KNeighborsClassifier(n_neighbors=64, weights="distance")`` on standardised embeddings fit on train, for each
  Galaxy-Zoo-like question of the truth (``astrobench.sim.galaxies_multi.MORPHOLOGY``; rows a question does not
  ask, -1, are left out of its fit and score); AUROC is the number to read for rare answers (edge-on, clumpy,
  close neighbour); ``morph_mean_auroc_<m>`` averages the yes/no questions; ``morph_majority_<question>`` is the
  accuracy of always answering the train split's commonest answer; ``morph_{acc,auroc}_<question>_photometry``
  (and ``morph_mean_auroc_photometry``) is the same probe on the true z, g-r, mag_r and stellar mass: in the
  simulator arms and knots are likelier in blue, low-redshift galaxies, so colour alone answers part of each
  question, and an embedding's morphology is what it adds above that floor;
- ``retrieval_<a>_to_<b>_top{1,5}``: cross-instrument (ground <-> space) and, with the spectrum, image <->
  spectrum retrieval by cosine similarity among the first 1000 test galaxies (all 100 in FAST).
"""

from __future__ import annotations

import warnings

import numpy as np

from . import ScoreInputError, require, split_mode

DATASET = "galaxies"
PROPERTIES = ("z", "g_r", "mag_r", "log_mstar")
MODALITIES = ("image", "spectrum", "both")
KNN_NEIGHBORS = 64  # AstroCLIP's zero-shot probe
FEW_SHOT_FRACTIONS = (0.01, 0.10)
RETRIEVAL_N = 1000
TASKS = ("embeddings",)
KEYS = ("image_emb", "spectrum_emb", "image_emb_train", "spectrum_emb_train")


def _standardise(train: np.ndarray, test: np.ndarray):
    mu, sd = train.mean(0), train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return (train - mu) / sd, (test - mu) / sd


def _r2(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """R² per column (sklearn's r2_score with multioutput='raw_values')."""
    from sklearn.metrics import r2_score

    return np.atleast_1d(r2_score(y_true, y_pred, multioutput="raw_values"))


def knn_predict(x_train, y_train, x_test) -> np.ndarray:
    """The zero-shot probe's prediction per test row (the leaderboard resamples these rows for its intervals)."""
    from sklearn.neighbors import KNeighborsRegressor

    x_train, x_test = _standardise(np.asarray(x_train, np.float64), np.asarray(x_test, np.float64))
    knn = KNeighborsRegressor(n_neighbors=min(KNN_NEIGHBORS, len(x_train)), weights="distance")
    knn.fit(x_train, y_train)
    return knn.predict(x_test)


def knn_probe(x_train, y_train, x_test, y_test) -> np.ndarray:
    """Zero-shot probe: distance-weighted 64-NN regression on standardised embeddings; R² per target."""
    return _r2(y_test, knn_predict(x_train, y_train, x_test))


def mlp_probe(x_train, y_train, x_test, y_test, seed: int = 0) -> np.ndarray:
    """Few-shot probe: a one-hidden-layer MLP on standardised embeddings and targets; R² per target."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    x_train, x_test = _standardise(np.asarray(x_train, np.float64), np.asarray(x_test, np.float64))
    y_mu, y_sd = y_train.mean(0), np.where(y_train.std(0) > 0, y_train.std(0), 1.0)
    mlp = MLPRegressor(hidden_layer_sizes=(128,), alpha=1e-2, learning_rate_init=1e-3, max_iter=300,
                       random_state=seed)
    with warnings.catch_warnings():  # a fixed iteration budget is the protocol, not a failure to report
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(x_train, (y_train - y_mu) / y_sd)
    pred = mlp.predict(x_test).reshape(len(x_test), -1) * y_sd + y_mu
    return _r2(y_test, pred)


def retrieval_ranks(query: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per query, the rank of its true partner (same row): the number of keys strictly more similar by cosine."""
    q = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    k = keys / np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-12)
    sim = q @ k.T
    return (sim > np.diag(sim)[:, None]).sum(1)


def retrieval(query: np.ndarray, keys: np.ndarray, ks=(1, 5)) -> dict:
    """Fraction of queries whose true partner (same row) is among the top-k keys by cosine similarity."""
    rank = retrieval_ranks(query, keys)
    return {kk: float(np.mean(rank < kk)) for kk in ks}


def _truth(dataset: str, fast: bool, split: str) -> tuple[np.ndarray, tuple]:
    """(rows x properties, the PROPERTIES this dataset's truth has): a team's own data may carry only z."""
    from .. import data

    t = data.load(dataset, split, fast=fast, progress=False).truth
    props = tuple(p for p in PROPERTIES if p in t.colnames)
    if "z" not in props:
        raise ScoreInputError(f"dataset {dataset!r}: its truth has no 'z' column; expected z (and any of "
                              f"{', '.join(PROPERTIES[1:])})")
    return np.stack([np.asarray(t[p], np.float64) for p in props], axis=1), props


def _dataset(task: str | None) -> str:
    """The test set to score against: the kit's ``galaxies``, or a registered dataset named as the task."""
    if task in (None, *TASKS):
        return DATASET
    from ..data import registry

    if task in registry.all_specs():
        return task
    raise ScoreInputError(f"unknown task {task!r} for multimodal; expected one of: {', '.join(TASKS)}, or a "
                          "registered dataset with images and spectra")


def validate(pred: dict, dataset: str = DATASET) -> tuple:
    """Check keys, shapes, dtypes and split sizes; return (arrays, fast)."""
    unknown = sorted(set(pred) - {*KEYS, "supervised_z"})
    if unknown:
        raise ScoreInputError(f"unexpected keys {unknown}; expected {', '.join(KEYS)} and optionally supervised_z")
    arrays = {k: require(pred, k, ndim=2, kind="f") for k in KEYS}
    dim = arrays["image_emb"].shape[1]
    for k, a in arrays.items():
        if a.shape[1] != dim:
            raise ScoreInputError(f"{k!r} has {a.shape[1]} columns; expected D={dim} like 'image_emb' "
                                  "(both modalities share one embedding space)")
    fast = split_mode(len(arrays["image_emb"]), dataset, "test")
    for k in KEYS:
        split = "train" if k.endswith("_train") else "test"
        if split_mode(len(arrays[k]), dataset, split) != fast:
            raise ScoreInputError(f"{k!r} has {len(arrays[k])} rows, from a different mode than 'image_emb' "
                                  f"({len(arrays['image_emb'])} rows); expected one FAST or full variant")
    if "supervised_z" in pred:
        arrays["supervised_z"] = require(pred, "supervised_z", shape=(len(arrays["image_emb"]),), kind="f")
    return arrays, fast


def score(pred: dict, task: str | None = None) -> dict:
    """All multimodal metrics for one set of embeddings (see the module docstring)."""
    dataset = _dataset(task)
    if _instruments_wanted(pred, dataset):
        return score_instruments(pred, dataset)
    arrays, fast = validate(pred, dataset)
    (y_train, props), (y_test, _) = _truth(dataset, fast, "train"), _truth(dataset, fast, "test")
    views = {m: (arrays[f"{m}_emb_train"], arrays[f"{m}_emb"]) for m in ("image", "spectrum")}
    # "both": each modality standardised on its own, then concatenated
    pairs = [_standardise(np.asarray(a, np.float64), np.asarray(b, np.float64)) for a, b in views.values()]
    views["both"] = (np.hstack([p[0] for p in pairs]), np.hstack([p[1] for p in pairs]))

    out = {}
    for m in MODALITIES:
        r2 = knn_probe(views[m][0], y_train, views[m][1], y_test)
        out.update({f"zeroshot_r2_{p}_{m}": float(v) for p, v in zip(props, r2)})
    n = min(RETRIEVAL_N, len(arrays["image_emb"]))
    img, spec = arrays["image_emb"][:n].astype(np.float64), arrays["spectrum_emb"][:n].astype(np.float64)
    for name, (q, k) in {"image_to_spectrum": (img, spec), "spectrum_to_image": (spec, img)}.items():
        out.update({f"retrieval_{name}_top{kk}": v for kk, v in retrieval(q, k).items()})
    out.update(retrieval_n=n, retrieval_chance_top1=1 / n, retrieval_chance_top5=5 / n)
    if "supervised_z" in arrays:
        sup = float(_r2(y_test[:, 0], arrays["supervised_z"].astype(np.float64))[0])
        out["supervised_r2_z"] = sup
        out["zeroshot_fraction_of_supervised_z_image"] = out["zeroshot_r2_z_image"] / sup if sup > 0 else float("nan")

    rng = np.random.default_rng(0)  # one fixed labelled subset per fraction, shared by all modalities
    order = rng.permutation(len(y_train))
    for frac in FEW_SHOT_FRACTIONS:
        idx = order[: max(round(frac * len(y_train)), 2)]
        for m in MODALITIES:
            r2 = mlp_probe(views[m][0][idx], y_train[idx], views[m][1], y_test)
            out.update({f"fewshot{round(frac * 100)}pct_r2_{p}_{m}": float(v) for p, v in zip(props, r2)})
    # headline numbers first (the order `astrobench demo` shows)
    head = ["zeroshot_r2_z_spectrum", "zeroshot_r2_z_image", "retrieval_image_to_spectrum_top1"]
    return {k: out[k] for k in head} | {k: v for k, v in out.items() if k not in head}


# ---------------------------------------------------------------- instruments: ground, space, spectrum

INSTRUMENTS = ("ground", "space", "spectrum")
REQUIRED_INSTRUMENTS = ("ground", "space")
INSTRUMENT_DATASET = "galaxies-multi"
MORPH_NEIGHBORS = 64  # as the zero-shot regression probe


def _instruments_wanted(pred: dict, dataset: str) -> bool:
    """Instrument keys (ground_/space_), or the instruments dataset without the image/spectrum keys of the
    ``galaxies`` task (which still scores it the old way: ``images`` is its ground view)."""
    if any(k.split("_")[0] in REQUIRED_INSTRUMENTS for k in pred):
        return True
    return dataset == INSTRUMENT_DATASET and not any(k.startswith("image_") for k in pred)


def _modality(key: str) -> str:
    name = key.removesuffix("_train")
    if not name.endswith("_emb") or name.removesuffix("_emb") not in INSTRUMENTS:
        what = name.removesuffix("_emb") if name.endswith("_emb") else key
        raise ScoreInputError(f"unknown modality {what!r} (key {key!r}); expected keys <m>_emb and <m>_emb_train "
                              f"for m in {', '.join(INSTRUMENTS)}")
    return name.removesuffix("_emb")


def validate_instruments(pred: dict, dataset: str = INSTRUMENT_DATASET) -> tuple:
    """Check modality names, presence, shapes, dtypes and split sizes; return ({m: (train, test)}, fast)."""
    present = sorted({_modality(k) for k in pred}, key=INSTRUMENTS.index)
    for m in REQUIRED_INSTRUMENTS:
        if m not in present:
            raise ScoreInputError(f"missing modality {m!r}; expected keys {m}_emb and {m}_emb_train "
                                  f"({' and '.join(REQUIRED_INSTRUMENTS)} are required, spectrum optional)")
    views, fast = {}, None
    for m in present:
        test = require(pred, f"{m}_emb", ndim=2, kind="f")
        train = require(pred, f"{m}_emb_train", ndim=2, kind="f")
        if train.shape[1] != test.shape[1]:
            raise ScoreInputError(f"'{m}_emb_train' has {train.shape[1]} columns; expected D={test.shape[1]} like "
                                  f"'{m}_emb'")
        mode = split_mode(len(test), dataset, "test")
        if split_mode(len(train), dataset, "train") != mode or fast not in (None, mode):
            raise ScoreInputError(f"'{m}_emb' / '{m}_emb_train' have {len(test)} / {len(train)} rows, from a "
                                  "different mode than the other keys; expected one FAST or full variant")
        fast, views[m] = mode, (train, test)
    return views, fast


def _morphology_truth(dataset: str, fast: bool, split: str) -> dict:
    from .. import data
    from ..sim.galaxies_multi import MORPHOLOGY

    t = data.load(dataset, split, fast=fast, progress=False).truth
    missing = [q for q in MORPHOLOGY if q not in t.colnames]
    if missing:
        raise ScoreInputError(f"dataset {dataset!r} has no morphology truth ({', '.join(missing)}); expected "
                              f"multimodal:{INSTRUMENT_DATASET}")
    return {q: np.asarray(t[q], np.int64) for q in MORPHOLOGY}


def morphology_probe(x_train, y_train, x_test, y_test, n_classes: int) -> dict:
    """k-NN classifier on standardised embeddings, fit and scored on the rows the question asks (label >= 0):
    {"acc": accuracy, "auroc": AUROC of the "yes" probability (yes/no questions only), "majority": floor}."""
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import KNeighborsClassifier

    tr, te = y_train >= 0, y_test >= 0
    if not tr.any() or not te.any():  # a question no row of a (tiny) split was asked
        return {"acc": float("nan"), "majority": float("nan")} | ({"auroc": float("nan")} if n_classes == 2 else {})
    x_tr, x_te = _standardise(np.asarray(x_train, np.float64)[tr], np.asarray(x_test, np.float64)[te])
    knn = KNeighborsClassifier(n_neighbors=min(MORPH_NEIGHBORS, int(tr.sum())), weights="distance")
    knn.fit(x_tr, y_train[tr])
    proba = knn.predict_proba(x_te)
    pred = knn.classes_[proba.argmax(1)]
    out = {"acc": float(np.mean(pred == y_test[te])),
           "majority": float(np.mean(y_test[te] == np.bincount(y_train[tr]).argmax()))}
    if n_classes == 2:
        yes = proba[:, list(knn.classes_).index(1)] if 1 in knn.classes_ else np.zeros(int(te.sum()))
        both = len(np.unique(y_test[te])) == 2
        out["auroc"] = float(roc_auc_score(y_test[te], yes)) if both else float("nan")
    return out


def score_instruments(pred: dict, dataset: str = INSTRUMENT_DATASET) -> dict:
    """The instrument metrics (module docstring, **Instruments**)."""
    from ..sim.galaxies_multi import MORPHOLOGY

    views, fast = validate_instruments(pred, dataset)
    (y_train, props), (y_test, _) = _truth(dataset, fast, "train"), _truth(dataset, fast, "test")
    m_train, m_test = (_morphology_truth(dataset, fast, s) for s in ("train", "test"))
    out = {}
    n = min(RETRIEVAL_N, len(y_test))
    for a, b in (("ground", "space"), ("ground", "spectrum"), ("space", "spectrum")):
        if b not in views:
            continue
        qa, qb = (views[m][1][:n].astype(np.float64) for m in (a, b))
        if qa.shape[1] != qb.shape[1]:
            raise ScoreInputError(f"'{a}_emb' has {qa.shape[1]} columns and '{b}_emb' {qb.shape[1]}; expected one "
                                  "shared width for retrieval")
        for name, (q, k) in {f"{a}_to_{b}": (qa, qb), f"{b}_to_{a}": (qb, qa)}.items():
            out.update({f"retrieval_{name}_top{kk}": v for kk, v in retrieval(q, k).items()})
    out.update(retrieval_n=n, retrieval_chance_top1=1 / n, retrieval_chance_top5=5 / n)
    for m, (train, test) in {**views, "photometry": (y_train, y_test)}.items():
        if m != "photometry":
            r2 = knn_probe(train, y_train, test, y_test)
            out.update({f"zeroshot_r2_{p}_{m}": float(v) for p, v in zip(props, r2)})
        aurocs = []
        for q, (n_classes, _) in MORPHOLOGY.items():
            res = morphology_probe(train, m_train[q], test, m_test[q], n_classes)
            out[f"morph_acc_{q}_{m}"] = res["acc"]
            out[f"morph_majority_{q}"] = res["majority"]
            if "auroc" in res:
                out[f"morph_auroc_{q}_{m}"] = res["auroc"]
                aurocs.append(res["auroc"])
        out[f"morph_mean_auroc_{m}"] = float(np.nanmean(aurocs))
    head = ["retrieval_ground_to_space_top1", "morph_mean_auroc_ground", "morph_mean_auroc_space",
            "morph_mean_auroc_photometry"]
    return {k: out[k] for k in head} | {k: v for k, v in out.items() if k not in head}

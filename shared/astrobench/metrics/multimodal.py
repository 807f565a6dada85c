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

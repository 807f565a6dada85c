"""Anomaly track: rank the ``galaxies-anomaly`` test split so that the labelled anomalies come first.

Predictions (``astrobench score anomaly PRED.npz``):

==================  ==========  ==================================================================
key                 shape       meaning
==================  ==========  ==================================================================
``score``           (N_test,)   anomaly score per test image, in row order; higher = more anomalous
``score_<name>``    (N_test,)   optional: other scores to compare (reported under ``compare.<name>``)
==================  ==========  ==================================================================

N_test is 10000 (full) or 400 (FAST). Light curves (``astrobench score anomaly:lightcurves PRED.npz``): one
``score`` per test curve of ``lightcurves`` (6000 full, 400 FAST); the rare classes (supernovae, microlensing) and
the instrumental failures (cloudy night, zero-point jump, satellite glint, tracking failure) are the anomalies, each
its own type. Real data (``astrobench score anomaly:galaxy10-decals PRED.npz``, or a
``dataset`` key in PRED): the test split of Galaxy10 DECaLS, where the Galaxy Zoo classes "Disturbed" and
"Merging" count as the anomalies (types ``disturbed``, ``merging``) and every other class as normal.
Metrics (scikit-learn's ``roc_auc_score`` and ``average_precision_score`` for the first two):

- ``auroc``: area under the ROC curve, all anomaly types together (0.5 = random, 1 = perfect);
- ``auprc``: average precision (area under the precision-recall curve; random = the anomaly fraction);
- ``precision_at_1pct``: fraction of anomalies among the top 1 % of scores (what a follow-up
  budget of 1 % of the survey finds); ``precision_at_50``: the same among the top 50;
- ``recall_at_1pct_fpr``: fraction of anomalies scored above the threshold that flags 1 % of the
  normal images, and ``recall_per_type``: the same per anomaly type (which kinds a method misses).

Ties in the top-k are broken by row order (rows are in random order).
"""

from __future__ import annotations

import math

import numpy as np

from . import ScoreInputError, require, split_mode

DATASET = "galaxies-anomaly"
# real sets: the Galaxy Zoo classes that stand out from the regular galaxy population (label -> type)
REAL_ANOMALIES = {"galaxy10-decals": {0: "disturbed", 1: "merging"}}
LIGHTCURVES = "lightcurves"  # task and dataset: its truth flags the rare classes (`is_rare`), typed by `class`
FPR = 0.01
TOP_FRACTION = 0.01
TOP_K = 50
TASKS = ("detect", LIGHTCURVES, *REAL_ANOMALIES)  # "detect": the simulated galaxies-anomaly set


def threshold_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float = FPR) -> float:
    """Threshold t such that ``scores > t`` flags at most ``fpr`` of the normal rows (strict, so ties are safe)."""
    normal = np.sort(scores[labels == 0])[::-1]
    k = math.floor(fpr * len(normal))
    return float(normal[min(k, len(normal) - 1)])


def precision_at(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    order = np.argsort(-scores, kind="stable")[:k]
    return float(labels[order].mean())


def anomaly_metrics(scores, labels, types=None) -> dict:
    """All metrics for one score vector; ``types`` (str per row) adds recall per anomaly type."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    if labels.min() == labels.max():
        raise ValueError("labels need both normal (0) and anomalous (1) rows")
    thr = threshold_at_fpr(scores, labels)
    flagged = scores > thr
    out = {
        "auroc": float(roc_auc_score(labels, scores)),
        "auprc": float(average_precision_score(labels, scores)),
        "precision_at_1pct": precision_at(scores, labels, max(1, math.ceil(TOP_FRACTION * len(scores)))),
        "precision_at_50": precision_at(scores, labels, min(TOP_K, len(scores))),
        "recall_at_1pct_fpr": float(flagged[labels == 1].mean()),
    }
    if types is not None:
        types = np.asarray(types).astype(str)
        out["recall_per_type"] = {t: float(flagged[types == t].mean())
                                  for t in sorted(set(types[labels == 1].tolist()))}
    return out


def truth(dataset: str = DATASET, fast: bool = False, table=None):
    """(is_anomaly 0/1, type per row; "none" for normal rows) of a dataset's test split, or of ``table``."""
    if table is None:
        from ..data import load

        table = load(dataset, "test", fast=fast, progress=False).truth
    if "is_anomaly" in table.colnames:
        return np.asarray(table["is_anomaly"]), np.asarray(table["anomaly_type"]).astype(str)
    if "is_rare" in table.colnames:  # lightcurves: rare astrophysical classes and instrumental failures
        rare = np.asarray(table["is_rare"]).astype(bool)
        return rare.astype(np.int64), np.where(rare, np.asarray(table["class"]).astype(str), "none")
    if dataset in REAL_ANOMALIES and "label" in table.colnames:
        names = REAL_ANOMALIES[dataset]
        label = np.asarray(table["label"])
        types = np.array([names.get(int(v), "none") for v in label])
        return (types != "none").astype(np.int64), types
    raise ScoreInputError(f"dataset {dataset!r} has no anomaly labels; expected one of: {', '.join(_datasets())}")


def _datasets():
    return (DATASET, LIGHTCURVES, *REAL_ANOMALIES)


def score(pred: dict, task: str | None = None) -> dict:
    if task not in (None, *TASKS):
        raise ScoreInputError(f"unknown task {task!r} for track anomaly; expected one of: {', '.join(TASKS)}")
    named = task in (LIGHTCURVES, *REAL_ANOMALIES)
    dataset = task if named else str(np.asarray(pred.get("dataset", DATASET)))
    if dataset not in _datasets():
        raise ScoreInputError(f"'dataset' is {dataset!r}; expected one of: {', '.join(_datasets())}")
    main = require(pred, "score", ndim=1, shape=(None,), kind="fi")
    fast = split_mode(len(main), dataset)
    extra = sorted(k for k in pred if k.startswith("score_"))
    arrays = {"score": main}
    for key in extra:
        arrays[key] = require(pred, key, ndim=1, shape=(len(main),), kind="fi")
    labels, types = truth(dataset, fast)
    out = {**anomaly_metrics(main, labels, types), "n_test": len(main), "n_anomalies": int(labels.sum()),
           "fast": fast}
    if extra:
        out["compare"] = {k[len("score_"):]: anomaly_metrics(arrays[k], labels, types) for k in extra}
    return out

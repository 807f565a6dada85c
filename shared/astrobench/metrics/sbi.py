"""SBI track metrics: C2ST against reference posteriors (sbibm's convention), SBC, TARP, amortisation.

``score(pred, task)`` takes a dict of arrays (what ``astrobench score sbi:<task> PRED.npz`` loads):

- ``samples`` (10, n, dim) float, n >= 1000: posterior samples for the task's 10 fixed observations
  (``get_task(task).observations()``), in the order of the observations. Required.
- ``calib_samples`` (S, M, dim) and ``calib_theta`` (M, dim), M >= 200: posterior samples for M
  held-out simulations x_j ~ p(x | theta_j), theta_j ~ prior. Optional: adds SBC and TARP.
- ``seconds_per_observation`` (scalar): time to a posterior for a new observation. Optional: adds
  the amortisation ratio against the reference sampler's measured time (the task's card).
- ``task`` (string): used when the task is not given as ``sbi:<task>``.

C2ST uses ``sbi.utils.metrics.c2st`` with ``classifier="mlp"`` (the sbibm setting: a 2-layer MLP,
5-fold cross-validation, z-scored by the reference), on min(n, 10 000) samples per side. 0.5 means
indistinguishable from the reference, 1.0 means disjoint. Everything is seeded, so a score is
reproducible.
"""

from __future__ import annotations

import numpy as np

from . import ScoreInputError, require

NUM_OBSERVATIONS = 10
MIN_SAMPLES = 1000
MAX_C2ST_SAMPLES = 10_000
MIN_CALIBRATION = 200
SEED = 0


def _task(pred: dict, task: str | None):
    from ..sim.sbi_tasks import get_task, names

    if task is None and "task" in pred:
        task = str(np.asarray(pred["task"]))
    if task is None:
        raise ScoreInputError(f"no task given; expected sbi:<task> with <task> one of: {', '.join(names())}")
    try:
        return get_task(task)
    except ValueError as err:
        raise ScoreInputError(str(err)) from None


def _subsample(a: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n rows of a, drawn without replacement (samples may come ordered by chain)."""
    idx = np.random.default_rng(seed).permutation(len(a))[:n]
    return a[np.sort(idx)]


def c2st_per_observation(samples: np.ndarray, reference: np.ndarray, n: int) -> list:
    import torch
    from sbi.utils.metrics import c2st
    from threadpoolctl import threadpool_limits

    out = []
    with threadpool_limits(1):  # the MLP's BLAS: one thread is faster on a shared 2-core CPU (8 s vs 12 s)
        for i in range(len(samples)):
            ref = torch.as_tensor(_subsample(reference[i], n, SEED + i), dtype=torch.float32)
            est = torch.as_tensor(_subsample(samples[i], n, SEED + 100 + i), dtype=torch.float32)
            out.append(float(c2st(ref, est, seed=1, classifier="mlp")))
    return out


def tarp_curve(calib_samples, calib_theta):
    """TARP's expected coverage probability against credibility, (ecp, alpha) as torch tensors for
    ``sbi.analysis.plot_tarp``: the kit's one entry point (sbi 0.27 computes it only in a private function), with
    the reference points seeded so that every call gives the same curve."""
    import torch
    from sbi.diagnostics.tarp import _run_tarp, get_tarp_references

    samples = torch.as_tensor(calib_samples, dtype=torch.float32)
    theta = torch.as_tensor(calib_theta, dtype=torch.float32)
    with torch.random.fork_rng():
        torch.manual_seed(SEED)  # TARP's random reference points
        references = get_tarp_references(theta)
    return _run_tarp(samples, theta, references, z_score_theta=True)


def calibration(calib_samples: np.ndarray, calib_theta: np.ndarray) -> dict:
    """SBC (rank uniformity: a KS test per parameter) and TARP (ATC and its KS test)."""
    import torch
    from sbi.diagnostics import check_tarp
    from sbi.diagnostics.sbc import check_uniformity_frequentist

    samples = torch.as_tensor(calib_samples, dtype=torch.float32)
    theta = torch.as_tensor(calib_theta, dtype=torch.float32)
    num_samples = samples.shape[0]
    ranks = (samples < theta[None]).sum(0).float()  # SBC rank of each true parameter among its samples
    ks = check_uniformity_frequentist(ranks, num_samples).numpy()
    ecp, alpha = tarp_curve(samples, theta)
    atc, tarp_p = check_tarp(ecp, alpha)
    return {
        "sbc_ks_pvals": [float(p) for p in ks],
        "sbc_ks_pval_min": float(ks.min()),
        "tarp_atc": float(atc),
        "tarp_ks_pval": float(tarp_p),
        "calibration_num_sims": int(theta.shape[0]),
        "calibration_num_samples": int(num_samples),
    }


def score(pred: dict, task: str | None = None) -> dict:
    t = _task(pred, task)
    samples = require(pred, "samples", ndim=3, kind="f")
    if samples.shape[0] != NUM_OBSERVATIONS or samples.shape[2] != t.dim:
        raise ScoreInputError(f"'samples' has shape {samples.shape}; expected ({NUM_OBSERVATIONS}, n, {t.dim}) "
                              f"for {t.name} ({', '.join(t.param_names)})")
    if samples.shape[1] < MIN_SAMPLES:
        raise ScoreInputError(f"'samples' has {samples.shape[1]} samples per observation; "
                              f"expected at least {MIN_SAMPLES}")
    # validate every input before any (slow) scoring
    calib = "calib_samples" in pred or "calib_theta" in pred
    if calib:
        theta = require(pred, "calib_theta", ndim=2, kind="f", min_rows=MIN_CALIBRATION)
        cs = require(pred, "calib_samples", shape=(None, len(theta), t.dim), kind="f", min_rows=100)
        if theta.shape[1] != t.dim:
            raise ScoreInputError(f"'calib_theta' has shape {theta.shape}; "
                                  f"expected (M, {t.dim}) with M >= {MIN_CALIBRATION}")
    if "seconds_per_observation" in pred:
        sec = require(pred, "seconds_per_observation", ndim=0, kind="f")
        if not sec > 0:
            raise ScoreInputError(f"'seconds_per_observation' is {float(sec)}; expected a positive time in seconds")
    reference = t.reference_samples()
    n = min(samples.shape[1], reference.shape[1], MAX_C2ST_SAMPLES)
    per_obs = c2st_per_observation(samples, reference, n)
    out = {"task": t.name, "c2st_mean": float(np.mean(per_obs)), "c2st": [round(c, 4) for c in per_obs],
           "c2st_num_samples": n}
    if calib:
        out.update(calibration(cs, theta))
    if "seconds_per_observation" in pred:
        ref_sec = t.reference_info()["seconds_per_observation"]
        out.update({"seconds_per_observation": float(sec), "reference_seconds_per_observation": ref_sec,
                    "amortisation_ratio": float(ref_sec / sec)})
    return out

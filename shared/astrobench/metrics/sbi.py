"""SBI track metrics: C2ST against reference posteriors (sbibm's convention), SBC, TARP, posterior-predictive checks,
amortisation.

``score(pred, task)`` takes a dict of arrays (what ``astrobench score sbi:<task> PRED.npz`` loads):

- ``samples`` (10, n, dim) float, n >= 1000: posterior samples for the task's 10 fixed observations
  (``get_task(task).observations()``), in the order of the observations. Required.
- ``calib_samples`` (S, M, dim) and ``calib_theta`` (M, dim), M >= 200: posterior samples for M
  held-out simulations x_j ~ p(x | theta_j), theta_j ~ prior. Adds SBC and TARP; required for a task
  without reference posteriors (then calibration and the posterior-predictive check are its whole score).
- ``seconds_per_observation`` (scalar): time to a posterior for a new observation. Optional: adds
  the amortisation ratio against the reference sampler's measured time (the task's card).
- ``task`` (string): used when the task is not given as ``sbi:<task>``.

C2ST (tasks with references) uses ``sbi.utils.metrics.c2st`` with ``classifier="mlp"`` (the sbibm setting: a 2-layer
MLP, 5-fold cross-validation, z-scored by the reference), on min(n, 10 000) samples per side. 0.5 means
indistinguishable from the reference, 1.0 means disjoint.

Calibration is a test that can fail: SBC is a KS test of each parameter's rank against uniform, TARP a KS test of the
M coverage values against U(0, 1) (calibrated <=> uniform, Lemos+2023 eq. 6); each rejects at p < ``CALIBRATION_P``
(``sbc_rejected``, ``tarp_rejected``; ``calibration_rejected`` when either does). TARP's joint, distance-based
coverage can miss a bias in one parameter of several that SBC's per-parameter ranks catch. The posterior-predictive
check simulates from posterior draws for each observation and ranks the observation's standardised distance among
fresh predictive draws (``ppc_pvals``: tiny means the posterior predictive misses the data).
Everything is seeded, so a score is reproducible.
"""

from __future__ import annotations

import functools
import hashlib
import os

import numpy as np

from . import ScoreInputError, require

NUM_OBSERVATIONS = 10
MIN_SAMPLES = 1000
MAX_C2ST_SAMPLES = 10_000
MIN_CALIBRATION = 200
CALIBRATION_P = 0.01  # the quality issue's bar: SBC min KS p >= 0.01; the same level for TARP
PPC_DRAWS = 100  # posterior draws per observation, twice: one set standardises, the other is ranked against
SEED = 0
C2ST_CALL = {"seed": 1, "classifier": "mlp"}  # sbi's c2st with sbibm's MLP (its other settings: sbi's defaults)


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
    out = []
    for i in range(len(samples)):
        ref = np.ascontiguousarray(_subsample(reference[i], n, SEED + i), dtype=np.float32)
        est = np.ascontiguousarray(_subsample(samples[i], n, SEED + 100 + i), dtype=np.float32)
        key = hashlib.sha256(ref.tobytes() + est.tobytes() + str(ref.shape).encode() + _versions()).hexdigest()
        if key not in _C2ST_SEEN:  # seeded, so a pure function of its inputs (and of sbi's and sklearn's versions):
            # a second scoring of the same samples (a script, then `astrobench score` of its file, or a leaderboard)
            # reuses the number, in this process or from the dataset cache
            _C2ST_SEEN[key] = _remembered(key, ref, est)
        out.append(_C2ST_SEEN[key])
    return out


def _remembered(key: str, ref: np.ndarray, est: np.ndarray) -> float:
    """C2ST of (ref, est), kept in an existing dataset cache (c2st/<key>) so that other processes reuse it."""
    import torch
    from sbi.utils.metrics import c2st
    from threadpoolctl import threadpool_limits

    from ..data.cache import cache_dir

    path = cache_dir() / "c2st" / key
    try:
        return float(path.read_text())
    except (OSError, ValueError):
        pass
    with threadpool_limits(1):  # the MLP's BLAS: one thread is faster on a shared 2-core CPU (8 s vs 12 s)
        value = float(c2st(torch.as_tensor(ref), torch.as_tensor(est), **C2ST_CALL))
    if path.parents[1].is_dir():  # never creates a cache (a Codabench worker scores from its bundle alone)
        try:
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}")
            tmp.write_text(repr(value))
            tmp.replace(path)  # atomic: a reader sees the whole number or none
        except OSError:  # a read-only cache: the number is still right, only not kept
            pass
    return value


@functools.cache
def _versions() -> bytes:
    from importlib.metadata import version

    return f"sbi {version('sbi')} sklearn {version('scikit-learn')} {sorted(C2ST_CALL.items())}".encode()


_C2ST_SEEN: dict = {}  # sha256 of (reference, samples, versions) -> C2ST; ~4-6 s each on one core, 10 per scoring


def tarp_coverage(calib_samples, calib_theta) -> np.ndarray:
    """TARP's coverage value per calibration simulation (Lemos+2023, algorithm 2): the fraction of posterior samples
    closer to a random reference point than the true parameter, after sbi's min-max scaling by the true parameters.
    For a calibrated posterior these M values are U(0, 1).

    Computed here from samples: sbi 0.27's public ``run_tarp`` wants a posterior object, its private ``_run_tarp``
    returns only the histogram curve. The reference points are sbi's (``get_tarp_references``), seeded."""
    import torch
    from sbi.diagnostics.tarp import get_tarp_references
    from sbi.utils.metrics import l2

    samples = torch.as_tensor(np.asarray(calib_samples), dtype=torch.float64)
    theta = torch.as_tensor(np.asarray(calib_theta), dtype=torch.float64)
    with torch.random.fork_rng():
        torch.manual_seed(SEED)  # TARP's random reference points
        references = get_tarp_references(theta.float()).double()
    lo, hi = theta.min(0).values, theta.max(0).values
    scale = hi - lo + 1e-10
    samples, theta, references = (samples - lo) / scale, (theta - lo) / scale, (references - lo) / scale
    closer = l2(references[None], samples) < l2(references, theta)[None]  # (S, M)
    return closer.double().mean(0).numpy()


def tarp_curve(calib_samples, calib_theta, num_bins: int | None = None):
    """TARP's expected coverage probability against credibility, (ecp, alpha) as torch tensors for
    ``sbi.analysis.plot_tarp`` and ``sbi.diagnostics.check_tarp``: the empirical CDF of the coverage values on a
    fixed grid alpha = 0, 1/num_bins, ..., 1 (num_bins = M // 10 as in sbi), so the ATC compares curves on [0, 1]
    (sbi's histogram grid spans only [min, max] of the coverage values)."""
    import torch

    f = tarp_coverage(calib_samples, calib_theta)
    alpha = np.linspace(0.0, 1.0, (num_bins or max(1, len(f) // 10)) + 1)
    ecp = (f[None, :] <= alpha[:, None]).mean(1)
    return torch.as_tensor(ecp, dtype=torch.float32), torch.as_tensor(alpha, dtype=torch.float32)


def calibration(calib_samples: np.ndarray, calib_theta: np.ndarray) -> dict:
    """SBC (rank uniformity: a KS test per parameter) and TARP (ATC, and a KS test of the coverage values against
    U(0, 1)); each is rejected at p < CALIBRATION_P.

    Not sbi's ``check_tarp`` p-value: it runs a two-sample KS test between the ~M/10 values of the ecp curve and the
    ~M/10 grid values. Any increasing curve from 0 to 1 spreads its values over [0, 1] much like the grid does, so
    that test returns p ~ 1 even for a posterior half as wide as it should be."""
    import torch
    from sbi.diagnostics import check_tarp
    from sbi.diagnostics.sbc import check_uniformity_frequentist
    from scipy.stats import kstest

    samples = torch.as_tensor(calib_samples, dtype=torch.float32)
    theta = torch.as_tensor(calib_theta, dtype=torch.float32)
    num_samples = samples.shape[0]
    ranks = (samples < theta[None]).sum(0).float()  # SBC rank of each true parameter among its samples
    ks = check_uniformity_frequentist(ranks, num_samples).numpy()
    # the coverage values are counts k/S; spread each over its step, ((k + U) / (S + 1), seeded), so that they are
    # exactly U(0, 1) under calibration and the KS test keeps its level despite the ties
    counts = np.rint(tarp_coverage(samples, theta) * num_samples)
    tarp = kstest((counts + np.random.default_rng(SEED).random(len(counts))) / (num_samples + 1), "uniform")
    atc, _ = check_tarp(*tarp_curve(samples, theta))
    return {
        "sbc_ks_pvals": [float(p) for p in ks],
        "sbc_ks_pval_min": float(ks.min()),
        "tarp_atc": float(atc),
        "tarp_ks_pval": float(tarp.pvalue),
        "tarp_ks_stat": float(tarp.statistic),
        "sbc_rejected": bool(ks.min() < CALIBRATION_P),
        "tarp_rejected": bool(tarp.pvalue < CALIBRATION_P),
        "calibration_rejected": bool(ks.min() < CALIBRATION_P or tarp.pvalue < CALIBRATION_P),  # either test
        "calibration_p_threshold": CALIBRATION_P,
        "calibration_num_sims": int(theta.shape[0]),
        "calibration_num_samples": int(num_samples),
    }


def posterior_predictive(task, samples: np.ndarray, x_obs: np.ndarray, draws: int = PPC_DRAWS) -> list:
    """Posterior-predictive p-value per observation: 2 x ``draws`` posterior samples are simulated; the first set
    gives the predictive mean and sd per feature, and the observation's squared standardised distance from that
    mean is ranked among the second set's distances (both independent of the first set, so they are exchangeable
    when the posterior predictive is right). p = (1 + #{d_k >= d_obs}) / (draws + 1)."""
    out = []
    for i in range(len(samples)):
        # clipped to the prior box: a sample outside it has no prior mass, and some simulators are undefined there
        theta = np.clip(_subsample(samples[i], 2 * draws, SEED + 200 + i), task.low, task.high)
        x = task.simulate(theta, seed=SEED + 300 + i).reshape(len(theta), -1).astype(np.float64)
        fit, test = x[:draws], x[draws:]
        mu, sd = fit.mean(0), fit.std(0)
        sd = np.maximum(sd, 1e-6 * max(float(np.abs(mu).max()), 1e-6))  # a feature the posterior never varies
        d_test = (((test - mu) / sd) ** 2).sum(-1)
        d_obs = (((np.asarray(x_obs[i], np.float64).reshape(-1) - mu) / sd) ** 2).sum()
        out.append(float((1 + np.sum(d_test >= d_obs)) / (draws + 1)))
    return out


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
    if not calib and not t.has_reference:
        raise ScoreInputError(f"{t.name} has no reference posterior, so it is scored by calibration; expected keys "
                              f"calib_samples (S, M, {t.dim}) and calib_theta (M, {t.dim}), M >= {MIN_CALIBRATION}")
    if calib:
        theta = require(pred, "calib_theta", ndim=2, kind="f", min_rows=MIN_CALIBRATION)
        cs = require(pred, "calib_samples", shape=(None, len(theta), t.dim), kind="f", min_rows=100)
        if theta.shape[1] != t.dim:
            raise ScoreInputError(f"'calib_theta' has shape {theta.shape}; "
                                  f"expected (M, {t.dim}) with M >= {MIN_CALIBRATION}")
    # amortisation: relative to the reference sampler's measured time (NUTS; sbibm's published files have none)
    timed = "seconds_per_observation" in pred and t.has_reference and "seconds_per_observation" in t.reference_info()
    if "seconds_per_observation" in pred:
        sec = require(pred, "seconds_per_observation", ndim=0, kind="f")
        if not sec > 0:
            raise ScoreInputError(f"'seconds_per_observation' is {float(sec)}; expected a positive time in seconds")
    out = {"task": t.name}
    if t.has_reference:
        reference = t.reference_samples()
        n = min(samples.shape[1], reference.shape[1], MAX_C2ST_SAMPLES)
        per_obs = c2st_per_observation(samples, reference, n)
        out.update({"c2st_mean": float(np.mean(per_obs)), "c2st": [round(c, 4) for c in per_obs],
                    "c2st_num_samples": n})
    if calib:
        out.update(calibration(cs, theta))
    ppc = posterior_predictive(t, samples, t.observations())
    out.update({"ppc_pvals": [round(p, 4) for p in ppc], "ppc_pval_min": float(min(ppc)), "ppc_num_draws": PPC_DRAWS})
    if timed:
        ref_sec = t.reference_info()["seconds_per_observation"]
        out.update({"seconds_per_observation": float(sec), "reference_seconds_per_observation": ref_sec,
                    "amortisation_ratio": float(ref_sec / sec)})
    return out

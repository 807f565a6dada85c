"""Neural posterior estimation (NPE) baseline for the SBI track, with the sbi library.

    python sbi/npe.py [--fast] [--out DIR] [--seed N] [--device auto|cpu|cuda] [--task NAME] [--threads N]
                      [--num-sims N] [--epochs N] [--set KEY=VALUE] [--pretrained]

1. draw theta from the task's box prior and simulate x with the task's batched simulator (JAX: jit + vmap);
2. train a neural spline flow q(theta | embed(x)) with sbi's NPE; the embedding follows x's shape (``embedding_kind``):
   sbi's CNNEmbedding, 2-D for images, 1-D for sequences, trained jointly with the flow; none for a short vector;
3. sample q for the task's 10 fixed observations and score them with the shared scorer
   (``astrobench.metrics.sbi.score``): C2ST against the reference posteriors (when the task has them), SBC and
   TARP on held-out simulations, posterior-predictive checks, and the amortisation ratio.

The budget is counts: ``--num-sims`` simulations (sbibm's 10^3 / 10^4 / 10^5) and at most ``--epochs`` epochs;
sbi's own early stopping (``stop_after`` epochs without a better validation loss) usually ends training sooner.
``--task`` is an alias of ``--dataset`` (the task name). Writes OUT/metrics.json, OUT/predictions.npz (what
`astrobench score sbi:<task>` takes), figures and the trained weights. ``--pretrained``: step 3 only, on the task's
shipped model (``pretrained/<task>/``, checked against ``task_meta``), with the mode's sample counts.

Scaling (Hugging Face accelerate): the file runs unchanged under ``accelerate launch``. What scales is the
simulation: each of the P processes simulates its own 1/P of the parameter draws (on its own GPU when JAX sees
one) and the shards are gathered. sbi's training loop is single-process (its early stopping and validation split
live inside ``NPE.train``, with no DDP hook), so the main process trains the flow on the gathered simulations
and alone samples, scores and writes files; the others exit. Mixed precision and gradient accumulation do not
apply (sbi's loop has neither: the flags are refused).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from astrobench import baseline

SCRIPT = "npe.py"
DEFAULT_TASK = "lightcurve"
# ---------------------------------------------------------------- settings: FULL and FAST (--set KEY=VALUE)
FULL = dict(num_sims=10_000, epochs=800, stop_after=20, batch=200, lr=5e-4, flow="nsf", embed_dim=32,
            num_samples=2_000, calib_sims=500, calib_samples=1_000)
FAST = dict(num_sims=1_000, epochs=20, stop_after=20, batch=200, lr=5e-4, flow="nsf", embed_dim=32,
            num_samples=1_000, calib_sims=200, calib_samples=200)
# num_sims: training simulations (--num-sims). epochs: at most this many epochs (--epochs); sbi stops after
# stop_after epochs without validation improvement and keeps the best weights. flow: sbi's "nsf", 5 transforms
# of 50 hidden units (its defaults). num_samples: posterior samples per observation for C2ST (sbibm uses 10 000;
# the MLP classifier's cost grows with n; 1 000 is the scorer's minimum). calib_*: held-out simulations for SBC /
# TARP (the scorer needs >= 200) and posterior samples per simulation.
MINIMUM = dict(num_sims=100, epochs=1, stop_after=1, batch=1, embed_dim=1, num_samples=1_000, calib_sims=200,
               calib_samples=100)  # the last three: astrobench.metrics.sbi's minimums
FLOWS = ("nsf", "maf", "mdn", "made")
EPOCH_CHUNK = 5  # only under --max-minutes: the clock is read between chunks of epochs
PACKAGES = ("sbi", "accelerate", "jax", "numpyro")
PRETRAINED = Path(__file__).resolve().parent / "pretrained"  # the shipped models, one folder per task
SUMMARY = dict(c2st_mean="C2ST", ppc_pval_min="PPC min p", sbc_ks_pval_min="SBC min KS p", tarp_atc="TARP ATC",
               tarp_ks_pval="TARP KS p", amortisation_ratio="amortisation x")  # printed when the scorer gives it
# CNN per kind of x (embedding_kind): images (H, W), e.g. 32x32 galaxies; sequences (L,), e.g. 160 fluxes
CNN = {kind: dict(in_channels=1, out_channels_per_layer=channels, num_conv_layers=2, kernel_size=k, num_linear_layers=2,
                  num_linear_units=128) for kind, channels, k in (("image", [8, 16], 3), ("sequence", [16, 32], 5))}
MIN_SEQUENCE = 32  # a 1-D x this long is a sequence (1-D CNN); a shorter one (two_moons: 2) a vector, no embedding
# ---------------------------------------------------------------- data: the JAX simulators


def task_meta(task) -> dict:
    """An SBI task's identity (metrics.json, scripts/ship_pretrained.py, the --pretrained check): task.identity()."""
    return task.identity()


def embedding_kind(task) -> str:
    """"image" (x is (H, W)), "sequence" (1-D, at least MIN_SEQUENCE long) or "vector"; a task's ``x_kind`` wins."""
    if task.x_kind is None and len(shape := tuple(task.x_shape)) not in (1, 2):
        raise baseline.BaselineError(f"{task.name}: x_shape {shape}; expected (H, W) or (L,) (or set task.x_kind)")
    return task.x_kind or ("image" if len(shape) == 2 else "sequence" if shape[0] >= MIN_SEQUENCE else "vector")


def simulate(task, num_sims: int, seed: int):
    """(theta, x) as float32 torch tensors from the task's prior and JAX simulator."""
    import torch

    theta = task.sample_prior(num_sims, seed=seed)
    x = task.simulate(theta, seed=seed + 1)
    return torch.from_numpy(theta), torch.from_numpy(x)


def simulate_sharded(task, num_sims: int, seed: int, acc):
    """``simulate`` split over the accelerate processes: every process draws the same theta, simulates its own
    contiguous 1/P of the rows (noise keyed by its rank) and gets all shards back in row order; 1 process: simulate."""
    import jax
    import torch
    from accelerate.utils import gather_object

    rank, world = acc.process_index, acc.num_processes
    if world == 1:
        return simulate(task, num_sims, seed)
    theta = task.sample_prior(num_sims, seed=seed)
    rows = np.array_split(np.arange(num_sims), world)[rank]
    devices = jax.devices()  # one GPU per process on a multi-GPU node; the CPU otherwise
    with jax.default_device(devices[acc.local_process_index % len(devices)]):
        x = task.simulate(theta[rows], seed=seed + 1 + 1000 * rank)
    baseline.log_shard(acc, rows.tolist(), "simulate")  # the rows this process simulated (the DDP test)
    x = np.concatenate(gather_object([x]))  # list of the P shards, in rank order
    return torch.from_numpy(theta), torch.from_numpy(x)


# ================================================================ MODEL SLOT: replace build_model with your own


def build_model(task, cfg: dict):
    """Replace this with your model. Interface:

    Returns an sbi density-estimator builder, ``build(theta, x) -> ConditionalDensityEstimator``, as
    ``sbi.neural_nets.posterior_nn(...)`` returns one: sbi calls it once with the training simulations,
    theta (N, task.dim) float32 in the task's physical units (``task.labels``, box prior ``task.low``..``task.high``)
    and x (N, *task.x_shape) float32 (galaxy-profile: (32, 32) images in flux units; lightcurve: 160 relative
    fluxes; two_moons: 2 numbers), so that it can z-score both. The estimator models q(theta | x):
    ``log_prob(theta, x) -> (N,)``, ``sample((S,), x) -> (S, N, dim)``; NPE's loss is ``estimator.loss(theta, x)`` =
    -log q(theta | x) per row, averaged over batches of ``cfg["batch"]`` by sbi's training loop. ``cfg``: the FULL/FAST
    settings (flow, embed_dim) or a shipped config. This one: a flow on sbi's CNNEmbedding of x (cfg's cnn, else
    ``CNN[embedding_kind(task)]``), or on x itself for a short vector."""
    from sbi.neural_nets import posterior_nn
    from sbi.neural_nets.embedding_nets import CNNEmbedding

    cnn = cfg.get("cnn", CNN.get(embedding_kind(task)))
    if cnn is None:  # a vector: z-scored per feature, no embedding (sbibm's NPE setting)
        return posterior_nn(model=cfg["flow"], z_score_x="independent")
    embedding = CNNEmbedding(input_shape=tuple(task.x_shape), output_dim=cfg["embed_dim"], **cnn)
    return posterior_nn(model=cfg["flow"], embedding_net=embedding, z_score_x="structured")


# ================================================================ NPE: training and sampling


def build_npe(task, cfg: dict, device: str = "cpu", seed: int = 0, log_dir=None):
    """sbi NPE object: the task's box prior and ``build_model``'s density estimator. Training curves go to
    TensorBoard files in ``log_dir`` (default: a temporary folder; sbi's own default would litter ./sbi-logs)."""
    import tempfile

    import torch
    from sbi.inference import NPE
    from sbi.utils.tracking import TensorBoardTracker
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(seed)
    writer = SummaryWriter(log_dir=str(log_dir or tempfile.mkdtemp(prefix="sbi-logs-")))
    return NPE(prior=task.prior_torch(device), density_estimator=build_model(task, cfg), device=device,
               show_progress_bars=True, tracker=TensorBoardTracker(writer))


def train(npe, theta, x, cfg: dict, run=None):
    """sbi's training loop on (theta, x): a 10 % validation split, early stopping after ``cfg["stop_after"]`` epochs
    without improvement, at most ``cfg["epochs"]`` epochs, the best-validation weights kept. One call to convergence;
    only under --max-minutes it runs in chunks of EPOCH_CHUNK epochs (``resume_training``) and stops between chunks
    when the clock says. Returns the posterior."""
    npe.append_simulations(theta, x)
    kwargs = dict(training_batch_size=cfg["batch"], learning_rate=cfg["lr"], stop_after_epochs=cfg["stop_after"],
                  show_train_summary=False)
    with warnings.catch_warnings():  # sbi warns when the epoch budget ends training: recorded as converged=False
        warnings.filterwarnings("ignore", message="Maximum number of epochs", category=UserWarning)
        if run is None or run.max_minutes is None:  # sbi 0.27 trains max_num_epochs + 1 epochs
            npe.train(max_num_epochs=cfg["epochs"] - 1, **kwargs)
            return npe.build_posterior()
        epochs = 0
        while True:
            target = min(cfg["epochs"], epochs + EPOCH_CHUNK)
            npe.train(max_num_epochs=target - 1, resume_training=epochs > 0, **kwargs)
            epochs = npe.summary["epochs_trained"][-1]
            if epochs < target or epochs >= cfg["epochs"]:  # converged (early stop) or out of epochs
                break
            if run.out_of_time(collective=False):  # only the main process trains
                print(f"\ntraining stopped by --max-minutes {run.max_minutes} after {epochs} epochs")
                break
    return npe.build_posterior()


def load_shipped(task, cfg: dict, device: str):
    """(posterior, config): ``build_model(task, shipped config)`` with the shipped state dict (flow, embedding, both
    z-scorings), in sbi's DirectPosterior as ``NPE.build_posterior`` makes it; the mode's sample counts."""
    import json

    import torch
    from sbi.inference import DirectPosterior

    folder = PRETRAINED / task.name
    state, shipped = baseline.load_pretrained(folder, task_meta(task))
    net = build_model(task, shipped)(torch.from_numpy(task.true_parameters()),  # the state sets the z-scorings
                                     torch.from_numpy(task.observations()))
    try:
        net.load_state_dict(state)
    except RuntimeError:
        raise baseline.BaselineError(f"--pretrained: {folder} does not fit build_model (another model in the "
                                     "slot?); train one instead (without --pretrained)") from None
    net = net.to(device).eval()
    command = json.loads((folder / "manifest.json").read_text())["command"]
    config = dict(shipped, **{k: cfg[k] for k in ("num_samples", "calib_sims", "calib_samples")}, pretrained=command)
    return DirectPosterior(posterior_estimator=net, prior=task.prior_torch(device), device=device), config


def sample_observations(posterior, x_obs, num_samples: int):
    """(10, num_samples, dim) posterior samples, and the wall time of one new observation's posterior."""
    import torch

    x_obs = torch.as_tensor(x_obs)
    t0 = time.perf_counter()
    first = posterior.sample((num_samples,), x=x_obs[:1], show_progress_bars=False)
    seconds = time.perf_counter() - t0  # amortisation: a new observation costs one forward pass of sampling
    rest = posterior.sample_batched((num_samples,), x=x_obs[1:], show_progress_bars=False)  # (S, 9, dim)
    samples = torch.cat([first[None], rest.permute(1, 0, 2)])
    return samples.numpy().astype(np.float32), seconds


def calibration_samples(task, posterior, num_sims: int, num_samples: int, seed: int):
    """Held-out (never trained on) simulations and their posterior samples for SBC and TARP."""
    theta, x = simulate(task, num_sims, seed=seed + 10_000)
    samples = posterior.sample_batched((num_samples,), x=x, show_progress_bars=False,
                                       max_sampling_batch_size=min(10_000, 100_000 // len(x)))  # sbi's own cap
    return samples.numpy().astype(np.float32), theta.numpy()


# ---------------------------------------------------------------- figures


def plot(task, pred, metrics, out: Path):
    """Corner plot of observation 0 (NPE vs reference), C2ST per observation, SBC ranks, TARP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from astrobench.metrics.sbi import tarp_curve  # the scorer's TARP curve (the reported ATC's)
    from sbi.analysis import pairplot, plot_tarp, sbc_rank_plot

    ref = [task.reference_samples(2000)[0]] if task.has_reference else []  # a simulator-only task: NPE alone
    limits = [[lo, hi] for lo, hi in zip(task.low, task.high)]
    with warnings.catch_warnings():  # sbi 0.27's kde panels: np.linspace on tensors (a NumPy 2 deprecation)
        warnings.simplefilter("ignore", DeprecationWarning)
        fig, _ = pairplot([*ref, pred["samples"][0][:2000]], limits=limits, labels=list(task.labels),
                          points=task.true_parameters()[:1], figsize=(8, 8),
                          upper="contour", diag="kde", fig_kwargs=dict(points_colors=["k"]))
    fig.suptitle(f"{task.name}, observation 0: " + ("reference (blue) vs NPE (green)" if ref else "NPE"))
    fig.savefig(out / "corner_obs0.png", dpi=80)
    fig, ax = plt.subplots(figsize=(6, 3))
    key, label = ("c2st", "C2ST") if "c2st" in metrics else ("ppc_pvals", "posterior-predictive p")  # no reference
    ax.bar(range(len(metrics[key])), metrics[key], color="C1")
    ax.axhline(0.5 if key == "c2st" else 0.01, color="k", lw=1)
    ax.set(ylim=(0.4, 1.0) if key == "c2st" else (0, 1), xlabel="observation", ylabel=label,
           title=f"mean {label} {np.mean(metrics[key]):.3f}")
    fig.tight_layout()
    fig.savefig(out / f"{key.split('_')[0]}.png", dpi=80)
    s, th = torch.as_tensor(pred["calib_samples"]), torch.as_tensor(pred["calib_theta"])
    ranks = (s < th[None]).sum(0)
    fig, _ = sbc_rank_plot(ranks, s.shape[0], plot_type="hist", num_bins=20, parameter_labels=list(task.param_names))
    fig.savefig(out / "sbc_ranks.png", dpi=80)
    ecp, alpha = tarp_curve(s, th)
    fig, _ = plot_tarp(ecp, alpha, title=f"TARP: ATC {metrics['tarp_atc']:.3f}, KS p {metrics['tarp_ks_pval']:.2f}")
    fig.savefig(out / "tarp.png", dpi=80)
    plt.close("all")


# ---------------------------------------------------------------- main


def parser():
    from astrobench.sim.sbi_tasks import names

    p = baseline.parser(SCRIPT, __doc__, out="outputs/sbi", dataset=DEFAULT_TASK, budget="epochs", datasets=names(),
                        budget_help="training epochs at most (FULL 800, FAST 20); sbi's early stopping usually "
                        "ends training sooner")
    p.add_argument("--task", dest="dataset", default=argparse.SUPPRESS, metavar="NAME",
                   help="alias of --dataset: the SBI task")
    p.add_argument("--num-sims", type=int, metavar="N", help="training simulations, >= 100 (FULL 10000, FAST "
                   "1000; sbibm's budgets are 10^3, 10^4, 10^5)")
    return p


def check(cfg: dict, args) -> None:
    """The settings' values (after --num-sims, --epochs, --set), before any simulation."""
    from astrobench.sim.sbi_tasks import names

    if args.dataset not in names():
        raise baseline.BaselineError(f"--task/--dataset {args.dataset!r}: expected one of {', '.join(names())}")
    flags = dict(num_sims="--num-sims", epochs="--epochs")
    for key, low in MINIMUM.items():
        if cfg[key] < low:
            raise baseline.BaselineError(f"{flags.get(key, '--set ' + key)} {cfg[key]}: expected at least {low}")
    if not cfg["lr"] > 0 or cfg["flow"] not in FLOWS:
        raise baseline.BaselineError(f"--set lr={cfg['lr']} flow={cfg['flow']}: expected lr > 0 and flow one of "
                                     f"{', '.join(FLOWS)}")
    if args.grad_accum != 1 or args.mixed_precision not in (None, "no"):
        raise baseline.BaselineError(f"--grad-accum {args.grad_accum} --mixed-precision {args.mixed_precision}: "
                                     "sbi's NPE.train has neither; expected 1 and no")


def main(argv=None) -> int:
    """Simulate, train, sample, score and write everything (once, on the main process)."""
    import torch
    from astrobench.metrics.sbi import score
    from astrobench.sim.sbi_tasks import get_task

    try:
        args = parser().parse_args(argv)
        cfg = baseline.settings(FULL, FAST, args)
        if args.num_sims is not None:
            cfg["num_sims"] = args.num_sims
        check(cfg, args)
        run = baseline.start(args)  # seeds, --threads (torch; the JAX simulator keeps its own pool)
        task = get_task(args.dataset)
        kind = embedding_kind(task)  # an x_shape build_model cannot embed: refused before any simulation
        t0, timing = time.perf_counter(), {}
        if not args.pretrained:
            theta, x = simulate_sharded(task, cfg["num_sims"], run.seed, run.acc)
            timing["simulate_s"] = round(time.perf_counter() - t0, 2)
        if not run.is_main:  # training, scoring and files: once, on the main process
            run.acc.end_training()  # leave the process group cleanly (gloo threads abort an exit otherwise)
            return 0
        posterior, config = load_shipped(task, cfg, run.device) if args.pretrained else (None, None)
        run.out.mkdir(parents=True, exist_ok=True)
        if not args.pretrained:
            npe = build_npe(task, cfg, run.device, run.seed, log_dir=run.out / "tensorboard")
            posterior = train(npe, theta, x, cfg, run)
            timing["train_s"] = round(time.perf_counter() - t0 - timing["simulate_s"], 1)
        samples, seconds_per_obs = sample_observations(posterior, task.observations(), cfg["num_samples"])
        calib, calib_theta = calibration_samples(task, posterior, cfg["calib_sims"], cfg["calib_samples"], run.seed)
        pred = {"samples": samples, "calib_samples": calib, "calib_theta": calib_theta,
                "seconds_per_observation": np.float64(seconds_per_obs), "task": np.array(task.name)}
        baseline.save_predictions(run.out / "predictions.npz", task_meta(task), ("observations",), **pred)
        metrics = score(pred, task.name)  # the same scorer as `astrobench score sbi:<task> predictions.npz`
        plot(task, pred, metrics, run.out)
        if not args.pretrained:
            summary = npe.summary
            epochs = int(summary["epochs_trained"][-1])
            config = dict(cfg, task=task.name, cnn=cfg.get("cnn", CNN.get(kind)), epochs_trained=epochs,
                          converged=epochs < cfg["epochs"] and not run.stopped_by_clock,  # sbi's early stop
                          best_validation_loss=float(summary["best_validation_loss"][-1]),
                          training_loss_first_last=[float(summary["training_loss"][0]),
                                                    float(summary["training_loss"][-1])])
            torch.save(posterior.posterior_estimator.state_dict(), run.out / "npe.pt")
            baseline.write_json(run.out / "npe_config.json", {**config, **run.record()})
        report = run.write_metrics("sbi", task.name, task.name, metrics, config, task_meta(task), PACKAGES,
                                   timing=timing)
        shown = " | ".join(f"{label} {metrics[k]:.4g}" for k, label in SUMMARY.items() if k in metrics)
        print(f"{task.name}: {shown} | {config['epochs_trained']} epochs{' (pretrained)' if args.pretrained else ''}, "
              f"{report['seconds']} s -> {run.out}")
    except baseline.ERRORS as err:
        return baseline.fail(SCRIPT, err)
    return 0


if __name__ == "__main__":
    sys.exit(main())

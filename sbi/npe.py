"""Neural posterior estimation (NPE) baseline for the SBI track, with the sbi library.

    python sbi/npe.py --task galaxy-profile --num-sims 10000 --out outputs/sbi    # full run
    python sbi/npe.py --fast --task lightcurve --out /tmp/s                        # FAST run (CI)

1. draw theta from the task's box prior and simulate x with the task's JAX simulator (jit + vmap);
2. train a neural spline flow q(theta | embed(x)) with sbi's NPE; the embedding is sbi's CNNEmbedding,
   2-D for the image task and 1-D for the light curve, trained jointly with the flow;
3. sample q for the task's 10 fixed observations and score them with the shared scorer
   (``astrobench.metrics.sbi.score``): C2ST against the NUTS reference posteriors, SBC and TARP on
   held-out simulations, and the amortisation ratio (reference NUTS time / NPE time per observation).

Writes OUT/metrics.json, OUT/predictions.npz (what `astrobench score sbi:<task>` takes) and figures.

Scaling (Hugging Face accelerate): the file runs unchanged under ``accelerate launch``. What scales is the
simulation: each of the P processes simulates its own 1/P of the parameter draws (on its own GPU when JAX sees
one) and the shards are gathered. sbi's training loop is single-process (its early stopping and validation split
live inside ``NPE.train``, with no DDP hook), so the main process trains the flow on the gathered simulations
and alone samples, scores and writes files; the others exit. Mixed precision and gradient accumulation do not
apply (sbi's loop has neither). One process gives exactly the results it gave before.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
from astrobench.scaling import make_accelerator  # shared by every baseline

DEFAULT_TASK = "lightcurve"
NUM_SIMS = 10_000  # full run; sbibm's middle budget (10^3 / 10^4 / 10^5)
FAST_SIMS = 1_000
# posterior samples per observation for C2ST. sbibm uses 10 000; the MLP classifier's cost grows with n and
# 2 000 keeps a full run's scoring to a few minutes on 2 CPU cores (README: what this changes)
NUM_SAMPLES = 2_000
FAST_SAMPLES = 1_000  # the scorer's minimum
CALIB_SIMS = 500  # held-out simulations for SBC / TARP (the issue asks >= 200)
FAST_CALIB_SIMS = 200
CALIB_SAMPLES = 1_000  # posterior samples per held-out simulation
FAST_CALIB_SAMPLES = 200
MAX_EPOCHS = 300  # sbi stops early after STOP_AFTER epochs without validation improvement
FAST_EPOCHS = 20
MAX_MINUTES = 8.0  # wall-clock cap on training (checked every EPOCH_CHUNK epochs); FAST: 0.5
FAST_MINUTES = 0.5
EPOCH_CHUNK = 5
STOP_AFTER = 20
BATCH_SIZE = 200
LEARNING_RATE = 5e-4
FLOW = "nsf"  # neural spline flow; 5 transforms of 50 hidden units (sbi's defaults)
EMBED_DIM = 32
# One torch thread: on a shared 2-core CPU, 2 OpenMP threads made 3 epochs 9x slower (72 s vs 7.8 s, load ~6)
TORCH_THREADS = 1
# CNN per task: the image is 32x32, the light curve 160 fluxes on fixed (irregular) time stamps
CNN = {
    "galaxy-profile": dict(in_channels=1, out_channels_per_layer=[8, 16], num_conv_layers=2, kernel_size=3,
                           num_linear_layers=2, num_linear_units=128, z_score_x="structured"),
    "lightcurve": dict(in_channels=1, out_channels_per_layer=[16, 32], num_conv_layers=2, kernel_size=5,
                       num_linear_layers=2, num_linear_units=128, z_score_x="structured"),
}


def simulate(task, num_sims: int, seed: int):
    """(theta, x) as float32 torch tensors from the task's prior and JAX simulator."""
    import torch

    theta = task.sample_prior(num_sims, seed=seed)
    x = task.simulate(theta, seed=seed + 1)
    return torch.from_numpy(theta), torch.from_numpy(x)


def simulate_sharded(task, num_sims: int, seed: int, acc, log_dir=None):
    """``simulate`` split over the accelerate processes: every process draws the same theta, simulates its own
    contiguous 1/P of the rows (noise keyed by its rank) and gets all shards back in row order. One process:
    exactly ``simulate``."""
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
    if log_dir is not None:  # read by the DDP test
        log = {"rank": rank, "processes": world, "rows": [int(rows[0]), int(rows[-1]) + 1]}
        (Path(log_dir) / f"shard_rank{rank}.json").write_text(json.dumps(log))
    x = np.concatenate(gather_object([x]))  # list of the P shards, in rank order
    return torch.from_numpy(theta), torch.from_numpy(x)


def build_npe(task, device: str = "cpu", seed: int = 0, log_dir=None):
    """sbi NPE object: box prior + NSF density estimator with a CNN embedding of x.

    Training curves go to TensorBoard files in ``log_dir`` (default: a temporary folder; sbi's own
    default would litter ./sbi-logs)."""
    import tempfile

    import torch
    from sbi.inference import NPE
    from sbi.neural_nets import posterior_nn
    from sbi.neural_nets.embedding_nets import CNNEmbedding
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(seed)
    conf = dict(CNN[task.name])
    z_score_x = conf.pop("z_score_x")
    embedding = CNNEmbedding(input_shape=tuple(task.x_shape), output_dim=EMBED_DIM, **conf)
    density = posterior_nn(model=FLOW, embedding_net=embedding, z_score_x=z_score_x)
    writer = SummaryWriter(log_dir=str(log_dir or tempfile.mkdtemp(prefix="sbi-logs-")))
    return NPE(prior=task.prior_torch(device), density_estimator=density, device=device, show_progress_bars=True,
               summary_writer=writer)


def train(npe, theta, x, max_epochs: int, max_minutes: float | None = None):
    """sbi's training loop (early stopping on a 10 % validation split), resumed in chunks of epochs
    so that a wall-clock cap can stop it; the best-validation weights are kept."""
    npe.append_simulations(theta, x)
    t0, epochs = time.perf_counter(), 0
    while True:
        target = max_epochs if max_minutes is None else min(max_epochs, epochs + EPOCH_CHUNK)
        with warnings.catch_warnings():  # sbi warns at every chunk's end that max_num_epochs was reached
            warnings.filterwarnings("ignore", message="Maximum number of epochs", category=UserWarning)
            npe.train(training_batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE, stop_after_epochs=STOP_AFTER,
                      max_num_epochs=target, resume_training=epochs > 0, show_train_summary=False)
        epochs = npe._summary["epochs_trained"][-1]
        if epochs < target or epochs >= max_epochs:  # converged (early stop) or out of epochs
            break
        if max_minutes is not None and time.perf_counter() - t0 > 60 * max_minutes:
            print(f"training stopped by the {max_minutes} min wall-clock cap after {epochs} epochs")
            break
    return npe.build_posterior()


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
    samples = posterior.sample_batched((num_samples,), x=x, show_progress_bars=False)
    return samples.numpy().astype(np.float32), theta.numpy()


def plot(task, pred, metrics, out: Path):
    """Corner plot of observation 0 (NPE vs reference), C2ST per observation, SBC ranks, TARP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from sbi.analysis import pairplot, plot_tarp, sbc_rank_plot
    from sbi.diagnostics.tarp import _run_tarp, get_tarp_references

    ref = task.reference_samples(2000)
    limits = [[lo, hi] for lo, hi in zip(task.low, task.high)]
    fig, _ = pairplot([ref[0], pred["samples"][0][:2000]], limits=limits, labels=list(task.labels),
                      points=task.true_parameters()[:1], figsize=(8, 8),
                      upper="contour", diag="kde", points_colors=["k"])
    fig.suptitle(f"{task.name}, observation 0: reference (blue) vs NPE (orange)")
    fig.savefig(out / "corner_obs0.png", dpi=80)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(range(len(metrics["c2st"])), metrics["c2st"], color="C1")
    ax.axhline(0.5, color="k", lw=1)
    ax.set(ylim=(0.4, 1.0), xlabel="observation", ylabel="C2ST", title=f"mean C2ST {metrics['c2st_mean']:.3f}")
    fig.tight_layout()
    fig.savefig(out / "c2st.png", dpi=80)
    if "calib_samples" in pred:
        s, th = torch.as_tensor(pred["calib_samples"]), torch.as_tensor(pred["calib_theta"])
        ranks = (s < th[None]).sum(0)
        fig, _ = sbc_rank_plot(ranks, s.shape[0], plot_type="hist", num_bins=20,
                               parameter_labels=list(task.param_names))
        fig.savefig(out / "sbc_ranks.png", dpi=80)
        torch.manual_seed(0)
        ecp, alpha = _run_tarp(s, th, get_tarp_references(th), z_score_theta=True)
        fig, _ = plot_tarp(ecp, alpha, title=f"TARP: ATC {metrics['tarp_atc']:.3f}, KS p {metrics['tarp_ks_pval']:.2f}")
        fig.savefig(out / "tarp.png", dpi=80)
    plt.close("all")


def versions() -> dict:
    return {p: metadata.version(p) for p in ("astrobench", "sbi", "torch", "accelerate", "jax", "numpyro", "numpy")}


def run(task_name: str, num_sims: int, fast: bool, out: Path, seed: int = 0, device: str = "cpu",
        max_epochs: int | None = None) -> dict | None:
    """The whole baseline; returns metrics.json's content on the main process, None on the others."""
    import torch
    from astrobench.metrics.sbi import score
    from astrobench.notebook import seed_everything
    from astrobench.sim.sbi_tasks import get_task

    t_start = time.perf_counter()
    if device == "cpu":
        torch.set_num_threads(TORCH_THREADS)
    seed_everything(seed)
    task = get_task(task_name)
    out.mkdir(parents=True, exist_ok=True)
    acc = make_accelerator(device)
    num_samples = FAST_SAMPLES if fast else NUM_SAMPLES
    config = dict(task=task.name, num_sims=num_sims, fast=fast, seed=seed, device=device, flow=FLOW,
                  embed_dim=EMBED_DIM, cnn=CNN[task.name], batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
                  max_epochs=max_epochs or (FAST_EPOCHS if fast else MAX_EPOCHS), stop_after_epochs=STOP_AFTER,
                  max_minutes=FAST_MINUTES if fast else MAX_MINUTES,
                  num_samples=num_samples, calib_sims=FAST_CALIB_SIMS if fast else CALIB_SIMS,
                  calib_samples=FAST_CALIB_SAMPLES if fast else CALIB_SAMPLES)
    t0 = time.perf_counter()
    theta, x = simulate_sharded(task, num_sims, seed, acc, log_dir=out)
    sim_seconds = time.perf_counter() - t0
    if not acc.is_main_process:  # training, scoring and files: once, on the main process
        return None
    if acc.num_processes > 1:
        config["processes"] = acc.num_processes
    npe = build_npe(task, device, seed, log_dir=out / "tensorboard")
    t0 = time.perf_counter()
    posterior = train(npe, theta, x, config["max_epochs"], config["max_minutes"])
    train_seconds = time.perf_counter() - t0
    samples, seconds_per_obs = sample_observations(posterior, task.observations(), num_samples)
    calib, calib_theta = calibration_samples(task, posterior, config["calib_sims"], config["calib_samples"], seed)
    pred = {"samples": samples, "calib_samples": calib, "calib_theta": calib_theta,
            "seconds_per_observation": np.float64(seconds_per_obs), "task": np.array(task.name)}
    np.savez_compressed(out / "predictions.npz", **pred)
    metrics = score(pred, task.name)  # the same scorer as `astrobench score sbi:<task> predictions.npz`
    plot(task, pred, metrics, out)
    summary = npe._summary
    config.update(epochs_trained=int(summary["epochs_trained"][-1]),
                  best_validation_loss=float(summary["best_validation_loss"][-1]),
                  training_loss_first_last=[float(summary["training_loss"][0]), float(summary["training_loss"][-1])])
    result = {"track": "sbi", "task": task.name, "dataset": task.name, "metrics": metrics, "config": config,
              "versions": {**versions(), "reference": task.reference_hash()[:16]},
              "seconds": round(time.perf_counter() - t_start, 1),
              "timing": {"simulate": round(sim_seconds, 2), "train": round(train_seconds, 1)}}
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    torch_save(npe, config, out)
    return result


def torch_save(npe, config: dict, out: Path):
    """The trained density estimator's weights, with the config beside them."""
    import torch

    torch.save(npe._neural_net.state_dict(), out / "npe.pt")
    (out / "npe_config.json").write_text(json.dumps(config, indent=1))


def main(argv=None) -> int:
    from astrobench.notebook import device as pick_device
    from astrobench.notebook import fast as fast_mode
    from astrobench.sim.sbi_tasks import names

    p = argparse.ArgumentParser(description="NPE baseline for the SBI track (sbi library, JAX simulators).")
    p.add_argument("--fast", action="store_true", help="FAST run: few simulations and epochs (also ASTROBENCH_FAST=1)")
    p.add_argument("--out", default="outputs/sbi")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--task", default=None, help=f"one of: {', '.join(names())} (default {DEFAULT_TASK})")
    p.add_argument("--dataset", default=None, help="alias of --task (the kit's common flag)")
    p.add_argument("--num-sims", type=int, default=None,
                   help=f"training simulations (default {NUM_SIMS}; FAST {FAST_SIMS})")
    p.add_argument("--max-epochs", type=int, default=None,
                   help=f"training epochs at most (default {MAX_EPOCHS}; FAST {FAST_EPOCHS})")
    args = p.parse_args(argv)
    task = args.task or args.dataset or DEFAULT_TASK
    if task not in names():
        print(f"npe.py: error: --task {task!r}; expected one of: {', '.join(names())}", file=sys.stderr)
        return 2
    fast = args.fast or fast_mode()
    num_sims = args.num_sims or (FAST_SIMS if fast else NUM_SIMS)
    if num_sims < 100:
        print(f"npe.py: error: --num-sims {num_sims}; expected at least 100", file=sys.stderr)
        return 2
    if args.max_epochs is not None and args.max_epochs < 1:
        print(f"npe.py: error: --max-epochs {args.max_epochs}; expected at least 1", file=sys.stderr)
        return 2
    device = pick_device(args.device)
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("npe.py: error: --device cuda: no CUDA GPU visible to torch; expected --device cpu or auto",
                  file=sys.stderr)
            return 2
    result = run(task, num_sims, fast, Path(args.out), seed=args.seed, device=device, max_epochs=args.max_epochs)
    if result is None:  # not the main process
        return 0
    m = result["metrics"]
    print(f"{task}: C2ST {m['c2st_mean']:.3f} | SBC min KS p {m.get('sbc_ks_pval_min', float('nan')):.3f} | "
          f"TARP ATC {m.get('tarp_atc', float('nan')):.3f} (KS p {m.get('tarp_ks_pval', float('nan')):.3f}) | "
          f"amortisation x{m.get('amortisation_ratio', float('nan')):.0f} | {result['seconds']} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

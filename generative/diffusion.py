"""Generative baseline: an unconditional DDPM on 3-band (g, r, z) galaxy stamps, sampled with DDIM.

    python generative/diffusion.py --fast --out outputs/generative            # ~1 min on a laptop CPU
    python generative/diffusion.py --resolution 32 --max-minutes 20 --out outputs/generative   # CPU run
    python generative/diffusion.py --device cuda --out outputs/generative     # 64 x 64, GPU

Model: diffusers ``UNet2DModel`` predicting the velocity v (v-prediction), ``DDPMScheduler`` (1000 steps,
cosine betas) for training, ``DDIMScheduler`` (deterministic, few steps) for sampling; AdamW, cosine
learning-rate schedule with warm-up, EMA weights (used for sampling), random flips and 90-degree
rotations (galaxy statistics do not care about orientation).

Normalisation, per band b (inverted on output): y = asinh(x / sigma_b) / 3, with x in nanomaggies and
sigma_b the band's sky noise (``ds.meta["config"]["sky_sigma"]``). Sky noise becomes ~unit-width
(x 1/3) and linear, while galaxy cores 1 000 sigma bright are compressed to y ~ 2.5, so one network
sees faint outskirts and bright cores at similar scales. Samples are clamped to the training range
of y before sinh, so a stray value cannot turn into a 10^5-nanomaggy pixel.

``--resolution 32`` (CPU users) trains on the central 32 x 32 pixels at the native 0.262"/pixel and
places each sample back into a 64 x 64 stamp of Gaussian sky noise with the band's sigma, so the
pixel scale, PSF and noise stay exact; galaxies larger than the crop are truncated (the scored
statistics show where that costs).

Checkpoints (``OUT/checkpoint``): ``model_ema.safetensors`` + ``config.json`` (UNet, scheduler,
normalisation, run config) for sampling, and ``train_state.safetensors`` + ``train_state.json``
(raw weights, AdamW moments, EMA, learning-rate schedule, RNG state) so ``--resume`` continues an
interrupted run (``--max-minutes`` or ``--stop-after``) to exactly the result of an uninterrupted one.

Scaling (Hugging Face accelerate, the diffusers-examples pattern): the same file runs unchanged under
``accelerate launch`` (several GPUs, or gloo DDP on CPU cores). Each process trains on its own shard of the
training images (rank r takes images r, r + P, ...) with its own random stream, so the effective batch is
batch x processes x ``--grad-accum``; ``--mixed-precision`` (or ``accelerate launch --mixed_precision``)
turns on fp16/bf16 autocast. Only the main process writes checkpoints, samples, scores and writes
metrics.json. A plain ``python diffusion.py`` run is one process and gives exactly the numbers it gave before.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from astrobench import scaling
from astrobench.scaling import make_accelerator  # shared by every baseline

# ---------------------------------------------------------------- configuration
FULL = dict(steps=3000, batch=32, lr=2e-3, warmup=100, channels=(32, 64, 64), layers=1, ema_decay=0.999,
            samples=2000, ddim_steps=20, ckpt_every=250, train_images=None)
FAST = dict(steps=20, batch=16, lr=2e-3, warmup=5, channels=(8, 16, 16), layers=1, ema_decay=0.99,
            samples=200, ddim_steps=5, ckpt_every=20, train_images=None)
T_TRAIN = 1000  # DDPM noise levels
SCALE = 3.0  # y = asinh(x / sky_sigma) / SCALE
WEIGHT_DECAY = 1e-4
GRAD_CLIP = 1.0
SAMPLE_BATCH = 250
CKPT = "checkpoint"


class CliError(Exception):
    pass


def set_threads(n=0, processes=1):
    """torch CPU threads: n, or all cores (shared among ``processes``) unless the CPU is already busy (then 1:
    OpenMP spin-waits collapse when cores are oversubscribed; measured 4x slower convolutions at load 9 on 2 cores)."""
    import torch

    cores = max(1, (os.cpu_count() or 1) // processes)
    busy = hasattr(os, "getloadavg") and os.getloadavg()[0] >= cores
    torch.set_num_threads(n or (1 if busy else cores))
    return torch.get_num_threads()


# ---------------------------------------------------------------- data and normalisation


def normalise(x, sky):
    """nanomaggies -> network units, per band: asinh(x / sigma_b) / SCALE."""
    import torch

    return torch.asinh(x / torch.as_tensor(sky, dtype=x.dtype)[:, None, None]) / SCALE


def denormalise(y, sky):
    import torch

    return torch.sinh(y * SCALE) * torch.as_tensor(sky, dtype=y.dtype)[:, None, None]


def crop(images, resolution):
    """Central ``resolution`` x ``resolution`` pixels (native pixel scale)."""
    lo = (images.shape[-1] - resolution) // 2
    return images[..., lo:lo + resolution, lo:lo + resolution]


def load_training_images(dataset, fast, resolution, limit=None):
    """(train images normalised to network units as a float32 tensor, dataset metadata)."""
    import torch
    from astrobench import data

    ds = data.load(dataset, "train", fast=fast)
    if "images" not in ds.arrays or tuple(ds.images.shape[1:]) != (3, 64, 64):
        raise CliError(f"--dataset {dataset}: expected a dataset with 3 x 64 x 64 'images'")
    x = torch.from_numpy(np.array(crop(ds.images[:limit], resolution), dtype=np.float32))
    return normalise(x, ds.meta["config"]["sky_sigma"]), ds.meta


# ---------------------------------------------------------------- model, checkpoints


def make_model(resolution, channels, layers, seed):
    import torch
    from diffusers import UNet2DModel

    torch.manual_seed(seed)  # identical initial weights for a fresh and a resumed run
    return UNet2DModel(sample_size=resolution, in_channels=3, out_channels=3, block_out_channels=tuple(channels),
                       layers_per_block=layers, down_block_types=("DownBlock2D",) * len(channels),
                       up_block_types=("UpBlock2D",) * len(channels), norm_num_groups=8)


def make_noise_scheduler():
    from diffusers import DDPMScheduler

    # clip_sample=False: normalised galaxies exceed [-1, 1]. v-prediction (Salimans & Ho 2022) stays well
    # conditioned at the noisiest steps, where an epsilon model's x0 estimate divides by sqrt(abar) ~ 0;
    # "leading" DDIM spacing starts at t = 950 (abar = 6e-3), not at t = 999 (abar = 2e-9): measured here,
    # an epsilon model sampled from t = 999 gave colour-cast, noise-dominated stamps.
    return DDPMScheduler(num_train_timesteps=T_TRAIN, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                         prediction_type="v_prediction", timestep_spacing="leading")


def save_checkpoint(path, model, ema, opt, lr_sched, gen, step, losses, config, rng_ranks=None):
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    ema_model = make_model(config["resolution"], config["channels"], config["layers"], config["seed"])
    ema.copy_to(ema_model.parameters())  # (a CPU copy: safetensors files hold CPU tensors)
    save_file({k: v.contiguous() for k, v in ema_model.state_dict().items()}, path / "model_ema.safetensors")
    config_file = {"unet": dict(model.config), "scheduler": dict(make_noise_scheduler().config),
                   "normalisation": config["normalisation"], "run": config, "step": step}
    (path / "config.json").write_text(json.dumps(config_file, indent=1, default=list))
    tensors = {f"model.{k}": v.cpu().contiguous() for k, v in model.state_dict().items()}
    for i, s in opt.state_dict()["state"].items():
        tensors.update({f"opt.{i}.{k}": torch.as_tensor(v).cpu() for k, v in s.items()})
    tensors.update({f"ema.{i}": p.cpu().contiguous() for i, p in enumerate(ema.shadow_params)})
    tensors["rng"] = gen.get_state()
    if rng_ranks is not None:  # several processes: every rank's random stream, for an exact resume
        tensors["rng_ranks"] = rng_ranks
    tensors["losses"] = torch.tensor(losses, dtype=torch.float64)
    save_file(tensors, path / "train_state.safetensors")
    ema_meta = {k: v for k, v in ema.state_dict().items() if k != "shadow_params"}
    (path / "train_state.json").write_text(json.dumps({"step": step, "lr_scheduler": lr_sched.state_dict(),
                                                       "param_groups": opt.state_dict()["param_groups"],
                                                       "ema": ema_meta}, indent=1))


def load_checkpoint(path, model, ema, opt, lr_sched, gen, rank=0, processes=1):
    """Restore everything save_checkpoint wrote; returns (step, losses)."""
    from safetensors.torch import load_file

    path = Path(path)
    meta = json.loads((path / "train_state.json").read_text())
    t = load_file(path / "train_state.safetensors")
    dev = next(model.parameters()).device
    model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    state = {}
    for k, v in t.items():
        if k.startswith("opt."):
            _, i, name = k.split(".", 2)
            state.setdefault(int(i), {})[name] = v if name == "step" else v.to(dev)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    lr_sched.load_state_dict(meta["lr_scheduler"])
    shadow = [t[f"ema.{i}"].to(dev) for i in range(len(ema.shadow_params))]
    ema.load_state_dict({**meta["ema"], "shadow_params": shadow})
    ranks = t.get("rng_ranks")
    gen.set_state(ranks[rank] if ranks is not None and len(ranks) == processes else t["rng"])
    return meta["step"], t["losses"].tolist()


def load_model(path):
    """(EMA UNet2DModel in eval mode, config dict) from a checkpoint folder, for sampling."""
    from diffusers import UNet2DModel
    from safetensors.torch import load_file

    config = json.loads((Path(path) / "config.json").read_text())
    model = UNet2DModel.from_config(config["unet"])
    model.load_state_dict(load_file(Path(path) / "model_ema.safetensors"))
    return model.eval(), config


# ---------------------------------------------------------------- training


def train(x, config, out, resume=False, stop_after=None, max_minutes=None, progress=True, device="cpu",
          accelerator=None):
    """Train the DDPM on normalised images ``x`` (N, 3, R, R); returns (EMA model, losses, finished).
    Under several processes each trains on its shard of ``x``; only the main process writes checkpoints."""
    import torch
    import torch.nn.functional as F
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    acc = accelerator or make_accelerator(device, grad_accum=config.get("grad_accum", 1))
    rank, world, device = acc.process_index, acc.num_processes, acc.device
    x = x[rank::world]  # this process's shard (all of x in a single process)
    raw = make_model(config["resolution"], config["channels"], config["layers"], config["seed"]).to(device)
    ema = EMAModel(raw.parameters(), decay=config["ema_decay"], use_ema_warmup=True)
    raw_opt = torch.optim.AdamW(raw.parameters(), lr=config["lr"], weight_decay=WEIGHT_DECAY)
    # the schedule counts optimizer steps, so it is stepped by hand (not prepared: accelerate would step it
    # once per process)
    lr_sched = get_cosine_schedule_with_warmup(raw_opt, config["warmup"], config["steps"])
    model, opt = acc.prepare(raw, raw_opt)  # DDP wrapper + autocast/grad scaler where asked; as-is in one process
    # every random draw of the loop comes from here; one stream per process (rank 0's is the single-process one)
    gen = torch.Generator().manual_seed(config["seed"] + 1000 * rank)
    noise_sched = make_noise_scheduler()
    ckpt = Path(out) / CKPT
    step, losses = 0, []
    if resume and (ckpt / "train_state.json").is_file():
        step, losses = load_checkpoint(ckpt, raw, ema, raw_opt, lr_sched, gen, rank, world)
    t0 = time.perf_counter()
    bar = tqdm(range(step, config["steps"]), desc="training", initial=step, total=config["steps"],
               disable=not progress or not acc.is_main_process)
    model.train()
    for step in bar:
        micro = []
        for _ in range(acc.gradient_accumulation_steps):  # accelerate syncs and steps on the last micro-batch
            with acc.accumulate(model):
                idx = torch.randint(len(x), (config["batch"],), generator=gen)
                if world > 1 and step == 0 and not micro:  # which images this rank saw (the DDP test reads it)
                    log = {"rank": rank, "processes": world, "first_indices": (idx * world + rank).tolist()}
                    (Path(out) / f"shard_rank{rank}.json").write_text(json.dumps(log))
                batch = x[idx]
                k, flip = torch.randint(4, (2,), generator=gen).tolist()  # random orientation, one per batch
                batch = torch.rot90(batch, k, dims=(2, 3))
                batch = batch.flip(3) if flip % 2 else batch
                noise = torch.randn(batch.shape, generator=gen)  # drawn on the CPU: same numbers on any device
                t = torch.randint(T_TRAIN, (len(batch),), generator=gen)
                batch, noise, t = batch.to(device), noise.to(device), t.to(device)
                target = noise_sched.get_velocity(batch, noise, t)  # v = sqrt(abar) eps - sqrt(1 - abar) x0
                loss = F.mse_loss(model(noise_sched.add_noise(batch, noise, t), t).sample.float(), target)
                acc.backward(loss)  # (divided by the accumulation steps)
                if acc.sync_gradients:
                    acc.clip_grad_norm_(model.parameters(), GRAD_CLIP)
                opt.step()  # a no-op until the last micro-batch
                opt.zero_grad(set_to_none=True)
            micro.append(loss.item())
        lr_sched.step()
        ema.step(raw.parameters())
        losses.append(float(np.mean(micro)))
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        done = step + 1
        out_of_time = max_minutes is not None and time.perf_counter() - t0 > 60 * max_minutes
        if world > 1:  # every process stops at the same step (the main one's clock decides)
            out_of_time = bool(acc.reduce(torch.tensor([float(out_of_time and acc.is_main_process)],
                                                       device=device), "sum").item())
        interrupted = out_of_time or (stop_after is not None and done >= stop_after)
        if done % config["ckpt_every"] == 0 or done == config["steps"] or interrupted:
            rng_ranks = acc.gather(gen.get_state()[None].to(device)).cpu() if world > 1 else None
            if acc.is_main_process:
                save_checkpoint(ckpt, raw, ema, raw_opt, lr_sched, gen, done, losses, config, rng_ranks)
        if interrupted:
            break
    acc.wait_for_everyone()
    finished = len(losses) >= config["steps"]
    ema.copy_to(raw.parameters())
    return raw.eval(), losses, finished


# ---------------------------------------------------------------- sampling


def sample(model, n, sky, y_range, ddim_steps, seed=0, batch=SAMPLE_BATCH, progress=True):
    """n galaxies in nanomaggies, (n, 3, 64, 64) float32: DDIM (eta = 0) from Gaussian noise, clamp, invert."""
    import torch
    from diffusers import DDIMScheduler
    from tqdm.auto import tqdm

    ddim = DDIMScheduler.from_config(make_noise_scheduler().config)
    ddim.set_timesteps(ddim_steps)
    res = model.config.sample_size
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for start in tqdm(range(0, n, batch), desc=f"sampling ({ddim_steps} DDIM steps)", disable=not progress):
            y = torch.randn((min(batch, n - start), 3, res, res), generator=gen).to(dev)
            for t in ddim.timesteps:
                y = ddim.step(model(y, t.to(dev)).sample, t, y).prev_sample
            out.append(denormalise(y.clamp(*y_range).cpu(), sky))
    x = torch.cat(out).numpy().astype(np.float32)
    if res < 64:  # embed the crop into a stamp of sky noise at the native pixel scale
        stamp = np.random.default_rng(seed).normal(size=(n, 3, 64, 64)) * np.asarray(sky)[None, :, None, None]
        stamp = stamp.astype(np.float32)
        crop(stamp, res)[...] = x
        x = stamp
    return x


# ---------------------------------------------------------------- figures


def plot_samples(real, fake, path, n=16):
    import matplotlib.pyplot as plt
    from astrobench.plotting import image_grid

    scale = np.maximum(np.percentile(real[:256], 99.5, axis=(0, 2, 3)), 1e-12)
    fig = image_grid(np.concatenate([real[:n], fake[:n]]), titles=["real"] * n + ["generated"] * n, scale=scale)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_statistics(real_stats, fake_stats, path):
    import matplotlib.pyplot as plt
    from astrobench.metrics.generative import STATS

    fig, axes = plt.subplots(3, 4, figsize=(13, 8))
    for ax, s in zip(axes.flat, STATS):
        lo, hi = np.percentile(np.concatenate([real_stats[s], fake_stats[s]]), [0.5, 99.5])
        bins = np.linspace(lo, hi, 40)
        ax.hist(real_stats[s], bins, density=True, histtype="step", lw=1.5, label="test (real)")
        ax.hist(fake_stats[s], bins, density=True, histtype="step", lw=1.5, label="generated")
        ax.set_title(s)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------- main


def parse_args(argv=None):
    class Parser(argparse.ArgumentParser):
        def error(self, message):  # one line, exit 2
            raise CliError(message)

    p = Parser(description="Unconditional DDPM on galaxy images (generative track baseline).")
    p.add_argument("--fast", action="store_true", help="FAST mode: tiny model, few steps, FAST data split")
    p.add_argument("--out", default="outputs/generative", help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--dataset", default="galaxies")
    p.add_argument("--resolution", type=int, choices=[32, 64],
                   help="64 (default), or 32: the central crop, for CPUs (the FAST default)")
    p.add_argument("--steps", type=int, help="training steps (default: 3000 full, 40 FAST)")
    p.add_argument("--channels", type=int, nargs="+", help="UNet block widths, multiples of 8")
    p.add_argument("--samples", type=int, help="samples to generate and score (default: 2000 full, 200 FAST)")
    p.add_argument("--ddim-steps", type=int, help="DDIM sampling steps (default: 20 full, 5 FAST)")
    p.add_argument("--max-minutes", type=float, help="stop training after this wall time (checkpointed)")
    p.add_argument("--stop-after", type=int, help="stop after this many steps, as if interrupted")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores, 1 if the CPU is busy)")
    scaling.add_arguments(p)  # --grad-accum, --mixed-precision
    args = p.parse_args(argv)
    for name in ("steps", "samples", "ddim_steps", "threads", "stop_after", "grad_accum"):
        v = getattr(args, name)
        if v is not None and v < (0 if name == "threads" else 1):
            raise CliError(f"--{name.replace('_', '-')} {v}: expected a positive integer")
    if args.channels and any(c % 8 for c in args.channels):
        raise CliError(f"--channels {args.channels}: expected multiples of 8 (GroupNorm with 8 groups)")
    return args


def main(argv=None):
    t_start = time.perf_counter()
    args = parse_args(argv)
    import torch
    from astrobench import data
    from astrobench.metrics import generative as metric
    from astrobench.notebook import device as pick_device
    from astrobench.notebook import seed_everything

    dev = pick_device(args.device)
    dev = "cpu" if dev == "mps" else dev  # mps lacks some ops the UNet uses; the CPU is the safe default
    try:
        acc = scaling.accelerator_from_args(args, dev)
    except ValueError as err:  # no GPU for cuda, fp16 without a GPU
        raise CliError(str(err)) from None
    set_threads(args.threads, acc.num_processes)
    seed_everything(args.seed)
    base = dict(FAST if args.fast else FULL)
    for key in ("steps", "samples", "ddim_steps"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    if args.channels:
        base["channels"] = tuple(args.channels)
    base["ckpt_every"] = min(base["ckpt_every"], base["steps"])
    args.resolution = args.resolution or (32 if args.fast else 64)

    try:
        x, meta = load_training_images(args.dataset, args.fast, args.resolution, base["train_images"])
    except data.DataError as err:
        raise CliError(str(err).splitlines()[0]) from None
    sky = [float(s) for s in meta["config"]["sky_sigma"]]
    y_range = (float(x.min()), float(x.max()))
    config = dict(base, channels=list(base["channels"]), seed=args.seed, resolution=args.resolution,
                  dataset=args.dataset, fast=args.fast, n_train=len(x), threads=torch.get_num_threads(), device=dev,
                  grad_accum=args.grad_accum, mixed_precision=acc.mixed_precision, processes=acc.num_processes,
                  normalisation={"kind": "asinh", "sky_sigma": sky, "scale": SCALE, "clamp": list(y_range),
                                 "formula": "y = asinh(x / sky_sigma_b) / scale; x = sky_sigma_b sinh(scale y)"})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    model, losses, finished = train(x, config, out, resume=args.resume, stop_after=args.stop_after,
                                    max_minutes=args.max_minutes, device=dev, accelerator=acc)
    t_train = time.perf_counter() - t0
    if not acc.is_main_process:  # sampling and scoring happen once, on the main process
        acc.end_training()
        return 0
    if not finished and args.stop_after is not None:
        print(f"stopped after {len(losses)} of {config['steps']} steps; continue with --resume", file=sys.stderr)
        return 0

    t0 = time.perf_counter()
    fake = sample(model, config["samples"], sky, y_range, config["ddim_steps"], seed=args.seed + 1)
    t_sample = time.perf_counter() - t0
    np.savez_compressed(out / "predictions.npz", images=fake, fast=np.bool_(args.fast), dataset=np.str_(args.dataset))

    t0 = time.perf_counter()
    pred = dict(np.load(out / "predictions.npz"))
    metrics, fake_stats = metric.score(pred, return_stats=True)  # the code path of `astrobench score generative`
    t_score = time.perf_counter() - t0

    test = data.load(args.dataset, "test", fast=args.fast)
    plot_samples(np.asarray(test.images), fake, out / "samples.png")
    ref_stats = metric.reference(args.dataset, bool(args.fast))[0]
    plot_statistics(ref_stats, fake_stats, out / "statistics.png")

    import diffusers

    versions = {"numpy": np.__version__, "torch": torch.__version__, "diffusers": diffusers.__version__,
                "python": sys.version.split()[0],
                "dataset": {k: meta[k] for k in ("name", "version", "seed", "sha256")}}
    try:
        from importlib.metadata import version

        versions["astrobench"] = version("astrobench")
    except Exception:  # not installed (running from a plain checkout)
        versions["astrobench"] = "source"
    result = {"track": "generative", "task": "unconditional", "dataset": args.dataset, "metrics": metrics,
              "config": dict(config, steps_done=len(losses), training_finished=finished,
                             final_loss=float(np.mean(losses[-50:]))),
              "versions": versions, "seconds": round(time.perf_counter() - t_start, 1),
              "timing": {"train_s": round(t_train, 1), "sample_s": round(t_sample, 1), "score_s": round(t_score, 1),
                         "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}}
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    acc.end_training()
    print(f"W_ratio {metrics['W_ratio']:.3f}  W_mean {metrics['W_mean']:.4f}  W_floor {metrics['W_floor']:.4f}  "
          f"({len(losses)} steps, {result['seconds']:.0f} s) -> {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CliError as err:
        print(f"diffusion.py: error: {err}", file=sys.stderr)
        sys.exit(2)

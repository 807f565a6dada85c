"""Generative baseline: an unconditional DDPM on 3-band (g, r, z) galaxy stamps, sampled with DDIM.

    python generative/diffusion.py [--fast] [--out DIR] [--seed N] [--device auto|cpu|cuda] [--dataset NAME]
        [--threads N] [--steps N] [--set KEY=VALUE] [--max-minutes M] [--stop-after N] [--resume] [--grad-accum N]
        [--mixed-precision no|fp16|bf16] [--pretrained]

Model (the slot ``build_model``): diffusers ``UNet2DModel`` predicting the velocity v (v-prediction);
``DDPMScheduler`` (1000 noise levels, cosine betas) for training, ``DDIMScheduler`` (few steps; ``ddim_eta``
0: deterministic) for sampling; AdamW, cosine learning rate with warm-up over the ``steps`` optimizer steps
(a function of the step alone), EMA weights (used for sampling), random flips and 90-degree rotations.

Normalisation, per band b (inverted on output): y = asinh(x / sigma_b) / 3, x in nanomaggies, sigma_b the band's
sky noise: noise becomes linear, ~1/3 wide, 1 000-sigma cores y ~ 2.5; samples are clamped to the training range.

``resolution=32`` (FULL and FAST: the CPU setting) trains on the central 32 x 32 pixels at the native
0.262"/pixel and places each sample into a 64 x 64 stamp of Gaussian sky noise with the band's sigma; on a GPU
``--set resolution=64`` models the whole stamp. Checkpoints: ``OUT/checkpoint`` (``diffusion_io.py``), from which
``--resume`` continues to exactly the uninterrupted result. ``--pretrained``: no training; the shipped EMA model
(``pretrained/``: UNet, sky sigmas, clamp range) is sampled with the mode's samples and DDIM settings. Under
``accelerate launch`` each process trains on its shard of the images (rank r: r, r + P, ...) with its own random
stream (effective batch: batch x processes x grad-accum); only the main process writes files.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import diffusion_io
import numpy as np
import torch
from astrobench import baseline, data
from torch import nn

SCRIPT = "diffusion.py"
DATASET = "galaxies"
# ---------------------------------------------------------------- settings: FULL and FAST (--set KEY=VALUE)
FULL = dict(steps=3000, batch=32, lr=2e-3, warmup=100, resolution=32, channels=(16, 32, 32), layers=1,
            ema_decay=0.999, samples=2000, ddim_steps=100, ddim_eta=0.0, ckpt_every=250, train_images=None)
FAST = dict(steps=20, batch=16, lr=2e-3, warmup=5, resolution=32, channels=(8, 16, 16), layers=1,
            ema_decay=0.99, samples=200, ddim_steps=5, ddim_eta=0.0, ckpt_every=20, train_images=None)
# FULL: sized for about an hour on a 2-core CPU (README). warmup: optimizer steps. resolution: 32 (the central
# crop) or 64. channels: UNet block widths, multiples of 8. samples: generated and scored (>= 1000 against the
# full test split, >= its size against the FAST one). ddim_steps: 100, not 20 (README: W_ratio 10.8 -> 3.8 with the
# same weights). ddim_eta: 0 deterministic, 1 DDPM-like (fresh noise at each step). train_images: first N only.
SAMPLING = ("samples", "ddim_steps", "ddim_eta")  # the mode's, never the shipped model's (--pretrained)
T_TRAIN, SCALE = 1000, 3.0  # DDPM noise levels; y = asinh(x / sky_sigma) / SCALE
WEIGHT_DECAY, GRAD_CLIP = 1e-4, 1.0  # AdamW's weight decay; the gradient-norm clip
SAMPLE_BATCH = 250
CKPT = "checkpoint"
PRETRAINED = Path(__file__).resolve().parent / "pretrained"  # the shipped FULL model (scripts/ship_pretrained.py)


def check_settings(cfg: dict, stop_after=None) -> None:
    """One-line errors for settings the run could not use, before any data is loaded."""
    for key in ("steps", "batch", "samples", "ddim_steps", "ckpt_every", "layers", "warmup", "train_images"):
        low = 0 if key == "warmup" else 1
        if key == "train_images" and cfg[key] is None:
            continue
        if not isinstance(cfg[key], int) or cfg[key] < low:
            raise baseline.BaselineError(f"--set {key}={cfg[key]!r}: expected an integer >= {low}")
    ch = cfg["channels"]
    if not ch or not all(isinstance(c, int) and c > 0 and c % 8 == 0 for c in ch):
        raise baseline.BaselineError(f"--set channels={ch!r}: expected UNet widths that are multiples of 8 "
                                     "(GroupNorm with 8 groups), e.g. (16, 32, 32)")
    if cfg["resolution"] not in (16, 32, 64) or cfg["resolution"] % 2 ** (len(ch) - 1):
        raise baseline.BaselineError(f"--set resolution={cfg['resolution']!r}: expected 16, 32 or 64, divisible "
                                     f"by 2^(levels - 1) = {2 ** (len(ch) - 1)}")
    bounds = dict(ddim_steps=(f"<= {T_TRAIN}", cfg["ddim_steps"] <= T_TRAIN), lr=("> 0", cfg["lr"] > 0),
                  ema_decay=("in [0, 1)", 0 <= cfg["ema_decay"] < 1), ddim_eta=("in [0, 1]", 0 <= cfg["ddim_eta"] <= 1))
    for key, (want, ok) in bounds.items():
        if not ok:
            raise baseline.BaselineError(f"--set {key}={cfg[key]!r}: expected {key} {want}")
    if stop_after is not None and stop_after < 1:
        raise baseline.BaselineError(f"--stop-after {stop_after}: expected a positive integer")


# ---------------------------------------------------------------- data and normalisation


def normalise(x, sky):
    """nanomaggies -> network units, per band: asinh(x / sigma_b) / SCALE."""
    return torch.asinh(x / torch.as_tensor(sky, dtype=x.dtype)[:, None, None]) / SCALE


def denormalise(y, sky):
    return torch.sinh(y * SCALE) * torch.as_tensor(sky, dtype=y.dtype)[:, None, None]


def crop(images, resolution):
    """Central ``resolution`` x ``resolution`` pixels (native pixel scale)."""
    lo = (images.shape[-1] - resolution) // 2
    return images[..., lo:lo + resolution, lo:lo + resolution]


def load_training_images(dataset=DATASET, fast=None, resolution=32, limit=None):
    """(train images normalised to network units as a float32 tensor (N, 3, R, R), dataset metadata)."""
    ds = data.load(dataset, "train", fast=fast)
    if "images" not in ds.arrays or tuple(ds.images.shape[1:]) != (3, 64, 64):
        raise baseline.BaselineError(f"--dataset {dataset}: expected a dataset with 3 x 64 x 64 'images'")
    x, sky = torch.empty((len(ds.images[:limit]), 3, resolution, resolution)), ds.meta["config"]["sky_sigma"]
    for i in range(0, len(x), 2048):  # in chunks, each one's read pages given back: a 1 GB map (Binder: 2 GB)
        x.numpy()[i : i + 2048] = crop(ds.images[: len(x)][i : i + 2048], resolution)
        x[i : i + 2048] = normalise(x[i : i + 2048], sky)  # (the same bits as all at once)
        data.release_pages(ds.images)
    return x, ds.meta


def make_noise_scheduler():
    from diffusers import DDPMScheduler

    # clip_sample=False: normalised galaxies exceed [-1, 1]. v-prediction (Salimans & Ho 2022) stays well
    # conditioned at the noisiest steps, where an epsilon model's x0 estimate divides by sqrt(abar) ~ 0;
    # "leading" DDIM spacing starts at t = 950 (abar = 6e-3), not at t = 999 (abar = 2e-9): measured here,
    # an epsilon model sampled from t = 999 gave colour-cast, noise-dominated stamps.
    return DDPMScheduler(num_train_timesteps=T_TRAIN, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                         prediction_type="v_prediction", timestep_spacing="leading")


# ================================================================ MODEL SLOT: replace build_model with your own


def build_model(cfg: dict) -> nn.Module:
    """Replace this with your model. Interface:

    ``model(y, t) -> v``: y (B, 3, R, R) float32 noisy images in network units (y0 = asinh(x / sigma_b) / 3
    per band, x in nanomaggies; y = sqrt(abar_t) y0 + sqrt(1 - abar_t) eps), R = ``cfg["resolution"]``;
    t (B,) int64 noise levels in [0, 1000) of the cosine DDPM schedule. v (B, 3, R, R) float32: the predicted
    velocity sqrt(abar_t) eps - sqrt(1 - abar_t) y0; the loss is the mean squared error against it, and DDIM
    sampling turns it into images. ``cfg``: the FULL/FAST settings (resolution, channels, layers)."""
    from diffusers import UNet2DModel

    ch = tuple(cfg["channels"])
    return VelocityUNet(UNet2DModel(sample_size=cfg["resolution"], in_channels=3, out_channels=3,
                                    block_out_channels=ch, layers_per_block=cfg["layers"], norm_num_groups=8,
                                    down_block_types=("DownBlock2D",) * len(ch),
                                    up_block_types=("UpBlock2D",) * len(ch)))


class VelocityUNet(nn.Module):
    """A diffusers UNet whose output is the tensor itself (``.sample``)."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, y, t):
        return self.unet(y, t).sample


def load_model(path):
    """(EMA model in eval mode, the checkpoint's config.json) from a checkpoint folder, for sampling."""
    from safetensors.torch import load_file

    config = json.loads((Path(path) / "config.json").read_text())
    model = build_model(config["run"])
    model.load_state_dict(load_file(Path(path) / "model_ema.safetensors"))
    return model.eval(), config


def load_pretrained(meta, device="cpu"):
    """(EMA model in eval mode, its checkpoint config.json, the command that trained it) shipped in PRETRAINED,
    after baseline.load_pretrained checked its files and that it was trained on the data of ``meta``."""
    state, config = baseline.load_pretrained(PRETRAINED, meta)
    model = build_model(config["run"])
    model.load_state_dict(state)
    return model.to(device).eval(), config, json.loads((PRETRAINED / "manifest.json").read_text())["command"]


# ================================================================ training


def train(x, cfg, out, run=None, resume=False, stop_after=None, progress=True):
    """Train the DDPM on normalised images ``x`` (N, 3, R, R) for ``cfg["steps"]`` optimizer steps; returns
    (EMA model, losses, finished). Checkpoints every ``ckpt_every`` steps, at the end and when interrupted
    (``stop_after`` steps, or ``--max-minutes`` through ``run.out_of_time``): only the main process writes."""
    import torch.nn.functional as F
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    run = run or baseline.local_run()
    acc, device = run.acc, run.acc.device
    rank, world = acc.process_index, acc.num_processes
    x = baseline.shard(acc, x)  # this process's images: r, r + P, ... (all of them in one process)
    torch.manual_seed(run.seed)  # identical initial weights for a fresh and a resumed run
    raw = build_model(cfg).to(device)
    ema = EMAModel(raw.parameters(), decay=cfg["ema_decay"], use_ema_warmup=True)
    raw_opt = torch.optim.AdamW(raw.parameters(), lr=cfg["lr"], weight_decay=WEIGHT_DECAY)
    # stepped by hand once per optimizer step (accelerate would step a prepared one once per process)
    lr_sched = get_cosine_schedule_with_warmup(raw_opt, cfg["warmup"], cfg["steps"])
    model, opt = acc.prepare(raw, raw_opt)  # DDP wrapper + autocast/grad scaler where asked; as-is in one process
    # every random draw of the loop comes from here; one stream per process (rank 0's is the single-process one)
    gen = torch.Generator().manual_seed(run.seed + 1000 * rank)
    noise_sched = make_noise_scheduler()
    ckpt = Path(out) / CKPT
    step, losses = 0, []
    if resume and diffusion_io.check_resume(ckpt, cfg):
        step, losses = diffusion_io.load_checkpoint(ckpt, raw, ema, raw_opt, lr_sched, gen, rank, world)
    bar = tqdm(range(step, cfg["steps"]), desc="training", initial=step, total=cfg["steps"],
               disable=not progress or not run.is_main)
    model.train()
    for step in bar:
        micro = []
        for _ in range(acc.gradient_accumulation_steps):  # accelerate syncs and steps on the last micro-batch
            with acc.accumulate(model):
                batch = x[torch.randint(len(x), (cfg["batch"],), generator=gen)]
                k, flip = torch.randint(4, (2,), generator=gen).tolist()  # random orientation, one per batch
                batch = torch.rot90(batch, k, dims=(2, 3))
                batch = batch.flip(3) if flip % 2 else batch
                noise = torch.randn(batch.shape, generator=gen)  # drawn on the CPU: same numbers on any device
                t = torch.randint(T_TRAIN, (len(batch),), generator=gen)
                batch, noise, t = batch.to(device), noise.to(device), t.to(device)
                target = noise_sched.get_velocity(batch, noise, t)  # v = sqrt(abar) eps - sqrt(1 - abar) x0
                loss = F.mse_loss(model(noise_sched.add_noise(batch, noise, t), t).float(), target)
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
        interrupted = run.out_of_time() or (stop_after is not None and done >= stop_after)
        if done % cfg["ckpt_every"] == 0 or done == cfg["steps"] or interrupted:
            rng_ranks = acc.gather(gen.get_state()[None].to(device)).cpu() if world > 1 else None
            if run.is_main:
                diffusion_io.save_checkpoint(ckpt, raw, ema, raw_opt, lr_sched, gen, done, losses, cfg,
                                             noise_sched.config, rng_ranks)
        if interrupted:
            break
    bar.close()
    acc.wait_for_everyone()
    model = acc.unwrap_model(model, keep_fp32_wrapper=False)  # drops the DDP wrapper and the autocast forward
    ema.copy_to(model.parameters())
    return model.eval(), losses, len(losses) >= cfg["steps"]


# ================================================================ sampling


@torch.no_grad()
def sample(model, n, sky, y_range, ddim_steps, resolution, seed=0, batch=SAMPLE_BATCH, progress=True, eta=0.0):
    """n galaxies in nanomaggies, (n, 3, 64, 64) float32: DDIM from Gaussian noise, clamp, invert;
    a model of the central ``resolution`` pixels is placed into a stamp of sky noise."""
    from diffusers import DDIMScheduler
    from tqdm.auto import tqdm

    ddim = DDIMScheduler.from_config(make_noise_scheduler().config)
    ddim.set_timesteps(ddim_steps)
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in tqdm(range(0, n, batch), desc=f"sampling ({ddim_steps} DDIM steps)", disable=not progress):
        y = torch.randn((min(batch, n - start), 3, resolution, resolution), generator=gen).to(dev)
        for t in ddim.timesteps:
            y = ddim.step(model(y, t.expand(len(y)).to(dev)), t, y, eta=eta, generator=gen).prev_sample
        out.append(denormalise(y.clamp(*y_range).cpu(), sky))
    x = torch.cat(out).numpy().astype(np.float32)
    if resolution < 64:  # embed the crop into a stamp of sky noise at the native pixel scale
        stamp = np.random.default_rng(seed).normal(size=(n, 3, 64, 64)) * np.asarray(sky)[None, :, None, None]
        stamp = stamp.astype(np.float32)
        crop(stamp, resolution)[...] = x
        x = stamp
    return x


# ================================================================ main


def parser():
    p = baseline.parser(SCRIPT, __doc__, out="outputs/generative", dataset=DATASET, budget="steps",
                        budget_help="optimizer steps (FULL 3000, FAST 20)")
    p.add_argument("--stop-after", type=int, metavar="N", help="stop after N steps, checkpointed, as if "
                   "interrupted (no sampling); continue with --resume")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint (written with the same "
                   "settings) to exactly the uninterrupted result; a fresh start when there is none")
    return p


def main(argv=None) -> int:
    """Train, sample, score and write everything (once, on the main process)."""
    from astrobench.metrics import generative as metric

    try:
        args = parser().parse_args(argv)
        cfg = baseline.settings(FULL, FAST, args)
        run = baseline.start(args)
        check_settings(cfg, args.stop_after)
        diffusion_io.check_dataset(args.dataset, run.fast, cfg["samples"], metric.MIN_SAMPLES_FULL)
        if args.pretrained and (args.resume or args.stop_after):
            raise baseline.BaselineError("--pretrained: nothing is trained; expected no --resume or --stop-after")
        if not args.pretrained:
            x, meta = load_training_images(args.dataset, run.fast, cfg["resolution"], cfg["train_images"])
        test = data.load(args.dataset, "test", fast=run.fast)
        diffusion_io.check_samples(cfg["samples"], len(test) if run.fast else metric.MIN_SAMPLES_FULL, run.fast)
        t0 = time.perf_counter()
        if args.pretrained:  # the shipped model, its settings and normalisation; the mode's samples and DDIM steps
            model, shipped, command = load_pretrained(meta := test.meta, run.acc.device)
            trained = {k: shipped["run"][k] for k in (*FULL, "n_train") if k not in SAMPLING}
            norm, losses, finished = shipped["normalisation"], [], True
            run.out.mkdir(parents=True, exist_ok=True)  # (training's checkpoints create it otherwise)
            sky, y_range = norm["sky_sigma"], tuple(norm["clamp"])
            config = dict(cfg, **trained, dataset=args.dataset, **run.record(), normalisation=norm, pretrained=command,
                          steps_done=shipped["step"], training_finished=True)
        else:
            sky = [float(s) for s in meta["config"]["sky_sigma"]]
            y_range = (float(x.min()), float(x.max()))
            norm = {"kind": "asinh", "sky_sigma": sky, "scale": SCALE, "clamp": list(y_range),
                    "formula": "y = asinh(x / sky_sigma_b) / scale; x = sky_sigma_b sinh(scale y)"}
            config = dict(cfg, dataset=args.dataset, n_train=len(x), **run.record(), normalisation=norm)
            model, losses, finished = train(x, config, run.out, run, resume=args.resume, stop_after=args.stop_after)
            config.update(steps_done=len(losses), training_finished=finished, final_loss=float(np.mean(losses[-50:])))
        t_train = time.perf_counter() - t0
        run.acc.end_training()
        if not run.is_main:  # sampling and scoring happen once, on the main process
            return 0
        if not finished and not run.stopped_by_clock:
            print(f"stopped after {len(losses)} of {cfg['steps']} steps; continue with --resume", file=sys.stderr)
            return 0
        t0 = time.perf_counter()
        fake = sample(model, cfg["samples"], sky, y_range, cfg["ddim_steps"], config["resolution"], run.seed + 1,
                      eta=cfg["ddim_eta"])
        t_sample = time.perf_counter() - t0
        baseline.save_predictions(run.out / "predictions.npz", test.meta, (), images=fake, fast=np.bool_(run.fast),
                                  dataset=np.str_(args.dataset))
        pred = dict(np.load(run.out / "predictions.npz"))
        metrics, fake_stats = metric.score(pred, return_stats=True)  # the code path of `astrobench score generative`
        diffusion_io.plot_samples(np.asarray(test.images), fake, run.out / "samples.png")
        diffusion_io.plot_statistics(metric.reference(args.dataset, run.fast)[0], fake_stats,
                                     run.out / "statistics.png")
        timing = {"load_s" if args.pretrained else "train_s": round(t_train, 1), "sample_s": round(t_sample, 1)}
        report = run.write_metrics("generative", "unconditional", args.dataset, metrics, config, meta,
                                   ("diffusers", "accelerate", "safetensors"), timing=timing)
        print(f"W_ratio {metrics['W_ratio']:.3f}  W_mean {metrics['W_mean']:.4f}  W_floor {metrics['W_floor']:.4f}  "
              f"({config['steps_done']} steps, {report['seconds']:.0f} s) -> {run.out}")
    except baseline.ERRORS as err:
        return baseline.fail(SCRIPT, err)
    return 0


if __name__ == "__main__":
    sys.exit(main())

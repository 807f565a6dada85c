"""Stochastic x4 super-resolution of N-body density maps: a conditional diffusion model samples HR given LR.

    python superres/stochastic.py [--fast] [--dataset superres-nbody] [--out DIR] [--steps N] [--set KEY=VALUE]
                                  [--pretrained]  (and the common flags: --help)

Why stochastic: the LR run says where the halos form, not what their insides look like; a deterministic network
(``upsampler.py``) predicts the conditional mean, which is smooth and loses small-scale power and peaks. Here a
DDPM (diffusers ``UNet2DModel``, v-prediction, cosine noise schedule; DDIM sampling) learns p(HR | LR) and draws
``samples`` HR maps per LR map; ``astrobench score superres:nbody`` averages every metric over the draws.

Units: u = log(rho + OFFSET), rho the density over the cosmic mean. The diffusion model generates the residual
(u_HR - bicubic(u_LR)) / res_std (bicubic on the periodic slab), at LR resolution: each 4 x 4 block of HR pixels is
16 channels of one LR pixel (pixel unshuffle), which makes the UNet 16x cheaper on a CPU than one at HR resolution
and widens its view; the normalised u_LR is a 17th input channel (the condition). Training draws random periodic
crops (``patch`` LR pixels) with flips and turns; sampling runs on whole maps padded periodically by PAD LR pixels.
AdamW, cosine learning rate with warm-up over ``steps`` optimizer steps (a function of the step alone), EMA weights.
Writes metrics.json, predictions.npz ("sr": the first draw, "samples": all draws), model.pt + model_config.json,
examples.png (LR | draws | HR) and pk.png. ``--pretrained``: the shipped model (``pretrained/stochastic/<dataset>/``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import upsampler
from astrobench import baseline
from astrobench.metrics import superres as metrics
from torch import nn

SCRIPT, DATASET = "stochastic.py", "superres-nbody"
DATASETS = ("superres-nbody",)
# ---------------------------------------------------------------- settings: FULL and FAST (--set KEY=VALUE)
FULL = dict(steps=2400, batch=16, lr=1e-3, warmup=100, channels=(48, 64, 96), layers=1, patch=16, ema_decay=0.999,
            samples=4, ddim_steps=20)
FAST = dict(steps=60, batch=8, lr=1e-3, warmup=5, channels=(32, 48), layers=1, patch=8, ema_decay=0.9,
            samples=2, ddim_steps=4)
# channels: UNet block widths (multiples of 8); patch: LR pixels of a training crop (HR: 4x); samples: draws per
# LR map (1 to metrics.MAX_SAMPLES); ddim_steps: DDIM steps per draw (eta 0: the draw is fixed by its noise)
SAMPLING = ("samples", "ddim_steps")  # the mode's, never the shipped model's (--pretrained)
OFFSET = 0.1  # u = log(rho + OFFSET): HR maps have empty pixels
PAD = 2  # LR pixels of periodic padding when sampling whole maps (the UNet pads with zeros)
T_TRAIN, WEIGHT_DECAY, GRAD_CLIP = 1000, 1e-4, 1.0
PRETRAINED = Path(__file__).resolve().parent / "pretrained" / "stochastic"  # <dataset>/: what --pretrained loads
# ---------------------------------------------------------------- data and units


def bicubic_log(u_lr: torch.Tensor, factor: int) -> torch.Tensor:
    """bicubic(u_LR) on the HR grid, periodic (2 LR pixels of wrap-around padding)."""
    up = F.interpolate(F.pad(u_lr, (2, 2, 2, 2), mode="circular"), scale_factor=factor, mode="bicubic",
                       align_corners=False)
    return up[..., 2 * factor : -2 * factor, 2 * factor : -2 * factor]


def prepare(lr: np.ndarray, hr: np.ndarray | None, factor: int, norm: dict | None = None):
    """(c, r, norm): the normalised condition u_LR (N, 1, h, w) and residual (N, 1, H, W; None without HR) as
    float32 tensors; ``norm`` (the training set's u_mean, u_std, res_std) is measured when not given."""
    u = torch.log(torch.from_numpy(np.asarray(lr, np.float32)) + OFFSET)
    r = None if hr is None else torch.log(torch.from_numpy(np.asarray(hr, np.float32)) + OFFSET)
    r = None if hr is None else r - bicubic_log(u, factor)
    if norm is None:
        norm = {"u_mean": float(u.mean()), "u_std": float(u.std()), "res_std": float(r.std()), "offset": OFFSET,
                "formula": "rho = exp(bicubic(u_LR) + res_std x) - offset, u = log(rho + offset); clipped at 0"}
    return (u - norm["u_mean"]) / norm["u_std"], (None if r is None else r / norm["res_std"]), norm


def to_density(x: torch.Tensor, c: torch.Tensor, norm: dict, factor: int) -> np.ndarray:
    """Generated residuals (network units, unshuffled (B, factor^2, h, w)) -> rho >= 0 (B, 1, H, W)."""
    u = bicubic_log(c * norm["u_std"] + norm["u_mean"], factor) + F.pixel_shuffle(x, factor) * norm["res_std"]
    return (torch.exp(u) - norm["offset"]).clamp(min=0).numpy().astype(np.float32)


def make_noise_scheduler():
    from diffusers import DDPMScheduler

    # v-prediction on the cosine schedule, DDIM "leading" spacing, as generative/diffusion.py (measured there)
    return DDPMScheduler(num_train_timesteps=T_TRAIN, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                         prediction_type="v_prediction", timestep_spacing="leading")


# ================================================================ MODEL SLOT: replace build_model with your own


def build_model(cfg: dict) -> nn.Module:
    """Replace this with your model. Interface:

    ``model(x, c, t) -> v``: x (B, 16, h, w) float32 noisy residual in network units, each HR 4 x 4 block as 16
    channels of its LR pixel (x0 = unshuffle((log(rho_HR + 0.1) - bicubic(u_LR)) / res_std); x = sqrt(abar_t) x0 +
    sqrt(1 - abar_t) eps), c (B, 1, h, w) the condition: u_LR = log(rho_LR + 0.1), normalised; t (B,) int64 noise
    levels in [0, 1000). h = w = cfg["patch"] in training, 32 + 2 PAD when sampling (any multiple of 2^(levels -
    1)). v (B, 16, h, w): the predicted velocity sqrt(abar_t) eps - sqrt(1 - abar_t) x0; the loss is its MSE.
    ``cfg``: the FULL/FAST settings (channels, layers) and the dataset's factor."""
    from diffusers import UNet2DModel

    ch = tuple(cfg["channels"])
    # no attention in the middle block: local structure only, and its cost grows as (H W)^2 on whole maps
    f2 = cfg["factor"] ** 2
    return ConditionalUNet(UNet2DModel(in_channels=f2 + 1, out_channels=f2, block_out_channels=ch, norm_num_groups=8,
                                       add_attention=False,
                                       layers_per_block=cfg["layers"], down_block_types=("DownBlock2D",) * len(ch),
                                       up_block_types=("UpBlock2D",) * len(ch)))


class ConditionalUNet(nn.Module):
    """Conditioning by concatenation (SR3, Saharia+2021): the UNet sees the condition beside the noisy residual."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x, c, t):
        return self.unet(torch.cat([x, c], dim=1), t).sample


# ================================================================ training and sampling


def train(c_n, r_n, cfg: dict, run=None, progress: bool = True):
    """AdamW on the v-prediction MSE for ``cfg["steps"]`` steps on random periodic crops: (EMA model, losses)."""
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    run = run or baseline.local_run()
    torch.manual_seed(run.seed)
    model, rng, gen = build_model(cfg), np.random.default_rng(run.seed), torch.Generator().manual_seed(run.seed)
    dev = run.acc.device
    model.to(dev)
    ema = EMAModel(model.parameters(), decay=cfg["ema_decay"], use_ema_warmup=True)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=WEIGHT_DECAY)
    sched, noise_sched = get_cosine_schedule_with_warmup(opt, cfg["warmup"], cfg["steps"]), make_noise_scheduler()
    model.train()
    losses = []
    for _ in (bar := tqdm(range(cfg["steps"]), desc="training", disable=not progress)):
        idx = torch.from_numpy(rng.choice(len(c_n), cfg["batch"], replace=False))
        c, r = upsampler.augment(c_n[idx], r_n[idx], rng, cfg["patch"], periodic=True)  # turned at HR, then:
        x0 = F.pixel_unshuffle(r, cfg["factor"])
        noise = torch.randn(x0.shape, generator=gen)  # drawn on the CPU: the same numbers on any device
        t = torch.randint(T_TRAIN, (len(x0),), generator=gen)
        x0, c, noise, t = x0.to(dev), c.to(dev), noise.to(dev), t.to(dev)
        target = noise_sched.get_velocity(x0, noise, t)
        loss = F.mse_loss(model(noise_sched.add_noise(x0, noise, t), c, t), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        sched.step()
        ema.step(model.parameters())
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", refresh=False)
        if run.out_of_time(collective=False):  # --max-minutes only
            break
    ema.copy_to(model.parameters())
    return model.eval(), losses


@torch.no_grad()
def sample(model, lr: np.ndarray, cfg: dict, norm: dict, samples: int, ddim_steps: int, seed: int = 0,
           batch: int = 16, progress: bool = True, device: str = "cpu") -> np.ndarray:
    """(N, samples, 1, H, W) density draws for the LR maps (N, 1, h, w): DDIM from noise, on periodically padded
    whole maps; draw s of every map comes from seed + s, so adding draws keeps the first ones."""
    from diffusers import DDIMScheduler
    from tqdm.auto import tqdm

    ddim = DDIMScheduler.from_config(make_noise_scheduler().config)
    ddim.set_timesteps(ddim_steps)
    model.to(device).eval()
    c_all, _, _ = prepare(lr, None, f := cfg["factor"], norm)
    n, _, h, w = c_all.shape
    pad = (PAD,) * 4
    out = np.zeros((n, samples, 1, f * h, f * w), np.float32)
    for s in tqdm(range(samples), desc=f"sampling ({ddim_steps} DDIM steps)", disable=not progress):
        gen = torch.Generator().manual_seed(seed + s)
        for i in range(0, n, batch):
            c = F.pad(c_all[i : i + batch], pad, mode="circular").to(device)
            x = F.pad(torch.randn((len(c), f * f, h, w), generator=gen), pad, mode="circular").to(device)
            for t in ddim.timesteps:  # the margin is re-copied from the map after each step: periodic throughout
                v = model(x, c, t.expand(len(x)).to(device))
                x = F.pad(ddim.step(v, t, x, eta=0.0).prev_sample[..., PAD:-PAD, PAD:-PAD], pad, mode="circular")
            out[i : i + batch, s] = to_density(x[..., PAD:-PAD, PAD:-PAD].cpu(), c_all[i : i + batch], norm, f)
    return out


def load_shipped(dataset: str, meta: dict):
    """(config + the command that trained it, EMA model) shipped for ``dataset``, checked against ``meta``."""
    folder = PRETRAINED / dataset
    state, cfg = baseline.load_pretrained(folder, meta)
    model = build_model(cfg)
    model.load_state_dict(state)
    return dict(cfg, pretrained=json.loads((folder / "manifest.json").read_text())["command"]), model.eval()


# ---------------------------------------------------------------- figures


def save_figures(out, lr, hr, draws, result: dict, n: int = 3) -> None:
    """examples.png (LR | draws | HR, log density) and pk.png (P(k) ratio of the draws and bicubic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [("LR", lr)] + [(f"draw {s + 1}", draws[:, s]) for s in range(min(draws.shape[1], 3))] + [("HR", hr)]
    fig, axes = plt.subplots(n, len(cols), figsize=(2.1 * len(cols), 2.1 * n), squeeze=False)
    for i in range(n):
        for j, (title, maps) in enumerate(cols):
            axes[i, j].imshow(np.log10(maps[i, 0] + OFFSET), cmap="magma", vmin=-1, vmax=1.5, origin="lower")
            axes[i, j].set_title(title if i == 0 else "", fontsize=9)
            axes[i, j].set_axis_off()
    fig.tight_layout()
    fig.savefig(Path(out) / "examples.png", dpi=100)
    fig = upsampler.plot_pk(result).figure
    fig.tight_layout()
    fig.savefig(Path(out) / "pk.png", dpi=100)
    plt.close("all")


# ---------------------------------------------------------------- main


def parser():
    return baseline.parser(SCRIPT, __doc__, out="outputs/superres-stochastic", dataset=DATASET, datasets=DATASETS,
                           budget_help=f"optimizer steps (FULL {FULL['steps']}, FAST {FAST['steps']})")


def check_settings(cfg: dict) -> None:
    """The numbers --set can change, checked before any data is loaded."""
    for key, low in (("steps", 1), ("batch", 1), ("layers", 1), ("patch", 4), ("ddim_steps", 1), ("warmup", 0)):
        if not isinstance(cfg[key], int) or cfg[key] < low:
            raise baseline.BaselineError(f"--set {key}={cfg[key]!r}: expected an integer >= {low}")
    if not isinstance(cfg["samples"], int) or not 1 <= cfg["samples"] <= metrics.MAX_SAMPLES:
        raise baseline.BaselineError(f"--set samples={cfg['samples']!r}: expected 1 to {metrics.MAX_SAMPLES}")
    ch = cfg["channels"]
    if not ch or not all(isinstance(c, int) and c > 0 and c % 8 == 0 for c in ch):
        raise baseline.BaselineError(f"--set channels={ch!r}: expected UNet widths that are multiples of 8")
    if cfg["patch"] % 2 ** (len(ch) - 1) or (32 + 2 * PAD) % 2 ** (len(ch) - 1) or cfg["ddim_steps"] > T_TRAIN:
        raise baseline.BaselineError(f"--set patch={cfg['patch']}, channels={ch}, ddim_steps={cfg['ddim_steps']}: "
                                     f"expected patch and {32 + 2 * PAD} divisible by 2^(levels - 1) = "
                                     f"{2 ** (len(ch) - 1)}, ddim_steps <= {T_TRAIN}")
    if not (cfg["lr"] > 0 and 0 <= cfg["ema_decay"] < 1):
        raise baseline.BaselineError(f"--set lr={cfg['lr']}, ema_decay={cfg['ema_decay']}: expected lr > 0 and "
                                     "ema_decay in [0, 1)")


def main(argv=None) -> int:
    """Train (or load), sample, score and write everything."""
    try:
        args = parser().parse_args(argv)
        args.dataset = args.dataset if args.dataset in DATASETS else f"superres-{args.dataset}"
        if args.dataset not in DATASETS:
            raise baseline.BaselineError(f"--dataset: expected one of {', '.join(DATASETS)} (or nbody)")
        settings = baseline.settings(FULL, FAST, args)
        run = baseline.start(args)
        check_settings(settings)
        if run.acc.num_processes > 1 or args.grad_accum != 1:
            raise baseline.BaselineError("stochastic.py trains in one process; expected no accelerate launch and "
                                         "--grad-accum 1")
        lr_test, hr_test, test_ds = upsampler.load_pairs(args.dataset, "test", run.fast)
        if args.pretrained:  # no training: the shipped model and normalisation, the mode's sampling settings
            cfg, model = load_shipped(args.dataset, test_ds.meta)
            cfg.update({k: settings[k] for k in SAMPLING})
        else:
            lr_train, hr_train, train_ds = upsampler.load_pairs(args.dataset, "train", run.fast)
            if settings["batch"] > len(lr_train):
                raise baseline.BaselineError(f"--set batch={settings['batch']}: expected at most {len(lr_train)}, "
                                             "the training pairs")
            cfg = dict(settings, dataset=args.dataset, factor=train_ds.meta["config"]["factor"], n_train=len(lr_train))
            c_n, r_n, cfg["normalisation"] = prepare(lr_train, hr_train, cfg["factor"])
            del lr_train, hr_train
            model, losses = train(c_n, r_n, cfg, run)
            cfg.update(steps_done=len(losses), final_loss=float(np.mean(losses[-50:])))
        draws = sample(model, lr_test, cfg, cfg["normalisation"], cfg["samples"], cfg["ddim_steps"], run.seed + 1,
                       device=run.acc.device)
        pred = {"sr": draws[:, 0], "samples": draws}
        result = metrics.score(pred, task=args.dataset)  # the same code as `astrobench score superres:nbody`
        run.out.mkdir(parents=True, exist_ok=True)
        baseline.save_predictions(run.out / "predictions.npz", test_ds.meta, ("lr",), **pred)
        torch.save(model.state_dict(), run.out / "model.pt")
        baseline.write_json(run.out / "model_config.json", {**cfg, **run.record()})
        save_figures(run.out, lr_test, hr_test, draws, result)
        report = run.write_metrics("superres", args.dataset, args.dataset, result, cfg, test_ds.meta,
                                   ("diffusers", "scikit-image"))
        print(f"{args.dataset}: {cfg['samples']} draws per map; P(k) worst |r-1| to half HR Nyquist "
              f"{result['pk_worst_half_nyquist']:.3f} (bicubic {result['pk_worst_half_nyquist_bicubic']:.3f}), "
              f"peaks worst {result['peaks_worst']:.3f} ({result['peaks_worst_bicubic']:.3f}), r(k) min "
              f"{result['rk_min_half_nyquist']:.3f}, PSNR {result['psnr']:.2f} dB; {cfg['steps_done']} steps"
              f"{' (pretrained)' * args.pretrained}, {report['seconds']} s -> {run.out}")
    except baseline.ERRORS as err:
        return baseline.fail(SCRIPT, err)
    return 0


if __name__ == "__main__":
    sys.exit(main())

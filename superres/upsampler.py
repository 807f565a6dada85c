"""x4 super-resolution baseline: a compact EDSR-style CNN with a PixelShuffle upsampler.

    python superres/upsampler.py [--fast] [--out DIR] [--seed N] [--device auto|cpu|cuda]
                                 [--dataset superres-galaxies|superres-fields|camels-cmd-mtot|galaxy10-decals|...]
                                 [--export-onnx PATH]
                                 [--grad-accum N] [--mixed-precision no|fp16|bf16]

Trains on the train split, predicts the held-out test split, scores it with the shared scorer
(``astrobench.metrics.superres.score``, the code behind ``astrobench score superres:<dataset>``)
and writes metrics.json, predictions.npz (key "sr"), model.pt + model_config.json, examples.png
(LR | bicubic | model | HR | residual) and pk.png (power-spectrum ratio).

Real data, same code: ``--dataset camels-cmd-mtot`` (CAMELS total-matter maps, tiled like superres-fields) or
``--dataset galaxy10-decals`` / ``galaxy10-sdss`` (survey colour composites; LR = their 4 x 4 block mean).

The network predicts a correction to bicubic upsampling (residual learning, as in VDSR/EDSR):
all convolutions run at LR resolution and one PixelShuffle (ESPCN, Shi+2016) turns 16 channels
into a 4x4 block of HR pixels, which keeps it cheap on a CPU.

``--export-onnx PATH`` also writes the trained model, normalisation included (raw LR in the dataset's units
in, SR in the same units out), as one ONNX file for a telescope site without PyTorch, with PATH.json beside it
(inputs, outputs, parity and CPU latency vs PyTorch).

Scaling (Hugging Face accelerate): the file runs unchanged under ``accelerate launch`` (several GPUs, or gloo
DDP on CPU cores). Each process draws its batches from its own shard of the training pairs (rank r: pairs
r, r + P, ...) with its own random stream, so the effective batch is batch x processes x ``--grad-accum``;
the wall-clock cap and the learning-rate schedule follow the main process's clock. ``--mixed-precision``
(or ``accelerate launch --mixed_precision``) turns on fp16/bf16 autocast on a GPU. Prediction, scoring and
every file written (model.pt, metrics.json, figures, ONNX) happen once, on the main process. A plain
``python upsampler.py`` run is one process and gives exactly the numbers it gave before.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from astrobench import data, scaling
from astrobench.deploy import onnx_export, onnx_session, torch_vs_onnxruntime_ms  # shared with anomaly
from astrobench.metrics import superres as metrics
from astrobench.notebook import device as pick_device
from astrobench.notebook import fast as fast_mode
from astrobench.notebook import seed_everything
from astrobench.scaling import make_accelerator  # shared by every baseline
from tqdm.auto import tqdm

DATASETS = tuple(metrics.SHAPES)  # the simulated sets and the real sets with LR pairs
WIDTH = {"full": 48, "fast": 32}  # feature channels
BLOCKS = {"full": 6, "fast": 3}  # residual blocks (conv-ReLU-conv)
BATCH = 16
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4
MAX_STEPS = {"full": 30000, "fast": 250}
TRAIN_SECONDS = {"full": 18 * 60, "fast": 35}  # wall-clock cap: the CPU is shared
PATCH = {"superres-fields": 16, "camels-cmd-mtot": 16}  # LR crop size for training the fields; galaxies: whole
N_EXAMPLES = 4
EDGE_IMAGES = 32  # test images for the ONNX parity check and latency timing (--export-onnx)


def load_pairs(dataset: str, split: str, fast: bool):
    """(LR, HR, Dataset) arrays for one split, as float32 copies (Galaxy10's HR is its ``images``)."""
    ds = data.load(dataset, split, fast=fast)
    return np.array(ds.lr, dtype=np.float32), np.array(ds.hr if "hr" in ds.arrays else ds.images, np.float32), ds


def block_mean(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.avg_pool2d(x, factor)


class ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, h):
        return h + self.conv2(F.relu(self.conv1(h)))  # EDSR block: no batch norm


class Upsampler(nn.Module):
    """LR (B, C, h, w) in normalised units -> HR (B, C, 4h, 4w) in the same units.

    ``consistent=True`` (fields, whose LR is exactly the block mean of HR) adds a last step that
    projects the output onto the images whose block means equal LR: an orthogonal projection
    onto a set that contains the truth, so it can only lower the error, and it makes flux
    conservation exact (Harder+2022 call this a hard constraint layer)."""

    def __init__(self, channels: int, width: int, blocks: int, factor: int = 4, consistent: bool = False):
        super().__init__()
        self.factor, self.consistent = factor, consistent
        self.head = nn.Conv2d(channels, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width) for _ in range(blocks)], nn.Conv2d(width, width, 3, padding=1))
        self.tail = nn.Sequential(nn.Conv2d(width, channels * factor**2, 3, padding=1), nn.PixelShuffle(factor))
        nn.init.zeros_(self.tail[0].weight)  # start as plain bicubic
        nn.init.zeros_(self.tail[0].bias)

    def forward(self, lr):
        base = F.interpolate(lr, scale_factor=self.factor, mode="bicubic", align_corners=False)
        h = self.head(lr)
        sr = base + self.tail(h + self.body(h))
        if self.consistent:
            sr = sr + F.interpolate(lr - block_mean(sr, self.factor), scale_factor=self.factor, mode="nearest")
        return sr


def normalise(lr: np.ndarray, hr: np.ndarray | None, factor: int, extensive: bool):
    """Per-image scale = max |LR|, so faint and bright objects train alike (and PSNR is per-image).
    Extensive HR (flux per pixel) is multiplied by factor^2 to share LR's per-pixel units."""
    scale = np.maximum(np.abs(lr).reshape(len(lr), -1).max(axis=1), 1e-8)[:, None, None, None]
    unit = factor**2 if extensive else 1.0
    return lr / scale, (None if hr is None else hr * unit / scale), scale / unit


def set_threads(processes: int = 1) -> int:
    """Torch's OpenMP threads spin while they wait: on an oversubscribed CPU (load above the core
    count) one thread ran 8x faster than two here (22 vs 2.5 GFLOP/s, conv fwd+bwd).
    Several processes (``accelerate launch``) share the cores."""
    cores = max(1, (os.cpu_count() or 1) // processes)
    threads = 1 if hasattr(os, "getloadavg") and os.getloadavg()[0] > cores else cores
    torch.set_num_threads(threads)
    return threads


def augment(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, patch: int | None = None,
            periodic: bool = True):
    """A random element of the dihedral group (flips, 90 degree turns): both data sets are isotropic.
    With ``patch``, also a random patch x patch LR crop: after a periodic shift (whole LR pixels) for periodic
    fields, inside the image for tiles of a larger map (CAMELS), which would otherwise show seams."""
    if patch:
        f = y.shape[-1] // x.shape[-1]
        if periodic:
            i, j = (int(v) for v in rng.integers(x.shape[-1], size=2))
            x = torch.roll(x, (i, j), (2, 3))[..., :patch, :patch]
            y = torch.roll(y, (f * i, f * j), (2, 3))[..., : f * patch, : f * patch]
        else:
            i, j = (int(v) for v in rng.integers(x.shape[-1] - patch + 1, size=2))
            x = x[..., i : i + patch, j : j + patch]
            y = y[..., f * i : f * (i + patch), f * j : f * (j + patch)]
    k, flip = int(rng.integers(4)), bool(rng.integers(2))
    x, y = torch.rot90(x, k, (2, 3)), torch.rot90(y, k, (2, 3))
    return (x.flip(3), y.flip(3)) if flip else (x, y)


def radial_power(x: torch.Tensor) -> torch.Tensor:
    """Radially averaged power spectrum of a batch (B, C, H, H), averaged over B and C: (H // 2,)."""
    h = x.shape[-1]
    f = torch.fft.fftfreq(h, device=x.device) * h
    idx = torch.round(torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2)).long().flatten()
    keep = (idx >= 1) & (idx <= h // 2)
    p = torch.fft.fft2(x - x.mean(dim=(-2, -1), keepdim=True)).abs().pow(2).mean(dim=(0, 1)).flatten()
    total = torch.zeros(h // 2 + 1, device=x.device).index_add(0, idx[keep], p[keep])
    count = torch.zeros(h // 2 + 1, device=x.device).index_add(0, idx[keep], torch.ones_like(p[keep]))
    return total[1:] / count[1:]


def spectral_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared log ratio of the batch's radial power spectra: rewards the right amount of
    small-scale power, which MSE alone trades away (it predicts the smooth conditional mean)."""
    return (torch.log(radial_power(pred) + 1e-12) - torch.log(radial_power(target) + 1e-12)).pow(2).mean()


def train(
    model, lr, hr, cfg: dict, device: str = "cpu", seed: int = 0, progress: bool = True, accelerator=None, log_dir=None
) -> list:
    """AdamW on the MSE in normalised units; cosine decay over whichever ends first, steps or wall clock.
    Returns the loss per optimizer step (this process's batches). Under several processes each draws from its
    own shard of the pairs; ``log_dir`` then gets shard_rank{r}.json (the first batch's indices, for the test)."""
    acc = accelerator or make_accelerator(device, grad_accum=cfg.get("grad_accum", 1))
    rank, world, device = acc.process_index, acc.num_processes, acc.device
    seed_everything(seed)
    rng = np.random.default_rng(seed + 1000 * rank)  # every draw of the loop; rank 0's is the single-process one
    x_all, y_all, _ = normalise(lr[rank::world], hr[rank::world], cfg["factor"], cfg["extensive"])  # this shard
    x_all, y_all = torch.from_numpy(x_all.astype(np.float32)), torch.from_numpy(y_all.astype(np.float32))
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["learning_rate"], weight_decay=cfg["weight_decay"])
    ddp, opt = acc.prepare(model, opt)  # DDP wrapper + autocast/grad scaler where asked; as-is in one process
    losses, t0 = [], time.perf_counter()
    bar = tqdm(range(cfg["max_steps"]), desc="training", disable=not progress or not acc.is_main_process)
    for step in bar:
        clock = (time.perf_counter() - t0) / cfg["train_seconds"]
        if world > 1:  # the main process's clock for all: the same learning rate and the same last step
            flag = torch.tensor([clock if acc.is_main_process else 0.0], dtype=torch.float64, device=device)
            clock = acc.reduce(flag, "sum").item()
        done = max(step / cfg["max_steps"], clock)
        if done >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = cfg["learning_rate"] * 0.5 * (1 + math.cos(math.pi * done))
        micro = []
        for _ in range(acc.gradient_accumulation_steps):  # accelerate syncs and steps on the last micro-batch
            with acc.accumulate(ddp):
                idx = torch.from_numpy(rng.choice(len(x_all), cfg["batch"], replace=False))
                if log_dir is not None and world > 1 and step == 0 and not micro:  # read by the DDP test
                    log = {"rank": rank, "processes": world, "first_indices": (idx * world + rank).tolist()}
                    (Path(log_dir) / f"shard_rank{rank}.json").write_text(json.dumps(log))
                x, y = augment(x_all[idx], y_all[idx], rng, cfg["patch"], cfg.get("periodic", True))
                x, y = x.to(device), y.to(device)
                pred = ddp(x).float()  # (a no-op without mixed precision)
                loss = F.mse_loss(pred, y)
                if cfg["pk_weight"]:
                    loss = loss + cfg["pk_weight"] * spectral_loss(pred, y)
                acc.backward(loss)  # (divided by the accumulation steps)
                opt.step()  # a no-op until the last micro-batch
                opt.zero_grad(set_to_none=True)
            micro.append(loss.item())
        losses.append(float(np.mean(micro)))
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.2e}")
    bar.close()
    acc.wait_for_everyone()
    acc.unwrap_model(ddp, keep_fp32_wrapper=False)  # drops the DDP wrapper and the autocast forward of ``model``
    return losses


@torch.no_grad()
def predict(model, lr: np.ndarray, cfg: dict, device: str = "cpu", batch: int = 64) -> np.ndarray:
    """SR images in the dataset's units (nanomaggies per HR pixel, or density)."""
    model.to(device).eval()
    x, _, scale = normalise(lr, None, cfg["factor"], cfg["extensive"])
    out = [model(torch.from_numpy(x[i : i + batch].astype(np.float32)).to(device)).cpu().numpy()
           for i in range(0, len(x), batch)]
    return (np.concatenate(out) * scale).astype(np.float32)


# ---------------------------------------------------------------- deploy at the edge (ONNX)


class EdgeUpsampler(nn.Module):
    """``predict`` as one module, so a site needs no pre/post-processing: raw LR (N, C, h, w) in the dataset's
    units -> SR (N, C, factor h, factor w) in the HR units (the per-image max |LR| scaling is inside)."""

    def __init__(self, model: Upsampler, extensive: bool):
        super().__init__()
        self.model, self.unit = model, float(model.factor**2 if extensive else 1)

    def forward(self, lr):
        scale = lr.abs().amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-8)
        return self.model(lr / scale) * (scale / self.unit)


def export_onnx(model: Upsampler, path, cfg: dict, lr: np.ndarray, threads: int = 1) -> dict:
    """Export the trained model to ``path`` (batch and LR height/width free), check it against ``predict`` on
    ``lr`` (raw test LR) and time both on the CPU with ``threads`` threads. Returns (and writes to PATH.json)
    what a site needs to know."""
    from importlib import metadata

    edge = EdgeUpsampler(model.cpu().eval(), cfg["extensive"]).eval()
    lr = np.array(lr, dtype=np.float32)
    path = onnx_export(edge, torch.from_numpy(lr[:2]), path, "lr", "sr", {0: "batch", 2: "height", 3: "width"})
    session = onnx_session(path, threads)
    ref = predict(model, lr, cfg)  # the baseline's own path, normalisation in numpy
    got = session.run(None, {"lr": lr})[0]
    ms_torch, ms_ort = torch_vs_onnxruntime_ms(edge, session, "lr", lr, threads)
    units = cfg.get("units") or "the dataset's units"
    info = {"model": path.name, "dataset": cfg["dataset"], "factor": cfg["factor"],
            "input": {"lr": f"float32 (N, {cfg['channels']}, h, w), {units}, as astrobench.data.load(...).lr"},
            "output": {"sr": f"float32 (N, {cfg['channels']}, {cfg['factor']}h, {cfg['factor']}w), the same "
                       "units per HR pixel, as astrobench.data.load(...).hr"},
            "max_abs_diff_vs_torch": float(np.max(np.abs(got - ref))),
            "max_rel_diff_vs_torch": float(np.max(np.abs(got - ref)) / np.max(np.abs(ref))),
            "parity_images": len(lr), "threads": threads,
            "latency_ms_per_image": {"torch": round(ms_torch, 3), "onnxruntime": round(ms_ort, 3)},
            "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "versions": {p: metadata.version(p) for p in ("torch", "onnx", "onnxruntime", "onnxscript")}}
    path.with_suffix(path.suffix + ".json").write_text(json.dumps(info, indent=1))
    return info


def _show(image, scale=None, vmin=None, vmax=None):
    """What to imshow: asinh RGB for 3-band galaxies, log10 density for fields."""
    from astrobench.plotting import asinh_rgb

    if len(image) == 3:
        return dict(X=asinh_rgb(image, scale=scale))
    return dict(X=np.log10(np.clip(image[0], 1e-2, None)), cmap="magma", vmin=vmin, vmax=vmax)


def plot_examples(lr, bicubic, sr, hr, extensive: bool, n: int = N_EXAMPLES, factor: int = 4):
    """Rows of LR | bicubic | model | HR | residual (model - HR, first band, shared symmetric scale)."""
    import matplotlib.pyplot as plt

    n = min(n, len(bicubic))

    fig, axes = plt.subplots(n, 5, figsize=(10, 2.1 * n), squeeze=False)
    unit = factor**2 if extensive else 1.0  # LR flux per (bigger) pixel -> per HR pixel
    for i in range(n):
        scale = np.maximum(np.percentile(hr[i], 99.5, axis=(1, 2)), 1e-12)
        lo, hi = np.log10(max(hr[i].min(), 1e-2)), np.log10(hr[i].max())
        res = sr[i, 0] - hr[i, 0]
        lim = float(np.percentile(np.abs(hr[i, 0] - bicubic[i, 0]), 99))
        panels = [lr[i] / unit, bicubic[i], sr[i], hr[i]]
        for j, (img, title) in enumerate(zip(panels, ("LR", "bicubic", "model", "HR"), strict=True)):
            axes[i, j].imshow(origin="lower", interpolation="nearest", **_show(img, scale, lo, hi))
            axes[i, j].set_title(title if i == 0 else "", fontsize=9)
        axes[i, 4].imshow(res, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        axes[i, 4].set_title("model - HR" if i == 0 else "", fontsize=9)
        for ax in axes[i]:
            ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_pk(result: dict, factor: int = 4, ax=None):
    """P_SR / P_HR against k for the model and bicubic, with the LR and half-HR Nyquist frequencies."""
    import matplotlib.pyplot as plt

    ax = ax or plt.figure(figsize=(5.5, 3.5)).gca()
    k = np.asarray(result["pk_k"])
    ax.plot(k, result["pk_ratio"], label=f"model (PSNR {result['psnr']:.2f} dB)")
    ax.plot(k, result["pk_ratio_bicubic"], label=f"bicubic (PSNR {result['psnr_bicubic']:.2f} dB)", ls="--")
    ax.axhspan(0.9, 1.1, color="0.9", zorder=0, label="±10 %")
    ax.axvline(0.5 / factor, color="0.5", ls=":", lw=1)
    ax.axvline(0.25, color="0.3", ls=":", lw=1)
    ax.text(0.5 / factor, 0.02, " LR Nyquist", fontsize=7, transform=ax.get_xaxis_transform())
    ax.text(0.25, 0.02, " ½ HR Nyquist", fontsize=7, transform=ax.get_xaxis_transform())
    ax.set(xscale="log", yscale="log", xlabel="k [cycles / HR pixel]", ylabel=r"$P_{SR}(k) / P_{HR}(k)$",
           title=result["dataset"])
    ticks = [2.0**-i for i in range(int(np.log2(1 / k[0])), 0, -1)]
    ax.set_xticks(ticks, [f"1/{round(1 / t)}" for t in ticks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.legend(fontsize=7)
    return ax


def make_config(dataset: str, fast: bool, meta: dict, seed: int, device: str) -> dict:
    mode = "fast" if fast else "full"
    return {"dataset": dataset, "fast": fast, "seed": seed, "device": device, "width": WIDTH[mode],
            "blocks": BLOCKS[mode], "batch": BATCH, "learning_rate": LEARNING_RATE, "weight_decay": WEIGHT_DECAY,
            "max_steps": MAX_STEPS[mode], "train_seconds": TRAIN_SECONDS[mode], "factor": meta["config"]["factor"],
            "extensive": meta["config"]["extensive"], "channels": len(meta["config"]["channels"]),
            "units": meta["config"].get("units"),
            # LR is exactly HR's block mean (fields, CAMELS, Galaxy10; not the PSF-degraded galaxies): project
            "consistent": "block mean" in str(meta["config"].get("lr", "")), "patch": PATCH.get(dataset),
            "periodic": meta["config"].get("periodic", True), "pk_weight": 0.0,
            "loss": "mse (normalised by max |LR| per image) + pk_weight * spectral loss"}


def build(cfg: dict) -> Upsampler:
    return Upsampler(cfg["channels"], cfg["width"], cfg["blocks"], cfg["factor"], cfg["consistent"])


def versions(meta: dict) -> dict:
    from importlib import metadata

    out = {p: metadata.version(p) for p in ("astrobench", "numpy", "torch", "scikit-image", "astropy")}
    out["dataset"] = {k: meta[k] for k in ("name", "version", "seed", "sha256")}
    return out


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, not argparse's full usage
        print(f"upsampler.py: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def parse(argv=None):
    p = _Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fast", action="store_true", help="FAST mode: small data, narrow model, ~1 min")
    p.add_argument("--out", default="outputs/superres", help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--dataset", default="superres-galaxies",
                   help=f"superres-galaxies (default), superres-fields, or a real set: {', '.join(DATASETS[2:])}")
    p.add_argument("--steps", type=int, help="override the number of training steps")
    p.add_argument("--minutes", type=float, help="override the training wall-clock cap")
    p.add_argument("--pk-weight", type=float, default=0.0, help="weight of the spectral (P(k)) loss; 0 = plain MSE")
    p.add_argument("--export-onnx", metavar="PATH", help="also export the trained model (raw LR -> SR) to this "
                   "ONNX file, with PATH.json (parity and CPU latency vs PyTorch)")
    scaling.add_arguments(p)  # --grad-accum, --mixed-precision
    args = p.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        p.error(f"--steps {args.steps}: expected a positive integer")
    name = args.dataset if args.dataset in DATASETS else f"superres-{args.dataset}"
    if name not in DATASETS:
        p.error(f"--dataset {args.dataset!r}: expected one of {', '.join(DATASETS)}")
    args.dataset = name
    return args


def main(argv=None) -> dict | None:
    """Train, predict, score and write everything; returns the metrics.json dict (None on non-main processes)."""
    args = parse(argv)
    t0 = time.perf_counter()
    fast = args.fast or fast_mode()
    device = pick_device(args.device)
    try:
        acc = scaling.accelerator_from_args(args, device)
    except ValueError as err:  # bad --grad-accum, no GPU for cuda, fp16 without a GPU
        _Parser().error(str(err))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    threads = set_threads(acc.num_processes)
    lr_train, hr_train, train_ds = load_pairs(args.dataset, "train", fast)
    lr_test, hr_test, test_ds = load_pairs(args.dataset, "test", fast)
    cfg = make_config(args.dataset, fast, train_ds.meta, args.seed, device)
    cfg["max_steps"] = args.steps or cfg["max_steps"]
    cfg["train_seconds"] = 60 * args.minutes if args.minutes else cfg["train_seconds"]
    cfg["torch_threads"] = threads
    cfg["pk_weight"] = args.pk_weight
    cfg.update(
        grad_accum=acc.gradient_accumulation_steps, mixed_precision=acc.mixed_precision, processes=acc.num_processes
    )
    seed_everything(args.seed)
    model = build(cfg)
    losses = train(model, lr_train, hr_train, cfg, seed=args.seed, accelerator=acc, log_dir=out)
    if not acc.is_main_process:  # prediction, scoring and files: once, on the main process
        acc.end_training()
        return None
    cfg["steps_done"], cfg["final_loss"] = len(losses), float(np.mean(losses[-50:]))
    cfg["loss_first_last"] = {"first": float(np.mean(losses[:3])), "last": float(np.mean(losses[-3:]))}
    sr = predict(model, lr_test, cfg, device=acc.device)
    np.savez_compressed(out / "predictions.npz", sr=sr)
    result = metrics.score({"sr": sr}, task=args.dataset)  # the same code as `astrobench score`
    torch.save(model.state_dict(), out / "model.pt")
    (out / "model_config.json").write_text(json.dumps(cfg, indent=1))

    import matplotlib

    matplotlib.use("Agg")
    bic = metrics.bicubic(lr_test[:N_EXAMPLES], cfg["factor"], cfg["extensive"])
    fig = plot_examples(lr_test, bic, sr, hr_test, cfg["extensive"], factor=cfg["factor"])
    fig.savefig(out / "examples.png", dpi=100)
    fig = plot_pk(result, cfg["factor"]).figure
    fig.tight_layout()
    fig.savefig(out / "pk.png", dpi=100)
    seconds = round(time.perf_counter() - t0, 1)
    report = {"track": "superres", "task": args.dataset, "dataset": args.dataset, "metrics": result,
              "config": cfg, "versions": versions(test_ds.meta), "seconds": seconds}
    (out / "metrics.json").write_text(json.dumps(report, indent=1))
    print(f"{args.dataset}: PSNR {result['psnr']:.2f} dB (bicubic {result['psnr_bicubic']:.2f}), "
          f"SSIM {result['ssim']:.3f} ({result['ssim_bicubic']:.3f}), P(k) worst |r-1| to half HR Nyquist "
          f"{result['pk_worst_half_nyquist']:.3f} ({result['pk_worst_half_nyquist_bicubic']:.3f}), "
          f"flux bias {result['flux_bias']:+.4f}; {cfg['steps_done']} steps, {seconds} s -> {out}")
    if args.export_onnx:  # after metrics.json: the export moves the model to the CPU
        o = report["onnx"] = export_onnx(model, args.export_onnx, cfg, lr_test[:EDGE_IMAGES])
        ms = o["latency_ms_per_image"]
        print(f"ONNX -> {args.export_onnx}: max |diff| vs torch {o['max_abs_diff_vs_torch']:.1e} "
              f"(relative {o['max_rel_diff_vs_torch']:.1e}); ms per image on {o['threads']} thread(s): "
              f"onnxruntime {ms['onnxruntime']:.2f}, torch {ms['torch']:.2f}")
    acc.end_training()
    return report


if __name__ == "__main__":
    main()

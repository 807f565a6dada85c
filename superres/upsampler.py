"""x4 super-resolution baseline: a compact EDSR-style CNN with a PixelShuffle upsampler.

    python superres/upsampler.py [--fast] [--dataset NAME] [--out DIR] [--steps N] [--set KEY=VALUE] [--pretrained]
                                 [--export-onnx PATH]  (and the common flags: --help)

Trains on the train split (or, ``--pretrained``, loads the model shipped in ``pretrained/<dataset>/``, checked against
the data), predicts the held-out test split, scores it (``astrobench score superres:<dataset>``), writes metrics.json,
predictions.npz ("sr"), model.pt + model_config.json, examples.png, pk.png. Datasets: superres-galaxies (default),
superres-fields, superres-nbody (N-body slabs, densities clipped at 0), camels-cmd-mtot, galaxy10-decals/-sdss.

The network predicts a correction to bicubic upsampling (residual learning, as in VDSR/EDSR): all convolutions
run at LR resolution and one PixelShuffle (ESPCN, Shi+2016) turns C x 16 channels into 4x4 blocks of HR pixels,
which keeps it cheap on a CPU. The budget is ``steps`` optimizer steps; the cosine learning rate follows the step
alone. ``--set pk_weight=1`` adds a spectral (P(k)) loss to the MSE. ``--export-onnx PATH`` also writes the model,
normalisation included (raw LR in, SR out, the dataset's units), as ONNX, with PATH.json (parity, CPU latency).
Under ``accelerate launch`` each process draws its batches from its own shard of the training pairs (rank r:
pairs r, r + P, ...): the effective batch is batch x processes x ``--grad-accum``; files are written once.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from astrobench import baseline, data
from astrobench.metrics import superres as metrics
from upsampler_figures import plot_examples, plot_pk, save_figures  # noqa: F401 (notebooks use them)

SCRIPT, DATASET = "upsampler.py", "superres-galaxies"
DATASETS = tuple(metrics.SHAPES)  # the simulated sets and the real sets with LR pairs
# ---------------------------------------------------------------- settings: FULL and FAST (--set KEY=VALUE)
FULL = dict(steps=14000, width=48, blocks=6, batch=16, lr=1e-3, weight_decay=1e-4, pk_weight=0.0)
FAST = dict(steps=250, width=32, blocks=3, batch=16, lr=1e-3, weight_decay=1e-4, pk_weight=0.0)
# width, blocks: feature channels, residual blocks (conv-ReLU-conv); pk_weight: of the spectral loss (0: plain MSE)
PATCH = {"superres-fields": 16, "superres-nbody": 16, "camels-cmd-mtot": 16}  # LR crops for the maps; galaxies: whole
PRETRAINED = Path(__file__).resolve().parent / "pretrained"  # pretrained/<dataset>/: what --pretrained loads
EDGE_IMAGES = 32  # test images for the ONNX parity check and latency timing (--export-onnx)
# ---------------------------------------------------------------- data


def load_pairs(dataset: str, split: str, fast: bool):
    """(LR, HR, Dataset) arrays for one split, as float32 copies (Galaxy10's HR is its ``images``)."""
    ds = data.load(dataset, split, fast=fast)
    lr, hr = np.array(ds.lr, dtype=np.float32), np.array(ds.hr if "hr" in ds.arrays else ds.images, np.float32)
    data.release_pages(*ds.arrays.values())  # copied: the maps' read pages would otherwise stay resident (Binder: 2 GB)
    return lr, hr, ds


def make_config(dataset: str, meta: dict, settings: dict) -> dict:
    """The FULL/FAST settings plus what the dataset fixes: factor, units, channels, LR-consistency, crops."""
    c = meta["config"]
    return dict(settings, dataset=dataset, factor=c["factor"], extensive=c["extensive"], channels=len(c["channels"]),
                # LR is exactly HR's block mean (fields, CAMELS, Galaxy10; not the PSF-degraded galaxies): project
                consistent="block mean" in str(c.get("lr", "")), patch=PATCH.get(dataset), units=c.get("units"),
                periodic=c.get("periodic", True), loss="mse (units: max |LR| per image) + pk_weight * spectral loss")


def normalise(lr: np.ndarray, hr: np.ndarray | None, factor: int, extensive: bool):
    """Per-image scale = max |LR|, so faint and bright objects train alike (and PSNR is per-image).
    Extensive HR (flux per pixel) is multiplied by factor^2 to share LR's per-pixel units."""
    scale = np.maximum(np.abs(lr).reshape(len(lr), -1).max(axis=1), 1e-8)[:, None, None, None]
    unit = factor**2 if extensive else 1.0
    return lr / scale, (None if hr is None else hr * unit / scale), scale / unit


def augment(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, patch: int | None = None, periodic=True):
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


# ================================================================ MODEL SLOT: replace build_model with your own


def build_model(cfg: dict) -> nn.Module:
    """Replace this with your model. Interface:

    ``model(x) -> sr``: x (B, C, h, w) float32 LR images divided by each image's max |LR| (C = cfg["channels"]:
    bands g, r, z for the galaxies, one density for the fields; h = w = 16 in training, any size when predicting);
    sr (B, C, factor h, factor w), factor = cfg["factor"] = 4, per HR pixel in the same normalised units (flux-like
    HR is multiplied by factor^2 to share them: see ``normalise``). The loss is the MSE between sr and the
    normalised HR (+ cfg["pk_weight"] x ``spectral_loss``); ``predict`` undoes the normalisation. ``cfg``: the
    FULL/FAST settings (width, blocks) and the dataset's (channels, factor, consistent)."""
    return Upsampler(cfg["channels"], cfg["width"], cfg["blocks"], cfg["factor"], cfg["consistent"])


class ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, h):
        return h + self.conv2(F.relu(self.conv1(h)))  # EDSR block: no batch norm


def block_mean(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.avg_pool2d(x, factor)


class Upsampler(nn.Module):
    """LR (B, C, h, w) in normalised units -> HR (B, C, 4h, 4w) in the same units.

    ``consistent=True`` (fields, whose LR is exactly the block mean of HR) adds a last step that projects the output
    onto the images whose block means equal LR: an orthogonal projection onto a set that contains the truth, so it
    can only lower the error, and it makes flux conservation exact (Harder+2022: a hard constraint layer)."""

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


# ================================================================ loss, training, prediction


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


def train(model, lr, hr, cfg: dict, run=None, progress: bool = True) -> list:
    """AdamW on the MSE in normalised units (+ pk_weight x spectral loss) for ``cfg["steps"]`` optimizer steps, the
    cosine learning rate a function of the step alone. Returns the loss per optimizer step (this process's
    batches). Under several processes each draws from its own shard of the pairs (rank r: pairs r, r + P, ...)."""
    from tqdm.auto import tqdm

    run = run or baseline.local_run()
    acc, device, steps = run.acc, run.acc.device, cfg["steps"]
    rng = np.random.default_rng(run.seed + 1000 * acc.process_index)  # every draw; rank 0's = the 1-process run
    x_all, y_all, _ = normalise(*baseline.shard(acc, lr, hr), cfg["factor"], cfg["extensive"])  # this shard
    x_all, y_all = torch.from_numpy(x_all.astype(np.float32)), torch.from_numpy(y_all.astype(np.float32))
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    ddp, opt = acc.prepare(model, opt)  # DDP wrapper + autocast/grad scaler where asked; as-is in one process
    losses = []
    bar = tqdm(range(steps), desc="training", disable=not progress or not run.is_main)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = cfg["lr"] * 0.5 * (1 + math.cos(math.pi * step / steps))
        micro = []
        for _ in range(acc.gradient_accumulation_steps):  # accelerate syncs and steps on the last micro-batch
            with acc.accumulate(ddp):
                idx = torch.from_numpy(rng.choice(len(x_all), cfg["batch"], replace=False))
                x, y = augment(x_all[idx], y_all[idx], rng, cfg["patch"], cfg["periodic"])
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
        if run.out_of_time():  # --max-minutes only
            break
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
    sr = (np.concatenate(out) * scale).astype(np.float32)  # densities: the scorer refuses rho < 0
    return np.maximum(sr, 0, out=sr) if cfg["dataset"] in metrics.NONNEGATIVE else sr


def load_shipped(dataset: str, meta: dict):
    """(config + the command that trained it, model) shipped for ``dataset``, checked against ``meta``."""
    folder = PRETRAINED / dataset
    state, cfg = baseline.load_pretrained(folder, meta)
    model = build_model(cfg)
    model.load_state_dict(state)
    return dict(cfg, pretrained=json.loads((folder / "manifest.json").read_text())["command"]), model


# ---------------------------------------------------------------- deploy at the edge (ONNX)


class EdgeUpsampler(nn.Module):
    """``predict`` as one module, so a site needs no pre/post-processing: raw LR (N, C, h, w) in the dataset's
    units -> SR (N, C, factor h, factor w) in the HR units (the per-image max |LR| scaling is inside)."""

    def __init__(self, model: nn.Module, factor: int, extensive: bool):
        super().__init__()
        self.model, self.unit = model, float(factor**2 if extensive else 1)

    def forward(self, lr):
        scale = lr.abs().amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-8)
        return self.model(lr / scale) * (scale / self.unit)


def export_onnx(model, path, cfg: dict, lr: np.ndarray, threads: int = 1) -> dict:
    """Export the model to ``path`` (batch and LR height/width free), check it against ``predict`` on ``lr`` (raw
    test LR), time both on the CPU with ``threads`` threads; returns (and writes to PATH.json) what a site needs."""
    from astrobench.deploy import export_checked

    lr = np.array(lr, dtype=np.float32)
    ref = predict(model, lr, cfg)  # the baseline's own path, normalisation in numpy
    c, f, units = cfg["channels"], cfg["factor"], cfg.get("units") or "the dataset's units"
    describe = {"dataset": cfg["dataset"], "factor": f,
                "input": {"lr": f"float32 (N, {c}, h, w), {units}, as astrobench.data.load(...).lr"},
                "outputs": {"sr": f"float32 (N, {c}, {f}h, {f}w), the same units per HR pixel, as "
                                  "astrobench.data.load(...).hr"}}
    edge = EdgeUpsampler(model.cpu().eval(), f, cfg["extensive"]).eval()
    return export_checked(edge, lr, path, "lr", ("sr",), {0: "batch", 2: "height", 3: "width"}, describe,
                          reference=[ref], threads=threads)


# ---------------------------------------------------------------- main


def parser():
    p = baseline.parser(SCRIPT, __doc__, out="outputs/superres", dataset=DATASET, datasets=DATASETS,
                        budget_help=f"optimizer steps (FULL {FULL['steps']}, FAST {FAST['steps']})")
    p.add_argument("--export-onnx", metavar="PATH", help="also export the trained model (raw LR -> SR) to this "
                   "ONNX file, with PATH.json (parity and CPU latency vs PyTorch)")
    return p


def dataset_name(name: str) -> str:
    """The registered name for --dataset: a full name, a short one (galaxies, fields), or your own HR/LR pairs."""
    full = name if name in DATASETS else f"superres-{name}"
    if full not in DATASETS and not metrics.registered_pairs(name):
        raise baseline.BaselineError(f"--dataset {name!r}: expected one of {', '.join(DATASETS)} (or galaxies, "
                                     "fields) or a registered dataset with 'hr' and 'lr' arrays")
    return full if full in DATASETS else name


def check_settings(cfg: dict) -> None:
    """The numbers --set can change, checked before any data is loaded."""
    for key in ("steps", "width", "blocks", "batch"):
        if cfg[key] < 1:
            raise baseline.BaselineError(f"--set {key}={cfg[key]}: expected a positive integer")
    for key, bound in (("lr", "> 0"), ("weight_decay", ">= 0"), ("pk_weight", ">= 0")):
        if not 0 <= cfg[key] < math.inf or (bound == "> 0" and cfg[key] == 0):  # (NaN fails 0 <= x)
            raise baseline.BaselineError(f"--set {key}={cfg[key]}: expected a finite number {bound}")


def main(argv=None) -> int:
    """Train, predict, score and write everything (once, on the main process)."""
    try:
        args = parser().parse_args(argv)
        args.dataset = dataset_name(args.dataset)
        settings = baseline.settings(FULL, FAST, args)
        run = baseline.start(args)
        check_settings(settings)
        onnx_path = args.export_onnx and baseline.check_file(args.export_onnx, "--export-onnx")
        if onnx_path and not all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript")):
            raise baseline.BaselineError("--export-onnx: needs onnx, onnxruntime and onnxscript; expected them "
                                         "installed (pip install 'astrobench[superres]')")
        if args.pretrained:  # no training: the shipped model, with the settings it was trained with
            lr_test, hr_test, test_ds = load_pairs(args.dataset, "test", run.fast)
            cfg, model = load_shipped(args.dataset, test_ds.meta)
        else:
            lr_train, hr_train, train_ds = load_pairs(args.dataset, "train", run.fast)
            lr_test, hr_test, test_ds = load_pairs(args.dataset, "test", run.fast)
            per_process = len(lr_train) // run.acc.num_processes
            if settings["batch"] > per_process:
                raise baseline.BaselineError(f"--set batch={settings['batch']}: expected at most {per_process}, "
                                             "the training pairs per process")
            cfg = make_config(args.dataset, train_ds.meta, settings)
            model = build_model(cfg)
            losses = train(model, lr_train, hr_train, cfg, run)
            run.acc.end_training()
            cfg = dict(cfg, steps_done=len(losses), final_loss=float(np.mean(losses[-50:])), loss_first_last={
                "first": float(np.mean(losses[:3])), "last": float(np.mean(losses[-3:]))})
        if not run.is_main:  # prediction, scoring and files: once, on the main process
            return 0
        sr = predict(model, lr_test, cfg, device=run.acc.device)
        result = metrics.score({"sr": sr}, task=args.dataset)  # the same code as `astrobench score`
        run.out.mkdir(parents=True, exist_ok=True)
        baseline.save_predictions(run.out / "predictions.npz", test_ds.meta, ("lr",), sr=sr)
        torch.save(model.state_dict(), run.out / "model.pt")
        baseline.write_json(run.out / "model_config.json", {**cfg, **run.record()})
        save_figures(run.out, lr_test, hr_test, sr, result, cfg)  # examples.png, pk.png
        report = run.write_metrics("superres", args.dataset, args.dataset, result, cfg, test_ds.meta,
                                   ("scikit-image", "astropy"))
        print(f"{args.dataset}: PSNR {result['psnr']:.2f} dB (bicubic {result['psnr_bicubic']:.2f}), "
              f"SSIM {result['ssim']:.3f} ({result['ssim_bicubic']:.3f}), P(k) worst |r-1| to half HR Nyquist "
              f"{result['pk_worst_half_nyquist']:.3f} ({result['pk_worst_half_nyquist_bicubic']:.3f}), "
              f"flux bias {result['flux_bias']:+.4f}; {cfg['steps_done']} steps"
              f"{' (pretrained)' * args.pretrained}, {report['seconds']} s -> {run.out}")
        if onnx_path:  # after metrics.json: the export moves the model to the CPU
            o = export_onnx(model, onnx_path, cfg, lr_test[:EDGE_IMAGES])
            ms = o["latency_ms_per_image"]
            print(f"ONNX -> {onnx_path}: max |diff| vs torch {o['max_abs_diff_vs_torch']['sr']:.1e} (relative "
                  f"{o['max_rel_diff_vs_torch']['sr']:.1e}); ms per image on {o['threads']} thread(s): "
                  f"onnxruntime {ms['onnxruntime']:.2f}, torch {ms['torch']:.2f}")
    except baseline.ERRORS as err:
        return baseline.fail(SCRIPT, err)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CLIP-style baseline: one embedding space for galaxy images and spectra (AstroCLIP in miniature).

    python multimodal/contrastive.py [--fast] [--out DIR] [--seed N] [--device auto|cpu|cuda] [--dataset NAME]

A small CNN encodes the g,r,z image, a 1-D CNN the spectrum; two projection heads map both into one
128-d space, trained with the symmetric InfoNCE loss of CLIP: in a batch of B pairs, each image must pick
its own spectrum out of B and vice versa. Then the script embeds the train and test splits, trains the
supervised ceiling (the same image CNN regressing redshift with the same steps) and scores everything
with ``astrobench.metrics.multimodal`` (zero-shot k-NN and few-shot MLP probes, cross-modal retrieval).

CLIP alone keeps only what the two views share (colours, brightness): the spectrum embedding then knows
redshift no better than the image does (k-NN R² 0.65 after 3 epochs). A second InfoNCE term between two
augmented views of each spectrum (SLIP-style self-supervision, weight SPEC_SSL_WEIGHT) makes the spectrum
embedding keep what identifies a spectrum, above all its line positions: R² 0.95 after the same 3 epochs.

Temperature: FIXED logit scale 15.5 (AstroCLIP's value, temperature 0.065). CLIP learns it; learned here,
it crept to ~16 with no change in probes or retrieval beyond seed noise (README), so the fixed value keeps
runs comparable with each other and with AstroCLIP at no cost. Set LEARN_TEMPERATURE to try.

Augmentations respect the physics: the sky has no preferred orientation and the PSF is round, so images
get the 8 flips/90° rotations; spectra get extra noise drawn from the simulator's own noise model and
a masked stretch (bad pixels, sky lines). No colour jitter: colours are what carries redshift.

Scaling (Hugging Face accelerate): the file runs unchanged under ``accelerate launch``. accelerate shards the
batches across processes (each process takes every P-th batch of one shared permutation; the InfoNCE
negatives stay within a process's batch, as they are not gathered across processes), ``--grad-accum``
accumulates micro-batches and ``--mixed-precision`` turns on autocast on a GPU. Embedding, scoring and
every file written happen once, on the main process. A plain ``python contrastive.py`` run is one process
and gives exactly the numbers it gave before.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from astrobench import scaling
from astrobench.scaling import make_accelerator  # shared by every baseline
from torch import nn
from tqdm.auto import tqdm

EMBED_DIM = 128  # shared embedding space
FEATURES = 256  # encoder output before the projection heads
CROP = 48  # central image pixels the encoders see (of 64)
WIDTH = {"full": 32, "fast": 16}  # channels of the first CNN stage (x2, x4 deeper)
EPOCHS = {"full": 8, "fast": 6}
BATCH = {"full": 256, "fast": 100}  # contrastive tasks get harder (better) with bigger batches
LR = 2e-3
WEIGHT_DECAY = 1e-4
LOGIT_SCALE = 15.5  # AstroCLIP's fixed logit scale (see the docstring)
LEARN_TEMPERATURE = False
SPEC_NOISE = 1.0  # augmentation noise, in units of the simulator's per-pixel sigma
SPEC_MASK_MAX = 48  # widest masked stretch of the 512-pixel spectrum
SPEC_SSL_WEIGHT = 1.0  # spectrum-view-vs-spectrum-view InfoNCE: keeps what only the spectrum knows (redshift)
MAX_MINUTES = {"full": 45.0, "fast": 5.0}  # safety cap per training run (a busy shared CPU)


# ---------------------------------------------------------------- data


def preprocess_images(images, sky_sigma) -> torch.Tensor:
    """nanomaggies -> arcsinh(flux / sky noise) per band: noise ~ 1, bright cores compressed, colours kept.
    Central CROP x CROP pixels: 99 % of the galaxies have a half-light radius < 2.7" (10 px), the rest is sky."""
    lo = (images.shape[-1] - CROP) // 2
    out = torch.empty((len(images), images.shape[1], CROP, CROP), dtype=torch.float32)
    sigma = np.asarray(sky_sigma, np.float32)[None, :, None, None]
    for i in range(0, len(images), 2000):  # chunks: the full split is ~1 GB
        x = np.asarray(images[i : i + 2000, :, lo : lo + CROP, lo : lo + CROP])
        out[i : i + 2000] = torch.from_numpy(np.arcsinh(x / sigma))
    return out


def preprocess_spectra(spectra: torch.Tensor, cfg: dict) -> torch.Tensor:
    """arcsinh(flux / sky noise), standardised with the train set's scalar mean and sd."""
    return (torch.asinh(spectra / cfg["sigma_sky"]) - cfg["spec_mean"]) / cfg["spec_sd"]


def augment_images(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One of the 8 symmetries of the square per galaxy (two flips and a transpose generate them)."""
    f = torch.rand(len(x), 3, generator=gen) < 0.5
    x = torch.where(f[:, 0, None, None, None], x.flip(-1), x)
    x = torch.where(f[:, 1, None, None, None], x.flip(-2), x)
    return torch.where(f[:, 2, None, None, None], x.transpose(-1, -2), x)


def augment_spectra(raw: torch.Tensor, gen: torch.Generator, cfg: dict) -> torch.Tensor:
    """Extra noise from the simulator's noise model, then one masked stretch; returns preprocessed spectra."""
    sigma = torch.sqrt(cfg["sigma_sky"] ** 2 + cfg["gain"] * raw.clamp(min=0))
    x = preprocess_spectra(raw + SPEC_NOISE * sigma * torch.randn(raw.shape, generator=gen), cfg)
    b, n = x.shape
    width = torch.randint(0, SPEC_MASK_MAX + 1, (b, 1), generator=gen)
    start = (torch.rand(b, 1, generator=gen) * (n - width)).long()
    pos = torch.arange(n)[None]
    return x.masked_fill((pos >= start) & (pos < start + width), 0.0)


# ---------------------------------------------------------------- models


def block(conv, cin, cout, stride):
    norm = nn.BatchNorm2d if conv is nn.Conv2d else nn.BatchNorm1d
    k = 3 if conv is nn.Conv2d else 5
    return nn.Sequential(conv(cin, cout, k, stride, k // 2, bias=False), norm(cout), nn.GELU())


class ImageEncoder(nn.Module):
    """3 x CROP x CROP -> FEATURES: conv stages halving the size, then global average pooling (position-free)."""

    def __init__(self, w: int):
        super().__init__()
        c = nn.Conv2d
        self.net = nn.Sequential(
            block(c, 3, w, 2),  # 24x24: a strided stem, as full-resolution convs cost too much on a CPU
            block(c, w, 2 * w, 2), block(c, 2 * w, 2 * w, 1),  # 12x12
            block(c, 2 * w, 4 * w, 2), block(c, 4 * w, 4 * w, 1),  # 6x6
            block(c, 4 * w, 4 * w, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # 3x3 -> pooled
            nn.Linear(4 * w, FEATURES), nn.GELU(),
        )

    def forward(self, x):
        return self.net(x)


class SpectrumEncoder(nn.Module):
    """512 pixels -> FEATURES: strided 1-D convs, then flatten (NOT pooling: where a feature sits is redshift)."""

    def __init__(self, w: int, n_wave: int):
        super().__init__()
        c = nn.Conv1d
        self.net = nn.Sequential(
            nn.Conv1d(1, w, 8, 4, 2), nn.GELU(),  # patchify stem: 4-pixel steps (full-res 1-D convs are slow)
            block(c, w, 2 * w, 2), block(c, 2 * w, 4 * w, 2), block(c, 4 * w, 4 * w, 1),
            nn.Flatten(), nn.Linear(4 * w * (n_wave // 16), FEATURES), nn.GELU(),
        )

    def forward(self, s):
        return self.net(s[:, None])


def head():
    return nn.Sequential(nn.Linear(FEATURES, FEATURES), nn.GELU(), nn.Linear(FEATURES, EMBED_DIM))


class CLIP(nn.Module):
    def __init__(self, w: int, n_wave: int, learn_temperature: bool | None = None):
        super().__init__()
        learn_temperature = LEARN_TEMPERATURE if learn_temperature is None else learn_temperature
        self.image_encoder, self.spectrum_encoder = ImageEncoder(w), SpectrumEncoder(w, n_wave)
        self.image_head, self.spectrum_head = head(), head()
        self.log_scale = nn.Parameter(torch.tensor(math.log(LOGIT_SCALE)), requires_grad=learn_temperature)

    def embed_image(self, x):
        return F.normalize(self.image_head(self.image_encoder(x)), dim=-1)

    def embed_spectrum(self, s):
        return F.normalize(self.spectrum_head(self.spectrum_encoder(s)), dim=-1)

    def forward(self, x, s, s2=None):  # the training loss (forward, so DDP's gradient sync sees the call)
        return self.loss(x, s, s2)

    def loss(self, x, s, s2=None):
        """CLIP loss between images and spectra; with a second view ``s2`` of the spectra, plus
        SPEC_SSL_WEIGHT x the same loss between the two spectrum views (SLIP-style self-supervision)."""
        scale = self.log_scale.clamp(max=math.log(100)).exp()
        v = self.embed_spectrum(s)
        loss = info_nce(self.embed_image(x), v, scale)
        if s2 is not None and SPEC_SSL_WEIGHT:
            loss = loss + SPEC_SSL_WEIGHT * info_nce(v, self.embed_spectrum(s2), scale)
        return loss


def info_nce(u, v, scale):
    """Symmetric InfoNCE: row i of u must pick row i of v among all rows, and vice versa."""
    logits = scale * u @ v.T
    labels = torch.arange(len(u), device=u.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


class RedshiftCNN(nn.Module):
    """The supervised ceiling: the same image encoder with a linear head on (standardised) redshift."""

    def __init__(self, w: int):
        super().__init__()
        self.encoder, self.out = ImageEncoder(w), nn.Linear(FEATURES, 1)

    def forward(self, x):
        return self.out(self.encoder(x))[:, 0]


# ---------------------------------------------------------------- training


class EpochPermutation(torch.utils.data.Sampler):
    """torch.randperm(n, generator) once per epoch, drawn when the epoch starts (RandomSampler draws an extra
    permutation at the end of each epoch, which would shift the augmentation draws that share ``generator``)."""

    def __init__(self, n: int, generator: torch.Generator):
        self.n, self.generator = n, generator

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


def fit(model, batch_loss, n: int, epochs: int, batch: int, seed: int, max_steps=None, max_minutes=None,
        desc="train", accelerator=None, log_dir=None) -> list:
    """AdamW + one-cycle schedule over ``epochs`` (or ``max_steps``) optimizer steps; returns the loss per step.
    ``batch_loss(model, idx, gen)``: the loss of the training rows ``idx``, random draws from ``gen``."""
    acc = accelerator or make_accelerator(next(model.parameters()).device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=WEIGHT_DECAY)
    gen = torch.Generator().manual_seed(seed)
    # batches of row indices: torch.randperm(n, generator=gen) each epoch, last partial batch dropped;
    # accelerate gives each process every P-th batch (and keeps gen in step across processes)
    sampler = EpochPermutation(n, gen)
    loader = torch.utils.data.DataLoader(range(n), batch_size=batch, sampler=sampler, drop_last=True)
    model, opt, loader = acc.prepare(model, opt, loader, device_placement=[True, True, False])
    rank, world = acc.process_index, acc.num_processes
    aug = gen if world == 1 else torch.Generator().manual_seed(seed + 1000 * rank)  # own augmentations per rank
    steps = max_steps or epochs * math.ceil(len(loader) / acc.gradient_accumulation_steps)
    # stepped by hand once per optimizer step (a prepared scheduler would step once per process)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt.optimizer, max_lr=LR, total_steps=steps, pct_start=0.15)
    history, micro, t0 = [], [], time.perf_counter()
    model.train()
    with tqdm(total=steps, desc=desc, unit="step", disable=not acc.is_main_process) as bar:
        while len(history) < steps:
            for idx in loader:
                if log_dir is not None and world > 1 and not history and not micro:  # read by the DDP test
                    log = {"rank": rank, "processes": world, "first_indices": idx.tolist()}
                    (Path(log_dir) / f"shard_rank{rank}_{desc.replace(' ', '_')}.json").write_text(json.dumps(log))
                with acc.accumulate(model):
                    loss = batch_loss(model, idx, aug)
                    acc.backward(loss)  # (divided by the accumulation steps)
                    opt.step()  # a no-op until the last micro-batch
                    opt.zero_grad(set_to_none=True)
                micro.append(loss.item())
                if not acc.sync_gradients:
                    continue
                sched.step()
                history.append(float(np.mean(micro)))
                micro = []
                bar.update()
                bar.set_postfix(loss=f"{history[-1]:.3f}")
                out_of_time = bool(max_minutes and time.perf_counter() - t0 > 60 * max_minutes)
                if world > 1:  # every process stops at the same step (the main one's clock decides)
                    flag = torch.tensor([float(out_of_time and acc.is_main_process)], device=acc.device)
                    out_of_time = bool(acc.reduce(flag, "sum").item())
                if len(history) >= steps or out_of_time:
                    break
            else:
                continue
            break
    acc.wait_for_everyone()
    acc.unwrap_model(model, keep_fp32_wrapper=False)  # drops the DDP wrapper and the autocast forward
    return history


@torch.no_grad()
def embed(fn, x: torch.Tensor, device: str, batch: int = 500) -> np.ndarray:
    return np.concatenate([fn(x[i : i + batch].to(device)).cpu().numpy() for i in range(0, len(x), batch)])


def load_data(dataset: str, fast: bool) -> dict:
    """Train/test tensors plus the preprocessing constants (from the dataset's own noise model)."""
    from astrobench import data

    train, test = data.load(dataset, "train", fast=fast), data.load(dataset, "test", fast=fast)
    if not {"images", "spectra"} <= set(train.arrays):
        raise data.DataError(f"dataset {dataset!r} has arrays {', '.join(train.arrays)}; expected images and spectra")
    conf = train.meta["config"]
    spec_raw = torch.from_numpy(np.array(train.spectra, np.float32))
    cfg = {"sky_sigma": list(conf["sky_sigma"]), "sigma_sky": float(conf["spectrum"]["sigma_sky"]),
           "gain": float(conf["spectrum"]["gain"])}
    a = torch.asinh(spec_raw / cfg["sigma_sky"])
    cfg.update(spec_mean=float(a.mean()), spec_sd=float(a.std()))
    return {"cfg": cfg, "train": train, "test": test,
            "img_train": preprocess_images(train.images, cfg["sky_sigma"]), "spec_train": spec_raw,
            "img_test": preprocess_images(test.images, cfg["sky_sigma"]),
            "spec_test": torch.from_numpy(np.array(test.spectra, np.float32))}


def train_clip(d: dict, fast: bool, seed: int, device: str, epochs=None, max_steps=None, accelerator=None,
               log_dir=None):
    mode = "fast" if fast else "full"
    acc = accelerator or make_accelerator(device)
    device = acc.device
    torch.manual_seed(seed)
    model = CLIP(WIDTH[mode], d["spec_train"].shape[1]).to(device)
    cfg = d["cfg"]

    def batch_loss(m, idx, gen):
        x = augment_images(d["img_train"][idx], gen).to(device)
        raw = d["spec_train"][idx]
        s, s2 = augment_spectra(raw, gen, cfg).to(device), augment_spectra(raw, gen, cfg).to(device)
        return m(x, s, s2)

    history = fit(model, batch_loss, len(d["img_train"]), epochs or EPOCHS[mode], BATCH[mode], seed,
                  max_steps=max_steps, max_minutes=MAX_MINUTES[mode], desc="CLIP", accelerator=acc, log_dir=log_dir)
    return model.eval(), history


def embed_all(model: CLIP, d: dict, device: str) -> dict:
    """Embeddings of both modalities for both splits, in the keys the scorer expects."""
    cfg, out = d["cfg"], {}
    for split, suffix in (("test", ""), ("train", "_train")):
        out[f"image_emb{suffix}"] = embed(model.embed_image, d[f"img_{split}"], device)
        spec = preprocess_spectra(d[f"spec_{split}"], cfg)
        out[f"spectrum_emb{suffix}"] = embed(model.embed_spectrum, spec, device)
    return out


def train_supervised(d: dict, fast: bool, seed: int, device: str, steps: int, accelerator=None):
    """Ceiling: RedshiftCNN on the train labels, the same steps, batch, schedule and augmentations.
    Returns (test-set redshift predictions, loss history); the predictions only on the main process."""
    mode = "fast" if fast else "full"
    acc = accelerator or make_accelerator(device)
    device = acc.device
    torch.manual_seed(seed)
    model = RedshiftCNN(WIDTH[mode]).to(device)
    z = torch.as_tensor(np.asarray(d["train"].truth["z"], np.float32))
    mu, sd = float(z.mean()), float(z.std())

    def batch_loss(m, idx, gen):
        x = augment_images(d["img_train"][idx], gen).to(device)
        return F.mse_loss(m(x).float(), ((z[idx] - mu) / sd).to(device))

    history = fit(model, batch_loss, len(z), 0, BATCH[mode], seed + 1, max_steps=steps, desc="supervised z",
                  accelerator=acc)
    model.eval()
    if not acc.is_main_process:
        return None, history
    return embed(model, d["img_test"], device) * sd + mu, history


# ---------------------------------------------------------------- figures and main


def plot(out: Path, pred: dict, hist_clip: list, hist_sup: list, truth) -> None:
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    fig = Figure(figsize=(14, 4))
    ax = fig.subplots(1, 3)
    ax[0].plot(hist_clip, label="CLIP + spectrum-view InfoNCE")
    ax[0].plot(hist_sup, label="supervised z (MSE, standardised)")
    ax[0].set(xlabel="step", ylabel="training loss", yscale="log", title="training")
    ax[0].legend()
    n = min(64, len(pred["image_emb"]))
    sim = pred["image_emb"][:n] @ pred["spectrum_emb"][:n].T
    im = ax[1].imshow(sim, cmap="magma")
    ax[1].set(xlabel="spectrum (test)", ylabel="image (test)", title="cosine similarity: pairs on the diagonal")
    fig.colorbar(im, ax=ax[1])
    ax[2].scatter(truth["z"], pred["supervised_z"], s=3, alpha=0.5)
    lim = [0, float(np.max(truth["z"]))]
    ax[2].plot(lim, lim, "k--", lw=0.8)
    ax[2].set(xlabel="true z", ylabel="predicted z", title="supervised CNN ceiling (test)")
    fig.tight_layout()
    fig.savefig(out / "clip.png", dpi=90)


def versions(meta: dict) -> dict:
    from importlib import metadata

    v = {p: metadata.version(p) for p in ("astrobench", "torch", "numpy", "scikit-learn")}
    v["dataset"] = {k: meta[k] for k in ("name", "version", "seed", "sha256")}
    return v


def run(fast: bool, out: Path, seed: int = 0, device: str = "cpu", dataset: str = "galaxies", max_steps=None,
        grad_accum: int = 1, mixed_precision=None, accelerator=None) -> dict | None:
    """Train, embed, score and write everything; returns the metrics.json dict (None on non-main processes)."""
    from astrobench.metrics import multimodal
    from astrobench.notebook import seed_everything

    t0 = time.perf_counter()
    acc = accelerator or make_accelerator(device, mixed_precision, grad_accum)
    seed_everything(seed)
    out.mkdir(parents=True, exist_ok=True)
    d = load_data(dataset, fast)
    model, hist_clip = train_clip(d, fast, seed, device, max_steps=max_steps, accelerator=acc, log_dir=out)
    supervised_z, hist_sup = train_supervised(d, fast, seed, device, steps=len(hist_clip), accelerator=acc)
    if not acc.is_main_process:  # embedding, scoring and files: once, on the main process
        return None
    pred = embed_all(model, d, acc.device)
    pred["supervised_z"] = supervised_z
    np.savez_compressed(out / "predictions.npz", **pred)
    metrics = multimodal.score(pred)  # the same code path as `astrobench score multimodal`
    mode = "fast" if fast else "full"
    config = {"fast": fast, "seed": seed, "device": device, "width": WIDTH[mode], "embed_dim": EMBED_DIM,
              "features": FEATURES, "epochs": EPOCHS[mode], "batch": BATCH[mode], "steps": len(hist_clip),
              "lr": LR, "weight_decay": WEIGHT_DECAY, "logit_scale": float(model.log_scale.exp()),
              "learn_temperature": model.log_scale.requires_grad, "crop": CROP, "spec_noise": SPEC_NOISE,
              "spec_mask_max": SPEC_MASK_MAX, "spec_ssl_weight": SPEC_SSL_WEIGHT, "preprocess": d["cfg"],
              "n_train": len(d["img_train"]), "n_test": len(d["img_test"]), "max_steps": max_steps,
              "grad_accum": acc.gradient_accumulation_steps, "mixed_precision": acc.mixed_precision,
              "processes": acc.num_processes,
              "loss_first_last": {"first": float(np.mean(hist_clip[:3])), "last": float(np.mean(hist_clip[-3:]))}}
    torch.save(model.state_dict(), out / "clip.pt")
    (out / "clip.config.json").write_text(json.dumps(config, indent=1))
    plot(out, pred, hist_clip, hist_sup, d["test"].truth)
    result = {"track": "multimodal", "task": "embeddings", "dataset": dataset, "metrics": metrics,
              "config": config, "versions": versions(d["train"].meta),
              "seconds": round(time.perf_counter() - t0, 1)}
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fast", action="store_true", help="FAST mode: 800/200 galaxies, narrow nets, ~1 min")
    p.add_argument("--out", default="outputs/multimodal")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--dataset", default="galaxies")
    p.add_argument("--max-steps", type=int, help="cap on the CLIP optimizer steps (the ceiling gets as many)")
    scaling.add_arguments(p)  # --grad-accum, --mixed-precision
    p.error = lambda msg: (print(f"contrastive.py: error: {msg}", file=sys.stderr), sys.exit(2))
    args = p.parse_args(argv)
    if args.max_steps is not None and args.max_steps < 1:
        p.error(f"--max-steps {args.max_steps}: expected a positive integer")
    from astrobench import data
    from astrobench.notebook import device as pick_device

    device = pick_device(args.device)
    try:
        acc = scaling.accelerator_from_args(args, device)
    except ValueError as err:  # bad --grad-accum, no GPU for cuda, fp16 without a GPU
        p.error(str(err))
    try:
        result = run(args.fast, Path(args.out), args.seed, device, args.dataset, args.max_steps, accelerator=acc)
    except data.DataError as err:
        p.error(str(err).splitlines()[0])
    acc.end_training()
    if result is None:  # not the main process
        return 0
    m = result["metrics"]
    print(json.dumps({k: round(v, 4) for k, v in m.items() if "fewshot" not in k}, indent=1))
    print(f"wrote {args.out}/metrics.json, predictions.npz, clip.png in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Anomaly-detection baseline: a convolutional autoencoder trained on (mostly normal) galaxy images.

    python anomaly/autoencoder.py [--fast] [--out DIR] [--seed N] [--device auto|cpu|cuda] [--dataset NAME]
                                  [--export-onnx PATH] [--max-steps N] [--grad-accum N] [--mixed-precision P]

The autoencoder learns to reproduce the normal population through a 32-number bottleneck, so what it
cannot reproduce (trails, hot pixels, arcs, companions...) is left in the residual. Pixels are in units
of the sky noise; the score is the residual chi^2 per pixel, each residual divided by its expected noise
sqrt(sky^2 + Poisson(source)): a bright galaxy core is allowed a larger residual than the sky, so the
score measures surprise, not brightness. Compared: IsolationForest on the autoencoder's latents, and
IsolationForest on a PCA of the pixels. Scored on the labelled test split with ``astrobench.metrics.anomaly``.
Real data: ``--dataset galaxy10-decals`` (Legacy Survey colour composites; Galaxy Zoo's disturbed and merging
galaxies are the anomalies, the noise is the border-estimated sky level with no Poisson term).
``--export-onnx PATH`` also writes the trained scorer as one ONNX graph (raw nanomaggies in, score out) for a
telescope site without PyTorch, with PATH.json beside it (inputs, outputs, parity and latency vs PyTorch).

Scaling (Hugging Face accelerate): the file runs unchanged under ``accelerate launch``. accelerate shards the
batches across processes (each takes every P-th batch of one shared permutation, flips from its own random
stream), ``--grad-accum`` accumulates micro-batches and ``--mixed-precision`` turns on autocast on a GPU; the
wall-clock cap is the main process's clock, so all processes anneal and stop at the same step. Scoring, the
IsolationForest comparisons, the ONNX export and every file written happen once, on the main process. A plain
``python autoencoder.py`` run is one process and gives exactly the numbers it gave before.
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
from astrobench import scaling
from astrobench.deploy import onnx_export, onnx_session, torch_vs_onnxruntime_ms  # shared with superres
from astrobench.scaling import make_accelerator  # shared by every baseline

DATASET = "galaxies-anomaly"
LATENT = 32  # small on purpose: the bottleneck must not have room for the rare patterns
WIDTHS = {"full": (16, 32, 64, 64), "fast": (8, 16, 32, 32)}
EPOCHS = {"full": 12, "fast": 6}
MAX_TRAIN_SECONDS = {"full": 20 * 60, "fast": 30}  # wall-clock cap (2 shared CPU cores)
# CPU threads for torch (None = torch's default). The FAST model is tiny: one thread is as quick, and on a
# shared CPU two threads wait on each other (measured 0.27 vs 0.75 s per step at load average 9 on 2 cores).
THREADS = {"full": None, "fast": 1}
BATCH = 64
# The train split holds ~1 % unlabelled anomalies; a saturated star has chi^2 ~1e5 against ~1 for a galaxy, so a
# plain mean lets a handful of images steer every gradient. Each batch's worst-explained 5 % are left out of the
# loss (a trimmed mean, as in least-trimmed-squares), so the model learns the normal population.
TRIM = 0.05
LR = 2e-3
STRETCH = 3.0  # network input asinh(x / STRETCH), x in sky-sigma units: linear in the noise, log in cores
PCA_COMPONENTS = 32
PCA_FIT_MAX = 5000  # train rows used to fit the pixel PCA (memory)
TOP_K = 32  # gallery size
EDGE_IMAGES = 64  # test images for the ONNX parity check and latency timing (--export-onnx)
TOP_PIXELS = 20  # a localised variant of the score: mean chi^2 of the 20 worst pixels (compared, not the default)


# ---------------------------------------------------------------- data


def load(dataset: str = DATASET, fast: bool | None = None):
    from astrobench import data

    return data.load(dataset, "train", fast=fast), data.load(dataset, "test", fast=fast)


def noise_model(meta: dict):
    """(sky sigma per band in nanomaggies, Poisson gain per band): in sky-sigma units the pixel variance
    is 1 + gain * signal, because counts = nanomaggies / flux_scale and var(counts) = sky + counts."""
    cfg = meta["config"]
    sky_sigma = np.asarray(cfg["sky_sigma"], dtype=np.float32)
    if "exposure_zp" not in cfg:  # real colour composites (Galaxy10): no photon counts, sky noise only
        return sky_sigma, np.zeros_like(sky_sigma)
    flux_scale = 10 ** (-0.4 * (cfg["exposure_zp"] - cfg["image_zp"]))
    return sky_sigma, (flux_scale / sky_sigma).astype(np.float32)


def to_sigma(images, sky_sigma) -> np.ndarray:
    """Images in nanomaggies -> units of sky noise per band (a copy: datasets are read-only memmaps)."""
    return np.asarray(images, dtype=np.float32) / sky_sigma[None, :, None, None]


# ---------------------------------------------------------------- model


def build_model(widths=WIDTHS["full"], latent: int = LATENT):
    import torch.nn as nn

    class Autoencoder(nn.ModuleDict):
        def forward(self, x):  # training calls the model, so DDP's gradient sync and autocast see the call
            return forward(self, x)

    c1, c2, c3, c4 = widths
    act = nn.GELU
    encoder = nn.Sequential(
        nn.Conv2d(3, c1, 4, 2, 1), act(),  # 32: no full-resolution layer (most of the cost on a CPU)
        nn.Conv2d(c1, c2, 4, 2, 1), act(),  # 16
        nn.Conv2d(c2, c3, 4, 2, 1), act(),  # 8
        nn.Conv2d(c3, c4, 4, 2, 1), act(),  # 4
        nn.Flatten(), nn.Linear(c4 * 16, latent),
    )
    decoder = nn.Sequential(
        nn.Linear(latent, c4 * 16), act(), nn.Unflatten(1, (c4, 4, 4)),
        nn.ConvTranspose2d(c4, c3, 4, 2, 1), act(),  # 8
        nn.ConvTranspose2d(c3, c2, 4, 2, 1), act(),  # 16
        nn.ConvTranspose2d(c2, c1, 4, 2, 1), act(),  # 32
        nn.Conv2d(c1, c1, 3, padding=1), act(),
        nn.ConvTranspose2d(c1, 3, 4, 2, 1),  # 64
    )
    return Autoencoder({"encoder": encoder, "decoder": decoder})


def forward(model, x):
    """x in sky-sigma units -> (stretched input u, stretched reconstruction, latent). The network works on
    u = asinh(x / STRETCH): the range from sky (~1) to bright cores (~1000) fits a network's scale."""
    import torch

    u = torch.asinh(x / STRETCH)
    z = model["encoder"](u)
    return u, model["decoder"](z), z


def unstretch(u):
    import torch

    return STRETCH * torch.sinh(u)


def chi2_map(x, recon, gain):
    """Squared noise-normalised residuals: (x - recon)^2 / (1 + gain * max(recon, 0)), per pixel and band.
    The variance comes from the reconstruction, a noiseless estimate of the source."""
    import torch

    var = 1.0 + gain.view(1, -1, 1, 1) * torch.clamp(recon, min=0.0)
    return (x - recon) ** 2 / var


def chi2_loss(x, u, u_hat, gain):
    """Per-image mean of the same chi^2 written in the stretched space: x - x_hat = STRETCH (sinh u - sinh u_hat)
    ~= STRETCH cosh((u + u_hat) / 2) (u - u_hat) (midpoint rule, error ~ (u - u_hat)^2 / 24). With the
    weights detached, the gradient stays linear in the error (no exponential of the network output)."""
    import torch

    mid = 0.5 * (u + u_hat.detach())
    recon = STRETCH * torch.sinh(u_hat.detach())
    sigma = torch.sqrt(1.0 + gain.view(1, -1, 1, 1) * torch.clamp(recon, min=0.0))
    return (((u - u_hat) * STRETCH * torch.cosh(mid) / sigma) ** 2).mean(dim=(1, 2, 3))  # per image


def lr_at(progress: float, lr: float = LR, warmup: float = 0.05) -> float:
    """Linear warm-up, then cosine decay to zero, as a function of training progress in [0, 1]."""
    if progress < warmup:
        return lr * progress / warmup
    return 0.5 * lr * (1 + np.cos(np.pi * min(1.0, (progress - warmup) / (1 - warmup))))


class EpochPermutation:
    """torch.randperm(n, generator) once per epoch, drawn when the epoch's first batch is asked for: the sampler
    of the DataLoader that accelerate shards, with the random draws in the order of a plain loop."""

    def __init__(self, n: int, generator):
        self.n, self.generator = n, generator

    def __len__(self):
        return self.n

    def __iter__(self):
        import torch

        return iter(torch.randperm(self.n, generator=self.generator).tolist())


def train(model, x_train, gain, epochs, seed, device="cpu", max_seconds=None, progress=True, batch=BATCH, lr=LR,
          max_steps=None, accelerator=None, log_dir=None):
    """Minimise the mean chi^2 of the reconstruction (the Gaussian negative log-likelihood under the noise
    model): the training loss is, to first order, the anomaly score: 'normal' means 'explained to the noise'.

    Progress is the larger of steps done / planned and seconds spent / ``max_seconds``, so on a slow or
    shared CPU the learning rate still anneals to zero within the time budget (fewer steps, same schedule).
    ``max_steps`` replaces the planned steps (``epochs`` of optimizer steps). Under several processes each
    trains on its shard of the batches; returns the loss per optimizer step (this process's batches)."""
    import torch
    from tqdm.auto import tqdm

    acc = accelerator or make_accelerator(device)
    rank, world, device = acc.process_index, acc.num_processes, acc.device
    g = torch.Generator().manual_seed(seed)
    x_train = torch.as_tensor(x_train)
    gain = torch.as_tensor(gain, device=device)
    opt = torch.optim.AdamW(model.to(device).parameters(), lr=lr, weight_decay=1e-4)
    # batches of row indices, torch.randperm(n, generator=g) each epoch; accelerate gives each process every P-th
    # batch (and keeps g in step across processes). Its own generator: the DataLoader leaves torch's global one alone
    n = len(x_train)
    loader = torch.utils.data.DataLoader(range(n), batch, sampler=EpochPermutation(n, g), generator=torch.Generator())
    model, opt, loader = acc.prepare(model, opt, loader, device_placement=[True, True, False])
    flips = g if world == 1 else torch.Generator().manual_seed(seed + 1000 * rank)  # own augmentations per rank
    steps = max_steps or epochs * math.ceil(len(loader) / acc.gradient_accumulation_steps)
    model.train()
    history, micro, t0, done = [], [], time.perf_counter(), 0.0
    bar = tqdm(total=steps, desc="training autoencoder", disable=not progress or not acc.is_main_process)
    while done < 1:
        for idx in loader:
            if log_dir is not None and world > 1 and not history and not micro:  # read by the DDP test
                log = {"rank": rank, "processes": world, "first_indices": idx.tolist()}
                (Path(log_dir) / f"shard_rank{rank}_autoencoder.json").write_text(json.dumps(log))
            for group in opt.param_groups:
                group["lr"] = lr_at(done, lr)
            xb = x_train[idx].to(device)
            if torch.rand(1, generator=flips).item() < 0.5:  # flips: the sky has no preferred orientation
                xb = xb.flip(-1)
            if torch.rand(1, generator=flips).item() < 0.5:
                xb = xb.flip(-2)
            with acc.accumulate(model):
                u, u_hat, _ = model(xb)
                per_image = chi2_loss(xb, u, u_hat.float(), gain)
                keep = len(per_image) - int(TRIM * len(per_image))
                loss = per_image.topk(keep, largest=False).values.mean()  # trimmed: contaminants do not steer
                acc.backward(loss)  # (divided by the accumulation steps)
                opt.step()  # a no-op until the last micro-batch
                opt.zero_grad(set_to_none=True)
            micro.append(loss.item())
            if not acc.sync_gradients:
                continue
            history.append(float(np.mean(micro)))
            micro = []
            bar.update()
            bar.set_postfix(chi2=f"{history[-1]:.3f}")
            done = len(history) / steps
            if max_seconds:
                elapsed = time.perf_counter() - t0
                if world > 1:  # the main process's clock decides: same learning rate and last step everywhere
                    clock = torch.tensor([elapsed if acc.is_main_process else 0.0], dtype=torch.float64, device=device)
                    elapsed = acc.reduce(clock, "sum").item()
                done = max(done, elapsed / max_seconds)
            if done >= 1:
                break
    bar.close()
    acc.wait_for_everyone()
    acc.unwrap_model(model, keep_fp32_wrapper=False)  # drops the DDP wrapper and the autocast forward
    return history


def evaluate(model, x, gain, device="cpu", batch: int = 256):
    """Per image: mean chi^2 score, latent vector, reconstruction (sky-sigma units), top-pixel chi^2 score."""
    import torch

    gain = torch.as_tensor(gain, device=device)
    model.to(device).eval()
    scores, latents, recons, tops = [], [], [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.as_tensor(x[i : i + batch]).to(device)
            _, u_hat, z = forward(model, xb)
            recon = unstretch(u_hat)
            chi2 = chi2_map(xb, recon, gain)
            scores.append(chi2.mean(dim=(1, 2, 3)).cpu())
            tops.append(chi2.flatten(1).topk(TOP_PIXELS, dim=1).values.mean(dim=1).cpu())
            latents.append(z.cpu())
            recons.append(recon.cpu())
    return (torch.cat(scores).numpy(), torch.cat(latents).numpy(), torch.cat(recons).numpy(),
            torch.cat(tops).numpy())


# ---------------------------------------------------------------- deploy at the edge (ONNX)


def edge_scorer(model, sky_sigma, gain):
    """The whole scoring path as one module, so a site needs no pre/post-processing: raw images (N, 3, 64, 64)
    in nanomaggies, sky-subtracted, bands g,r,z -> (score (N,), top-pixel score (N,), reconstruction in
    nanomaggies). The noise model (sky sigma, Poisson gain) is baked in as constants of the training data."""
    import torch

    class EdgeScorer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("sky_sigma", torch.as_tensor(sky_sigma, dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("gain", torch.as_tensor(gain, dtype=torch.float32))

        def forward(self, images):
            x = images / self.sky_sigma
            recon = unstretch(forward(self.model, x)[1])
            chi2 = chi2_map(x, recon, self.gain)
            top = chi2.flatten(1).topk(TOP_PIXELS, dim=1).values.mean(dim=1)
            return chi2.mean(dim=(1, 2, 3)), top, recon * self.sky_sigma

    return EdgeScorer().cpu().eval()


def export_onnx(model, path, sky_sigma, gain, images, threads: int = 1) -> dict:
    """Export the trained scorer to ``path``, check it against PyTorch on ``images`` (raw, nanomaggies) and time
    both on the CPU with ``threads`` threads. Returns (and writes to PATH.json) what a site needs to know."""
    import torch

    edge = edge_scorer(model, sky_sigma, gain)
    images = np.array(images, dtype=np.float32)  # a writable copy (datasets are read-only memmaps)
    path = onnx_export(edge, torch.from_numpy(images[:2]), path, "images",
                       ("score", "score_top_pixels", "reconstruction"), {0: "batch"})
    session = onnx_session(path, threads)
    with torch.no_grad():
        ref = [t.numpy() for t in edge(torch.from_numpy(images))]
    got = session.run(None, {"images": images})
    names = ("score", "score_top_pixels", "reconstruction")
    diffs = {name: float(np.max(np.abs(a - b))) for name, a, b in zip(names, got, ref)}
    # chi^2 reaches ~1e5 on a saturated star, where float32 spacing is ~1e-2: compare relative to max(|ref|, 1) too
    rel = {name: float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0))) for name, a, b in zip(names, got, ref)}
    ms_torch, ms_ort = torch_vs_onnxruntime_ms(edge, session, "images", images, threads)
    info = {"model": path.name, "input": {"images": "float32 (N, 3, 64, 64): sky-subtracted nanomaggies per pixel, "
                                          "bands g, r, z, as astrobench.data.load(...).images"},
            "outputs": {"score": "(N,) mean chi^2 per pixel; higher = more anomalous",
                        "score_top_pixels": f"(N,) mean chi^2 of the {TOP_PIXELS} worst pixels",
                        "reconstruction": "(N, 3, 64, 64) the autoencoder's image, nanomaggies"},
            "constants": {"sky_sigma": np.asarray(sky_sigma).tolist(), "gain": np.asarray(gain).tolist(),
                          "stretch": STRETCH},
            "max_abs_diff_vs_torch": diffs, "max_rel_diff_vs_torch": rel, "parity_images": len(images),
            "threads": threads,
            "latency_ms_per_image": {"torch": round(ms_torch, 3), "onnxruntime": round(ms_ort, 3)},
            "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "versions": {p: _version(p) for p in ("torch", "onnx", "onnxruntime", "onnxscript")}}
    path.with_suffix(path.suffix + ".json").write_text(json.dumps(info, indent=1))
    return info


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------- comparisons


def iforest_scores(train_feats, test_feats, seed: int) -> np.ndarray:
    """IsolationForest fit on train features; higher = more anomalous (sklearn's score_samples is the opposite)."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=300, random_state=seed).fit(train_feats)
    return -forest.score_samples(test_feats)


def pca_features(x_train, x_test, seed: int, n: int = PCA_COMPONENTS):
    """PCA of the asinh-stretched pixels (the same stretch the autoencoder sees), fit on train."""
    from sklearn.decomposition import PCA

    def flat(x):
        return np.arcsinh(x / STRETCH).reshape(len(x), -1)

    rows = np.random.default_rng(seed).permutation(len(x_train))[:PCA_FIT_MAX]
    pca = PCA(n_components=n, random_state=seed).fit(flat(x_train[rows]))
    return pca.transform(flat(x_train)), pca.transform(flat(x_test))


# ---------------------------------------------------------------- figures


def gallery(images, scores, types, path=None, k: int = TOP_K, sky_sigma=None):
    """The k highest-scoring test images with their true type (what a follow-up team would look at)."""
    from astrobench.plotting import image_grid

    top = np.argsort(-scores, kind="stable")[:k]
    titles = [f"#{r + 1} {types[i]}" for r, i in enumerate(top)]
    scale = None if sky_sigma is None else 30 * sky_sigma
    fig = image_grid(np.asarray(images)[top], titles, ncols=8, scale=scale)
    if path:
        fig.savefig(path, dpi=80)
    return fig


def score_histogram(scores, types, path=None, ax=None):
    import matplotlib.pyplot as plt

    ax = ax or plt.figure(figsize=(7, 4)).gca()
    bins = np.geomspace(max(scores.min(), 1e-3), scores.max(), 60)
    ax.hist(scores[types == "none"], bins=bins, alpha=0.6, label="normal", density=True)
    ax.hist(scores[types != "none"], bins=bins, alpha=0.6, label="anomalous", density=True)
    ax.set(xscale="log", xlabel="anomaly score (mean $\\chi^2$ per pixel)", ylabel="density")
    ax.legend()
    if path:
        ax.figure.savefig(path, dpi=90, bbox_inches="tight")
    return ax


# ---------------------------------------------------------------- main


def versions(meta: dict) -> dict:
    from importlib import metadata

    out = {p: metadata.version(p) for p in ("astrobench", "numpy", "torch", "scikit-learn")}
    out["dataset"] = {k: meta.get(k) for k in ("name", "version", "seed", "sha256")}
    return out


def run(fast: bool, out: Path, seed: int = 0, device: str = "auto", dataset: str = DATASET, progress=True,
        export_onnx_path=None, max_steps=None, grad_accum: int = 1, mixed_precision=None, accelerator=None):
    """Train, score, compare and write everything; returns the metrics.json dict (None on non-main processes)."""
    import torch
    from astrobench import metrics, notebook
    from astrobench.data import DataError
    from astrobench.metrics import anomaly as anomaly_metrics

    t0 = time.perf_counter()
    mode = "fast" if fast else "full"
    notebook.seed_everything(seed)
    device = notebook.device(device)
    acc = accelerator or make_accelerator(device, mixed_precision, grad_accum)
    if THREADS[mode]:
        torch.set_num_threads(THREADS[mode])
    train_ds, test_ds = load(dataset, fast)
    try:  # labelled test rows: injected anomalies, or a real set's anomalous classes
        labels, types = anomaly_metrics.truth(dataset, table=test_ds.truth)
    except metrics.ScoreInputError as err:
        raise DataError(str(err)) from None
    sky_sigma, gain = noise_model(train_ds.meta)
    x_train = to_sigma(train_ds.images, sky_sigma)
    model = build_model(WIDTHS[mode])
    out.mkdir(parents=True, exist_ok=True)
    history = train(model, x_train, gain, EPOCHS[mode], seed, device, MAX_TRAIN_SECONDS[mode], progress,
                    max_steps=max_steps, accelerator=acc, log_dir=out)
    if not acc.is_main_process:  # scoring, comparisons and files: once, on the main process
        return None
    x_test = to_sigma(test_ds.images, sky_sigma)
    s_test, z_test, _, top_test = evaluate(model, x_test, gain, acc.device)
    z_train = evaluate(model, x_train, gain, acc.device)[1]
    pca_train, pca_test = pca_features(x_train, x_test, seed)
    pred = {"score": s_test.astype(np.float64), "score_ae_top_pixels": top_test.astype(np.float64),
            "score_iforest_latent": iforest_scores(z_train, z_test, seed),
            "score_iforest_pca": iforest_scores(pca_train, pca_test, seed)}
    if dataset == anomaly_metrics.DATASET or dataset in anomaly_metrics.REAL_ANOMALIES:
        result = metrics.score("anomaly", dict(pred, dataset=dataset))  # the path of `astrobench score anomaly`
        if dataset != anomaly_metrics.DATASET:
            pred["dataset"] = np.array(dataset)  # so that `astrobench score anomaly predictions.npz` finds it
    else:  # another labelled set (e.g. a registered variant): the same metrics on its own labels
        result = anomaly_metrics.anomaly_metrics(pred["score"], labels, types)
    np.savez(out / "predictions.npz", **pred)
    config = {"mode": mode, "seed": seed, "device": device, "latent": LATENT, "widths": WIDTHS[mode],
              "epochs": EPOCHS[mode], "max_train_seconds": MAX_TRAIN_SECONDS[mode], "batch": BATCH, "lr": LR,
              "stretch": STRETCH, "trim": TRIM, "steps_done": len(history),
              "final_train_chi2": float(np.mean(history[-20:])),
              "pca_components": PCA_COMPONENTS, "score": "mean chi^2 per pixel, var = 1 + gain * recon",
              "max_steps": max_steps, "grad_accum": acc.gradient_accumulation_steps,
              "mixed_precision": acc.mixed_precision, "processes": acc.num_processes,
              "loss_first_last": {"first": float(np.mean(history[:3])), "last": float(np.mean(history[-3:]))}}
    torch.save(model.state_dict(), out / "autoencoder.pt")
    (out / "autoencoder.json").write_text(json.dumps(config, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    gallery(test_ds.images, pred["score"], types, out / "topk_gallery.png", sky_sigma=sky_sigma)
    score_histogram(pred["score"], types, out / "score_hist.png")
    report = {"track": "anomaly", "task": "detect", "dataset": dataset, "metrics": result, "config": config,
              "versions": versions(test_ds.meta), "seconds": round(time.perf_counter() - t0, 1)}
    (out / "metrics.json").write_text(json.dumps(report, indent=1))
    if export_onnx_path:  # after metrics.json: the export moves the model to the CPU
        report["onnx"] = export_onnx(model, export_onnx_path, sky_sigma, gain, test_ds.images[:EDGE_IMAGES])
    return report


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"autoencoder.py: error: {message}", file=sys.stderr)
        sys.exit(2)


def main(argv=None) -> int:
    p = _Parser(description=__doc__.splitlines()[0])
    p.add_argument("--fast", action="store_true", help="FAST mode: small data, narrow model, few epochs")
    p.add_argument("--out", default="outputs/anomaly", help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--dataset", default=DATASET)
    p.add_argument("--export-onnx", metavar="PATH", help="also export the trained scorer (raw images -> score) to "
                   "this ONNX file, with PATH.json (parity and CPU latency vs PyTorch)")
    p.add_argument("--max-steps", type=int, help="optimizer steps (default: the epochs'); the schedule spans them")
    scaling.add_arguments(p)  # --grad-accum, --mixed-precision
    args = p.parse_args(argv)
    if args.max_steps is not None and args.max_steps < 1:
        p.error(f"--max-steps {args.max_steps}: expected a positive integer")
    from astrobench.data import DataError
    from astrobench.metrics import ScoreInputError
    from astrobench.notebook import device as pick_device

    device = pick_device(args.device)
    try:
        acc = scaling.accelerator_from_args(args, device)
    except ValueError as err:  # bad --grad-accum, no GPU for cuda, fp16 without a GPU
        p.error(str(err))
    try:
        report = run(args.fast, Path(args.out), args.seed, device, args.dataset, export_onnx_path=args.export_onnx,
                     max_steps=args.max_steps, accelerator=acc)
    except (DataError, ScoreInputError) as err:
        print(f"autoencoder.py: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    acc.end_training()
    if report is None:  # not the main process
        return 0
    m = report["metrics"]
    print(f"AUROC {m['auroc']:.4f}  AUPRC {m['auprc']:.4f}  precision@1% {m['precision_at_1pct']:.3f}  "
          f"recall@1%FPR {m['recall_at_1pct_fpr']:.3f}  ({report['seconds']:.0f} s) -> {args.out}")
    if "onnx" in report:
        o = report["onnx"]
        print(f"ONNX -> {args.export_onnx}: max relative diff vs torch {max(o['max_rel_diff_vs_torch'].values()):.1e}; "
              f"ms per image on {o['threads']} thread(s): onnxruntime {o['latency_ms_per_image']['onnxruntime']:.2f}, "
              f"torch {o['latency_ms_per_image']['torch']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

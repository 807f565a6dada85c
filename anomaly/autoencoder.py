"""Anomaly-detection baseline: a convolutional autoencoder trained on (mostly normal) galaxy images.

    python anomaly/autoencoder.py [--fast] [--out DIR] [--seed N] [--device auto|cpu|cuda] [--dataset NAME]
                                  [--threads N] [--epochs N] [--set KEY=VALUE] [--export-onnx PATH] [--pretrained]

The autoencoder learns to reproduce the normal population through a 32-number bottleneck, so what it cannot reproduce
(trails, hot pixels, arcs, companions...) is left in the residual. Pixels are in units of the sky noise; the score is
the residual chi^2 per pixel, each residual divided by its expected noise sqrt(sky^2 + Poisson(source)): a bright
galaxy core is allowed a larger residual than the sky, so the score measures surprise, not brightness. Compared:
IsolationForest on the autoencoder's latents and on a PCA of the pixels. Scored on the labelled test split with
``astrobench.metrics.anomaly``.

The budget is ``epochs`` of optimizer steps; the learning rate follows the step alone. Real data: ``--dataset
galaxy10-decals`` (Galaxy Zoo's disturbed and merging galaxies are the anomalies; sky noise only). ``--export-onnx
PATH`` also writes the trained scorer as one ONNX graph (raw nanomaggies in, score out). ``--pretrained``: no
training, the shipped full-run model (anomaly/pretrained/) is evaluated. Under ``accelerate launch`` each process
takes every P-th batch of one shared permutation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from astrobench import baseline
from autoencoder_extras import SigmaImages, gallery, iforest_scores, score_histogram, to_sigma
from torch import nn

SCRIPT = "autoencoder.py"
DATASET = "galaxies-anomaly"
# ---------------------------------------------------------------- settings: FULL and FAST (--set KEY=VALUE)
FULL = dict(epochs=30, steps=None, widths=(16, 32, 64, 64), latent=32, batch=64, lr=2e-3, warmup=0.05, trim=0.05)
FAST = dict(epochs=6, steps=None, widths=(8, 16, 32, 32), latent=32, batch=64, lr=2e-3, warmup=0.05, trim=0.05)
# steps: optimizer steps instead of epochs when set. latent: small, so the bottleneck has no room for rare
# patterns. trim: the train split holds ~1 % unlabelled anomalies (a saturated star has chi^2 ~1e5, a galaxy ~1),
# so each batch's worst-explained 5 % are left out of the loss (a trimmed mean, as in least-trimmed-squares).
STRETCH = 3.0  # network input asinh(x / STRETCH), x in sky-sigma units: linear in the noise, log in cores
PCA_COMPONENTS = 32
PCA_FIT_MAX = 5000  # train rows used to fit the pixel PCA (memory)
TOP_PIXELS = 20  # a localised variant of the score: mean chi^2 of the 20 worst pixels (compared, not the default)
EDGE_IMAGES = 64  # test images for the ONNX parity check and latency timing (--export-onnx)
PRETRAINED = Path(__file__).resolve().parent / "pretrained"  # the shipped full-run model (--pretrained)
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


# ================================================================ MODEL SLOT: replace build_model with your own


def build_model(cfg: dict) -> nn.Module:
    """Replace this with your model. Interface: ``model(x) -> (u, u_hat, z)``: x (B, 3, 64, 64) float32 images in
    sky-noise units (bands g, r, z); u = asinh(x / STRETCH) the stretched input, u_hat (B, 3, 64, 64) its
    reconstruction in the same stretched units, z (B, k) a latent vector (the IsolationForest comparison uses it).
    The loss (``chi2_loss``) is the noise-weighted squared error between u and u_hat, and the anomaly score the
    chi^2 of STRETCH sinh(u_hat) against x. ``cfg``: the FULL/FAST settings (widths, latent)."""
    c1, c2, c3, c4 = cfg["widths"]
    act = nn.GELU
    encoder = nn.Sequential(
        nn.Conv2d(3, c1, 4, 2, 1), act(),  # 32: no full-resolution layer (most of the cost on a CPU)
        nn.Conv2d(c1, c2, 4, 2, 1), act(),  # 16
        nn.Conv2d(c2, c3, 4, 2, 1), act(),  # 8
        nn.Conv2d(c3, c4, 4, 2, 1), act(),  # 4
        nn.Flatten(), nn.Linear(c4 * 16, cfg["latent"]),
    )
    decoder = nn.Sequential(
        nn.Linear(cfg["latent"], c4 * 16), act(), nn.Unflatten(1, (c4, 4, 4)),
        nn.ConvTranspose2d(c4, c3, 4, 2, 1), act(),  # 8
        nn.ConvTranspose2d(c3, c2, 4, 2, 1), act(),  # 16
        nn.ConvTranspose2d(c2, c1, 4, 2, 1), act(),  # 32
        nn.Conv2d(c1, c1, 3, padding=1), act(),
        nn.ConvTranspose2d(c1, 3, 4, 2, 1),  # 64
    )
    return Autoencoder(encoder, decoder)


class Autoencoder(nn.Module):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x):
        u = torch.asinh(x / STRETCH)  # sky (~1) to bright cores (~1000) fit a network's scale
        z = self.encoder(u)
        return u, self.decoder(z), z


# ================================================================ loss, training, scoring


def chi2_map(x, recon, gain):
    """Per pixel and band (x - recon)^2 / (1 + gain * max(recon, 0)): the variance from the noiseless recon."""
    var = 1.0 + gain.view(1, -1, 1, 1) * torch.clamp(recon, min=0.0)
    return (x - recon) ** 2 / var


def chi2_loss(x, u, u_hat, gain):
    """Per-image mean of the same chi^2 written in the stretched space: x - x_hat = STRETCH (sinh u - sinh u_hat)
    ~= STRETCH cosh((u + u_hat) / 2) (u - u_hat) (midpoint rule, error ~ (u - u_hat)^2 / 24). With the
    weights detached, the gradient stays linear in the error (no exponential of the network output)."""
    mid = 0.5 * (u + u_hat.detach())
    recon = STRETCH * torch.sinh(u_hat.detach())
    sigma = torch.sqrt(1.0 + gain.view(1, -1, 1, 1) * torch.clamp(recon, min=0.0))
    return (((u - u_hat) * STRETCH * torch.cosh(mid) / sigma) ** 2).mean(dim=(1, 2, 3))  # per image


def lr_at(step: int, steps: int, lr: float, warmup: float) -> float:
    """Linear warm-up, then cosine decay to zero: a function of the step alone."""
    p = step / steps
    return lr * p / warmup if p < warmup else 0.5 * lr * (1 + np.cos(np.pi * min(1.0, (p - warmup) / (1 - warmup))))


def train(model, x_train, gain, cfg: dict, run=None, progress: bool = True) -> list:
    """Minimise the trimmed mean chi^2 of the reconstruction (the Gaussian negative log-likelihood under the
    noise model): the training loss is, to first order, the anomaly score. ``cfg["epochs"]`` epochs of
    optimizer steps (``cfg["steps"]`` instead, when set); returns the loss per optimizer step."""
    from tqdm.auto import tqdm

    run = run or baseline.local_run()
    acc, device = run.acc, run.acc.device
    g = torch.Generator().manual_seed(run.seed)
    x_train = x_train if isinstance(x_train, SigmaImages) else torch.as_tensor(x_train)
    gain = torch.as_tensor(gain, device=device)
    opt = torch.optim.AdamW(model.to(device).parameters(), lr=cfg["lr"], weight_decay=1e-4)
    loader = baseline.epoch_batches(acc, len(x_train), cfg["batch"], g, name="autoencoder")
    model, opt = acc.prepare(model, opt)
    flips = g if acc.num_processes == 1 else torch.Generator().manual_seed(run.seed + 1000 * acc.process_index)
    steps = cfg.get("steps") or cfg["epochs"] * -(-len(loader) // acc.gradient_accumulation_steps)
    model.train()
    history, micro = [], []
    bar = tqdm(total=steps, desc="training autoencoder", disable=not progress or not run.is_main)
    while len(history) < steps and not run.stopped_by_clock:
        for idx in loader:
            for group in opt.param_groups:
                group["lr"] = lr_at(len(history), steps, cfg["lr"], cfg["warmup"])
            xb = torch.as_tensor(x_train[idx]).to(device)
            for dim in (-1, -2):  # random flips: the sky has no preferred orientation
                xb = xb.flip(dim) if torch.rand(1, generator=flips).item() < 0.5 else xb
            with acc.accumulate(model):
                u, u_hat, _ = model(xb)
                per_image = chi2_loss(xb, u, u_hat.float(), gain)
                keep = len(per_image) - int(cfg["trim"] * len(per_image))
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
            if len(history) >= steps or run.out_of_time():
                break
    bar.close()
    acc.wait_for_everyone()
    acc.unwrap_model(model, keep_fp32_wrapper=False)  # drops the DDP wrapper and the autocast forward
    return history


def scores(model, x, gain):
    """x (sky sigmas) -> per image (mean chi^2, mean chi^2 of its TOP_PIXELS worst pixels, reconstruction, latent)."""
    _, u_hat, z = model(x)
    recon = STRETCH * torch.sinh(u_hat)
    chi2 = chi2_map(x, recon, gain)
    return chi2.mean(dim=(1, 2, 3)), chi2.flatten(1).topk(TOP_PIXELS, dim=1).values.mean(dim=1), recon, z


@torch.no_grad()
def evaluate(model, x, gain, device="cpu", batch: int = 256, recon: bool = True):
    """Per image: mean chi^2 score, latent vector, reconstruction (sky-sigma units), top-pixel chi^2 score, batch by
    batch. ``recon=False`` keeps no reconstruction (None in its place): one per image is as large as the input."""
    gain = torch.as_tensor(gain, device=device)
    model.to(device).eval()
    keep = (0, 1, 2, 3) if recon else (0, 1, 3)
    parts = {k: [] for k in keep}
    for i in range(0, len(x), batch):
        out = scores(model, torch.as_tensor(x[i : i + batch]).to(device), gain)
        for k in keep:
            parts[k].append(out[k].cpu())
    score, top, z = (torch.cat(parts[k]).numpy() for k in (0, 1, 3))
    return score, z, (torch.cat(parts[2]).numpy() if recon else None), top


class EdgeScorer(nn.Module):
    """The whole scoring path as one module, for a site without pre/post-processing: raw images (N, 3, 64, 64)
    in sky-subtracted nanomaggies, bands g, r, z -> (score (N,), top-pixel score (N,), reconstruction in
    nanomaggies). The noise model (sky sigma, Poisson gain) is baked in as constants of the training data."""

    def __init__(self, model, sky_sigma, gain):
        super().__init__()
        self.model = model
        self.register_buffer("sky_sigma", torch.as_tensor(sky_sigma, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("gain", torch.as_tensor(gain, dtype=torch.float32))

    def forward(self, images):
        score, top, recon, _ = scores(self.model, images / self.sky_sigma, self.gain)
        return score, top, recon * self.sky_sigma


def export_onnx(model, path, sky_sigma, gain, images, threads: int = 1) -> dict:
    """The scorer as ONNX at ``path``, checked against PyTorch on ``images`` (raw nanomaggies) and timed on
    ``threads`` CPU threads; returns (and writes to PATH.json) what a site needs to know."""
    from astrobench.deploy import export_checked

    describe = {"input": {"images": "float32 (N, 3, 64, 64): sky-subtracted nanomaggies, bands g, r, z"},
                "outputs": {"score": "(N,) mean chi^2 per pixel; higher = more anomalous",
                            "score_top_pixels": f"(N,) mean chi^2 of the {TOP_PIXELS} worst pixels",
                            "reconstruction": "(N, 3, 64, 64) the autoencoder's image, nanomaggies"},
                "constants": {"sky_sigma": np.asarray(sky_sigma).tolist(), "gain": np.asarray(gain).tolist()}}
    return export_checked(EdgeScorer(model, sky_sigma, gain).cpu().eval(), images, path, "images",
                          ("score", "score_top_pixels", "reconstruction"), {0: "batch"}, describe, threads=threads)


# ---------------------------------------------------------------- comparisons and figures


def pca_features(x_train, x_test, seed: int, n: int = PCA_COMPONENTS):
    """PCA of the asinh-stretched pixels (the same stretch the autoencoder sees), fit on train."""
    from sklearn.decomposition import PCA

    def flat(x):  # one new array per call (x / STRETCH), stretched in place: no second copy of the batch
        y = np.divide(x, STRETCH)
        return np.arcsinh(y, out=y).reshape(len(y), -1)

    rows = np.random.default_rng(seed).permutation(len(x_train))[:PCA_FIT_MAX]
    pca = PCA(n_components=n, random_state=seed, copy=False).fit(flat(x_train[rows]))  # centres our copy in place
    step = 2048  # transform in chunks: no stretched copy of a whole split
    project = lambda x: np.concatenate([pca.transform(flat(x[i : i + step])) for i in range(0, len(x), step)])
    return project(x_train), project(x_test)


# ---------------------------------------------------------------- main


def parser():
    p = baseline.parser(SCRIPT, __doc__, out="outputs/anomaly", dataset=DATASET, budget="epochs",
                        budget_help="training epochs (FULL 30, FAST 6); --set steps=N counts optimizer steps instead")
    p.add_argument("--export-onnx", metavar="PATH", help="also export the trained scorer (raw images -> score) to "
                   "this ONNX file, with PATH.json (parity and CPU latency vs PyTorch)")
    return p


def main(argv=None) -> int:
    """Train (or load the shipped model), score, compare and write everything (once, on the main process)."""
    from astrobench import metrics
    from astrobench.metrics import anomaly as anomaly_metrics

    try:
        args = parser().parse_args(argv)
        cfg = baseline.settings(FULL, FAST, args)
        run = baseline.start(args)
        onnx_path = args.export_onnx and baseline.check_file(args.export_onnx, "--export-onnx")
        train_ds, test_ds = load(args.dataset, run.fast)
        event = test_ds.meta.get("kind") == "event"  # an event's release ($ASTROBENCH_EVENT): inputs, no labels
        if not event:
            labels, types = anomaly_metrics.truth(args.dataset, table=test_ds.truth)  # labelled, or exit 2
        sky_sigma, gain = noise_model(train_ds.meta)
        x_train = to_sigma(train_ds.images, sky_sigma)
        if args.pretrained:  # the shipped model, checked against this data; built with its settings, not FULL/FAST
            state, cfg = baseline.load_pretrained(PRETRAINED, test_ds.meta)
            cfg["pretrained"] = json.loads((PRETRAINED / "manifest.json").read_text())["command"]
        model = build_model(cfg)
        if args.pretrained:
            model.load_state_dict(state)
        history = [] if args.pretrained else train(model, x_train, gain, cfg, run)
        run.acc.end_training()
        if not run.is_main:
            return 0
        x_test = to_sigma(test_ds.images, sky_sigma)
        s_test, z_test, _, top_test = evaluate(model, x_test, gain, run.acc.device, recon=False)
        z_train = evaluate(model, x_train, gain, run.acc.device, recon=False)[1]
        pca_train, pca_test = pca_features(x_train, x_test, run.seed)
        pred = {"score": s_test.astype(np.float64), "score_ae_top_pixels": top_test.astype(np.float64),
                "score_iforest_latent": iforest_scores(z_train, z_test, run.seed),
                "score_iforest_pca": iforest_scores(pca_train, pca_test, run.seed)}
        if event:  # the organisers score it: `astrobench event score anomaly` on the submission
            result = {"event": "predictions on an event's release: scored by the organisers", "n_test": len(x_test)}
        elif args.dataset == anomaly_metrics.DATASET or args.dataset in anomaly_metrics.REAL_ANOMALIES:
            result = metrics.score("anomaly", dict(pred, dataset=args.dataset))  # `astrobench score anomaly`'s path
            if args.dataset != anomaly_metrics.DATASET:
                pred["dataset"] = np.array(args.dataset)  # so that `astrobench score anomaly` finds the set
        else:  # another labelled set (e.g. a registered variant): the same metrics on its own labels
            result = anomaly_metrics.anomaly_metrics(pred["score"], labels, types)
        run.out.mkdir(parents=True, exist_ok=True)
        baseline.save_predictions(run.out / "predictions.npz", test_ds.meta, ("images",), **pred)
        config = cfg if args.pretrained else dict(  # (the shipped config holds these already)
            cfg, stretch=STRETCH, pca_components=PCA_COMPONENTS, steps_done=len(history),
            score="mean chi^2 per pixel, var = 1 + gain * recon",
            loss_first_last={"first": float(np.mean(history[:3])), "last": float(np.mean(history[-3:]))})
        torch.save(model.state_dict(), run.out / "autoencoder.pt")
        baseline.write_json(run.out / "autoencoder.json", {**config, **run.record()})
        report = run.write_metrics("anomaly", "detect", args.dataset, result, config, test_ds.meta, ("scikit-learn",))
        if event:
            print(f"predictions on the event's {len(x_test)} test inputs -> {run.out} (no labels: scored by the "
                  "organisers)")
            return 0
        gallery(test_ds.images, pred["score"], types, run.out / "topk_gallery.png", sky_sigma=sky_sigma)
        score_histogram(pred["score"], types, run.out / "score_hist.png")
        m = report["metrics"]
        print(f"AUROC {m['auroc']:.4f}  AUPRC {m['auprc']:.4f}  precision@1% {m['precision_at_1pct']:.3f}  "
              f"recall@1%FPR {m['recall_at_1pct_fpr']:.3f}  ({config['steps_done']} steps, {report['seconds']:.0f} s) "
              f"-> {run.out}")
        if onnx_path:  # after metrics.json: the export moves the model to the CPU
            o = export_onnx(model, onnx_path, sky_sigma, gain, test_ds.images[:EDGE_IMAGES], threads=1)
            print(f"ONNX -> {onnx_path}: max relative diff vs torch {max(o['max_rel_diff_vs_torch'].values()):.1e}")
    except baseline.ERRORS as err:
        return baseline.fail(SCRIPT, err)
    return 0


if __name__ == "__main__":
    sys.exit(main())

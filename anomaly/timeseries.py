"""Light-curve anomaly baseline: a 1-D convolutional autoencoder on irregular multi-band light curves.

    python anomaly/timeseries.py [--fast] [--out DIR] [--seed N] [--device auto|cpu|cuda] [--dataset NAME]
                                 [--threads N] [--epochs N] [--set KEY=VALUE] [--pretrained]

Each curve (``lightcurves``: g and r from a three-site network, unevenly sampled) is a sequence of observations in
time order. Per observation the network sees the flux relative to the curve's median in its band (asinh-stretched:
a 3 mmag wiggle and a 5 mag supernova both fit), its error, the days since the previous observation, the band and
the site. The encoder squeezes the flux through a narrow latent sequence (one step per 16 observations); the decoder
rebuilds each observation's flux from that and the observation's own time, band and site (never its flux). What
the bottleneck cannot carry (a glint, a cloudy night, a zero-point jump) is left in the residual chi^2. The score:
log(1 + mean chi^2 of the 5 worst observations) - log(1 + median chi^2), a few observations standing out from the
curve's own residuals (a variable the model cannot follow has large residuals everywhere). Compared in metrics.json:
the mean chi^2, and IsolationForest on ``light-curve`` features (the Rust extractor: amplitude, skew, Stetson K,
eta, slopes..., the Lomb-Scargle period and its S/N, per band) and on the autoencoder's pooled latents. The train
split is an unlabelled stream with ~1 % rare curves: each batch's worst 5 % are left out of the loss.
``--pretrained``: no training, the shipped full-run model (anomaly/pretrained/timeseries/) is evaluated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from astrobench import baseline
from astrobench.errors import DataError
from autoencoder_extras import iforest_scores
from torch import nn

SCRIPT = "timeseries.py"
DATASET = "lightcurves"
# ---------------------------------------------------------------- settings: FULL and FAST (--set KEY=VALUE)
FULL = dict(epochs=3, steps=None, widths=(32, 48, 64, 64), latent=4, batch=64, lr=2e-3, warmup=0.05, trim=0.05)
FAST = dict(epochs=8, steps=None, widths=(16, 24, 32, 32), latent=4, batch=64, lr=2e-3, warmup=0.05, trim=0.05)
# latent: channels of the latent sequence at 1/16 of the observations: too narrow to copy single points.
SOFT = 0.02  # asinh stretch of the relative flux: linear within ~2 %, logarithmic beyond (a magnitude-like scale)
FLOOR = 0.01  # calibration floor added to flux_err in the score: zero points and drift flux_err does not report
BANDS = 2  # 0 = g, 1 = r
SITES = 3
DOWN = 16  # the encoder's total stride: sequences are padded to a multiple of it
CHANNELS, YEAR = 4 + BANDS + SITES + 1, 365.25  # input channels (``encode``); the time scale (days)
INPUTS = ("time", "flux", "flux_err", "band", "site", "mask")  # what predictions are made from (made_on)
TOP_POINTS = 5  # the score: the 5 worst observations' chi^2 against the curve's median chi^2
PRETRAINED = Path(__file__).resolve().parent / "pretrained" / "timeseries"  # the shipped full-run model
# ---------------------------------------------------------------- data


def load(dataset: str = DATASET, fast: bool | None = None):
    from astrobench import data

    train, test = data.load(dataset, "train", fast=fast), data.load(dataset, "test", fast=fast)
    for ds in (train, test):
        check(ds)
    return train, test


def check(ds) -> None:
    """A DataError (one line, exit 2) unless ``ds`` has the arrays below, (N, T) each, with finite, sorted times
    and finite fluxes at every valid (``mask``) entry, positive errors, and both bands observed."""
    need = ("time", "flux", "flux_err", "band", "mask")
    missing = [k for k in need if k not in ds.arrays]
    if missing:
        raise DataError(f"{ds.name} {ds.split}: no array {', '.join(map(repr, missing))}; expected (N, T) arrays "
                        f"{', '.join(need)} (and optionally site)")
    shape = np.shape(ds.time)
    for k in (*need, *(("site",) if "site" in ds.arrays else ())):
        if np.ndim(ds.arrays[k]) != 2 or np.shape(ds.arrays[k]) != shape or len(ds.arrays[k]) != len(ds):
            raise DataError(f"{ds.name} {ds.split}: {k!r} has shape {np.shape(ds.arrays[k])}; expected (N, T) like "
                            f"'time' {shape} with N = {len(ds)}")
    m = np.asarray(ds.mask, bool)
    t = np.where(m, ds.time, 0.0)
    if not np.isfinite(t).all():
        raise DataError(f"{ds.name} {ds.split}: {int((~np.isfinite(t)).sum())} NaN/inf times; expected finite days")
    if (m[:, 1:] & (t[:, 1:] < latest(t, m)[:, :-1])).any():
        raise DataError(f"{ds.name} {ds.split}: times are not sorted; expected each curve's entries in time order")
    if not (np.isfinite(np.asarray(ds.flux)[m]).all() and (np.asarray(ds.flux_err)[m] > 0).all()):
        raise DataError(f"{ds.name} {ds.split}: NaN fluxes or errors <= 0 in valid entries; expected finite, > 0")
    seen = set(np.unique(np.asarray(ds.band)[m]).tolist())
    if not seen <= set(range(BANDS)) or len(seen) < BANDS:
        raise DataError(f"{ds.name} {ds.split}: bands {sorted(seen)} observed; expected both 0 (g) and 1 (r)")


def latest(t, m):
    """Per entry: the latest valid time up to it (-inf before the first); gaps and padding carry the last one."""
    return np.maximum.accumulate(np.where(m, t, -np.inf), axis=1)


def relative(ds):
    """Per curve and band: (flux - median) / D and flux_err / D with D = max(|median|, median error), so that
    curves of any brightness share one scale (a supernova on an empty host, median ~0, is divided by its noise)."""
    m, band = np.asarray(ds.mask, bool), np.asarray(ds.band)
    f, e = np.asarray(ds.flux, np.float64), np.asarray(ds.flux_err, np.float64)
    r, s = np.zeros(f.shape, np.float32), np.zeros(f.shape, np.float32)
    for b in range(BANDS):
        mb = m & (band == b)
        with np.errstate(all="ignore"):  # a curve without points in one band: NaN medians, never used
            med = np.nanmedian(np.where(mb, f, np.nan), axis=1, keepdims=True)
            scale = np.maximum(np.abs(med), np.nanmedian(np.where(mb, e, np.nan), axis=1, keepdims=True))
            r[mb], s[mb] = ((f - med) / scale)[mb], (e / scale)[mb]
    return r, s


def encode(ds) -> dict:
    """The network's inputs per curve, padded to a multiple of DOWN: (N, C, T) float32 channels u =
    asinh(r / SOFT), its error, log(1 + dt), t / YEAR, band one-hot, site one-hot, mask; and the score's
    weights w = 1 / sigma_u^2 (0 at padding), sigma_u the error with FLOOR propagated through the stretch."""
    r, s = relative(ds)
    m = np.asarray(ds.mask, bool)
    t = np.where(m, ds.time, 0.0)
    site = np.asarray(ds.site) if "site" in ds.arrays else np.zeros(m.shape, np.int8)
    before = np.concatenate([np.full((len(t), 1), -np.inf), latest(t, m)[:, :-1]], axis=1)
    dt = np.where(np.isfinite(before), t - before, 0.0).clip(0)  # days since the previous observation
    sig_u = np.sqrt(s.astype(np.float64) ** 2 + FLOOR**2) / np.sqrt(SOFT**2 + r.astype(np.float64) ** 2)
    chans = [np.arcsinh(r / SOFT), np.arcsinh(s / SOFT), np.log1p(dt), t / YEAR]
    chans += [np.asarray(ds.band) == b for b in range(BANDS)] + [site == k for k in range(SITES)] + [m]
    n, length = m.shape
    x = np.zeros((n, CHANNELS, length + (-length % DOWN)), np.float32)  # filled channel by channel: no float64 stack
    w = np.zeros((n, x.shape[-1]), np.float32)
    for c, values in enumerate(chans):
        x[:, c, :length] = np.where(m, values, 0)
    w[:, :length] = np.where(m, np.minimum(1 / sig_u**2, 1e4), 0.0)  # sigma_u >= 0.01: 1 % at large r
    return {"x": x, "w": w}


# ================================================================ MODEL SLOT: replace build_model with your own


def build_model(cfg: dict) -> nn.Module:
    """Replace this with your model. Interface: ``model(x) -> (u_hat, z)``: x (B, CHANNELS, T) float32 (``encode``;
    T a multiple of DOWN): channel 0 the stretched relative flux u, 1 its error, 2 log(1 + days since the previous
    observation), 3 time in years, then band one-hot (2), site one-hot (3), mask (1; 0 at padding). u_hat (B, T)
    the reconstruction of channel 0 (the loss and the score compare it with u where mask is 1), z (B, k) a latent
    vector per curve (the IsolationForest comparison uses it). ``cfg``: the FULL/FAST settings (widths, latent)."""
    c1, c2, c3, c4 = cfg["widths"]
    act = nn.GELU
    encoder = nn.Sequential(  # stride 2 four times: one latent step per 16 observations
        nn.Conv1d(CHANNELS, c1, 5, 2, 2), act(), nn.Conv1d(c1, c2, 5, 2, 2), act(),
        nn.Conv1d(c2, c3, 5, 2, 2), act(), nn.Conv1d(c3, c4, 5, 2, 2), act(), nn.Conv1d(c4, cfg["latent"], 1))
    upsample = nn.Sequential(
        nn.ConvTranspose1d(cfg["latent"], c3, 4, 4), act(), nn.ConvTranspose1d(c3, c1, 4, 4), act())
    head = nn.Sequential(  # per observation: the upsampled latent + its own time, band, site (not its flux)
        nn.Linear(c1 + CHANNELS - 2, c2), act(), nn.Linear(c2, 1))
    return SequenceAutoencoder(encoder, upsample, head)


class SequenceAutoencoder(nn.Module):
    def __init__(self, encoder, upsample, head):
        super().__init__()
        self.encoder, self.upsample, self.head = encoder, upsample, head

    def forward(self, x):
        lat = self.encoder(x)
        dec = self.upsample(lat)
        u_hat = self.head(torch.cat([dec, x[:, 2:]], dim=1).transpose(1, 2)).squeeze(-1)
        return u_hat, torch.cat([lat.mean(-1), lat.std(-1)], dim=1)  # z: mean and spread of the latent sequence


# ================================================================ loss, training, scoring


def chi2(x, w, u_hat):
    """Per curve: the mean over valid observations of (u - u_hat)^2 / sigma_u^2, and the residuals."""
    res = (x[:, 0] - u_hat) ** 2 * w
    return res.sum(-1) / x[:, -1].sum(-1).clamp(min=1), res


def lr_at(step: int, steps: int, lr: float, warmup: float) -> float:
    """Linear warm-up, then cosine decay to zero: a function of the step alone."""
    p = step / steps
    return lr * p / warmup if p < warmup else 0.5 * lr * (1 + np.cos(np.pi * min(1.0, (p - warmup) / (1 - warmup))))


def train(model, enc: dict, cfg: dict, run=None, progress: bool = True) -> list:
    """Minimise the batch mean of log(1 + chi^2 per curve), the worst 5 % of curves left out; ``cfg["epochs"]``
    epochs of optimizer steps (``cfg["steps"]`` instead, when set). Returns the loss per step."""
    from tqdm.auto import tqdm

    run = run or baseline.local_run()
    acc, device = run.acc, run.acc.device
    g = torch.Generator().manual_seed(run.seed)
    x_all, w_all = torch.as_tensor(enc["x"]), torch.as_tensor(enc["w"])
    opt = torch.optim.AdamW(model.to(device).parameters(), lr=cfg["lr"], weight_decay=1e-4)
    loader = baseline.epoch_batches(acc, len(x_all), cfg["batch"], g, name="timeseries")
    model, opt = acc.prepare(model, opt)
    steps = cfg.get("steps") or cfg["epochs"] * -(-len(loader) // acc.gradient_accumulation_steps)
    model.train()
    history, micro = [], []
    bar = tqdm(total=steps, desc="training sequence autoencoder", disable=not progress or not run.is_main)
    while len(history) < steps and not run.stopped_by_clock:
        for idx in loader:
            for group in opt.param_groups:
                group["lr"] = lr_at(len(history), steps, cfg["lr"], cfg["warmup"])
            xb, wb = x_all[idx].to(device), w_all[idx].to(device)
            with acc.accumulate(model):
                per_curve = chi2(xb, wb, model(xb)[0].float())[0]
                keep = len(per_curve) - int(cfg["trim"] * len(per_curve))
                loss = torch.log1p(per_curve.topk(keep, largest=False).values).mean()  # log: chi^2 spans decades
                acc.backward(loss)
                opt.step()
                opt.zero_grad(set_to_none=True)
            micro.append(loss.item())
            if not acc.sync_gradients:
                continue
            history.append(float(np.mean(micro)))
            micro = []
            bar.update()
            bar.set_postfix(log_chi2=f"{history[-1]:.3f}")
            if len(history) >= steps or run.out_of_time():
                break
    bar.close()
    acc.wait_for_everyone()
    acc.unwrap_model(model, keep_fp32_wrapper=False)
    return history


@torch.no_grad()
def evaluate(model, enc: dict, device="cpu", batch: int = 256):
    """Per curve: (score: log(1 + mean chi^2 of the TOP_POINTS worst observations) - log(1 + median chi^2),
    mean chi^2, latent z, u_hat (N, T))."""
    model.to(device).eval()
    parts = [], [], [], []
    for i in range(0, len(enc["x"]), batch):
        xb, wb = torch.as_tensor(enc["x"][i : i + batch]).to(device), torch.as_tensor(enc["w"][i : i + batch])
        u_hat, z = model(xb)
        mean, res = chi2(xb, wb.to(device), u_hat)
        median = torch.where(xb[:, -1] > 0, res, torch.nan).nanmedian(dim=1).values
        score = torch.log1p(res.topk(TOP_POINTS, dim=1).values.mean(1)) - torch.log1p(median)
        for p, v in zip(parts, (score, mean, z, u_hat)):
            p.append(v.cpu())
    return tuple(torch.cat(p).numpy() for p in parts)


# ---------------------------------------------------------------- the comparison: features + IsolationForest


def features(ds, threads: int = 1) -> np.ndarray:
    """(N, 2 x 18) features per band from ``light-curve`` on the relative flux (``relative``): the classical
    descriptors and the Lomb-Scargle periodogram's best period and its S/N. NaN (too few points) -> 0."""
    import light_curve as lc

    ext = lc.Extractor(lc.Amplitude(), lc.BeyondNStd(1), lc.BeyondNStd(3), lc.Cusum(), lc.Eta(),
                       lc.InterPercentileRange(0.1), lc.Kurtosis(), lc.LinearTrend(), lc.MaximumSlope(),
                       lc.ReducedChi2(), lc.Skew(), lc.StandardDeviation(), lc.StetsonK(),
                       lc.MedianAbsoluteDeviation(), lc.Periodogram(peaks=1, resolution=5, nyquist="median"))
    r, s = relative(ds)
    t, band, m = np.asarray(ds.time, np.float64), np.asarray(ds.band), np.asarray(ds.mask, bool)
    out = []
    for b in range(BANDS):
        sel = [m[i] & (band[i] == b) for i in range(len(t))]
        curves = [(t[i][k], r[i][k].astype(np.float64), np.maximum(s[i][k], 1e-4).astype(np.float64))
                  for i, k in enumerate(sel)]
        out.append(ext.many(curves, n_jobs=threads, sorted=True, check=False, fill_value=np.nan))
    feats = np.concatenate(out, axis=1)
    return np.nan_to_num(np.arcsinh(feats), nan=0.0, posinf=0.0, neginf=0.0)  # asinh: heavy tails, one scale


def gallery(ds, scores, types, path=None, k: int = 12, u_hat=None):
    """The k highest-scoring test curves as the network sees them, u = asinh(relative flux / SOFT) against days
    (g blue, r red; the reconstruction in grey): linear within ~2 %, logarithmic beyond."""
    import matplotlib.pyplot as plt

    top = np.argsort(-scores, kind="stable")[:k]
    fig, axes = plt.subplots(3, k // 3, figsize=(3.2 * k // 3, 7), sharex=True, squeeze=False,
                             gridspec_kw=dict(hspace=0.3, left=0.06, right=0.98, top=0.95, bottom=0.08))
    for rank, (ax, i, ui) in enumerate(zip(axes.flat, top, np.arcsinh(relative(ds)[0][top] / SOFT))):
        m = np.asarray(ds.mask[i], bool)
        t, b = np.asarray(ds.time[i])[m], np.asarray(ds.band[i])[m]
        if u_hat is not None:
            ax.plot(t, u_hat[i][: m.size][m], ",", color="0.5")
        for band, colour in ((0, "tab:blue"), (1, "tab:red")):
            ax.plot(t[b == band], ui[m][b == band], ".", ms=2, color=colour)
        ax.set_title(f"#{rank + 1} {types[i]}", fontsize=9)
    fig.supxlabel("days")
    fig.supylabel(f"asinh(relative flux / {SOFT})")
    if path:
        fig.savefig(path, dpi=80)
    return fig


# ---------------------------------------------------------------- main


def parser():
    return baseline.parser(SCRIPT, __doc__, out="outputs/anomaly-timeseries", dataset=DATASET, budget="epochs",
                           budget_help="training epochs (FULL 3, FAST 8); --set steps=N counts optimizer steps")


def main(argv=None) -> int:
    """Train (or load the shipped model), score, compare and write everything (on the main process)."""
    from astrobench import metrics
    from astrobench.metrics import anomaly as anomaly_metrics

    try:
        args = parser().parse_args(argv)
        cfg = baseline.settings(FULL, FAST, args)
        run = baseline.start(args)
        train_ds, test_ds = load(args.dataset, run.fast)  # checked: bad arrays are one line, exit 2
        event = test_ds.meta.get("kind") == "event"
        if not event:
            labels, types = anomaly_metrics.truth(args.dataset, table=test_ds.truth)
        if args.pretrained:  # the shipped model, checked against this data; built with its settings
            state, cfg = baseline.load_pretrained(PRETRAINED, test_ds.meta)
            cfg["pretrained"] = json.loads((PRETRAINED / "manifest.json").read_text())["command"]
        model = build_model(cfg)
        if args.pretrained:
            model.load_state_dict(state)
        enc_train = encode(train_ds)
        history = [] if args.pretrained else train(model, enc_train, cfg, run)
        run.acc.end_training()
        if not run.is_main:
            return 0
        enc_test = encode(test_ds)
        s_test, mean_test, z_test, u_hat = evaluate(model, enc_test, run.acc.device)
        z_train = evaluate(model, enc_train, run.acc.device)[2]
        f_train, f_test = features(train_ds, run.threads), features(test_ds, run.threads)
        pred = {"score": s_test.astype(np.float64), "score_ae_mean_chi2": mean_test.astype(np.float64),
                "score_iforest_features": iforest_scores(f_train, f_test, run.seed),
                "score_iforest_latent": iforest_scores(z_train, z_test, run.seed)}
        if event:
            result = {"event": "predictions on an event's release: scored by the organisers", "n_test": len(s_test)}
        elif args.dataset == DATASET:
            result = metrics.score("anomaly:lightcurves", pred)  # `astrobench score anomaly:lightcurves`'s path
        else:  # another labelled set (your own light curves): the same metrics on its own labels
            result = anomaly_metrics.anomaly_metrics(pred["score"], labels, types)
        run.out.mkdir(parents=True, exist_ok=True)
        baseline.save_predictions(run.out / "predictions.npz", test_ds.meta, INPUTS, **pred)
        config = cfg if args.pretrained else dict(
            cfg, soft=SOFT, floor=FLOOR, steps_done=len(history), score="log(1 + top-5 chi^2) - log(1 + median chi^2)",
            loss_first_last={"first": float(np.mean(history[:3])), "last": float(np.mean(history[-3:]))})
        torch.save(model.state_dict(), run.out / "timeseries.pt")
        baseline.write_json(run.out / "timeseries.json", {**config, **run.record()})
        report = run.write_metrics("anomaly", "lightcurves", args.dataset, result, config, test_ds.meta,
                                   ("scikit-learn", "light-curve"))
        if event:
            print(f"predictions on the event's {len(s_test)} test curves -> {run.out} (scored by the organisers)")
            return 0
        gallery(test_ds, pred["score"], types, run.out / "topk_gallery.png", u_hat=u_hat)
        m = report["metrics"]
        print(f"AUROC {m['auroc']:.4f}  AUPRC {m['auprc']:.4f}  precision@1% {m['precision_at_1pct']:.3f}  "
              f"({config['steps_done']} steps, {report['seconds']:.0f} s) -> {run.out}")
    except baseline.ERRORS as err:
        return baseline.fail(SCRIPT, err)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CLIP-style baseline: one embedding space for galaxy images and spectra (AstroCLIP in miniature).

    python multimodal/contrastive.py [--fast] [--out DIR] [--seed N] [--device auto|cpu|cuda] [--dataset NAME]
                                     [--threads N] [--epochs N] [--set KEY=VALUE] [--max-minutes M] [--pretrained]
                                     [--modalities ground,spectrum | ground,space | ground,space,spectrum]

A small CNN encodes the g,r,z image, a 1-D CNN the spectrum; projection heads map both into one 128-d space,
trained with CLIP's symmetric InfoNCE loss plus the same loss between two augmented views of each spectrum
(SLIP-style, ``spec_ssl_weight``: CLIP alone keeps only what the views share). Then the script embeds both splits,
trains the supervised ceiling (the same image CNN regressing redshift, as many steps) and scores with
``astrobench.metrics.multimodal`` (k-NN and few-shot probes, retrieval). ``--pretrained``: no training; the shipped
full-run CLIP (multimodal/pretrained/) is evaluated, without a ceiling (its weights were not shipped).
Fixed logit scale 15.5 (AstroCLIP's). Data and the physical augmentations: contrastive_data.py. The budget is
``epochs`` (or ``--set steps=N``); the one-cycle learning rate follows the step; ``--max-minutes`` stops CLIP only.
Under ``accelerate launch`` each process takes every P-th batch of one shared permutation; the main one writes files.
``--modalities ground,space,spectrum`` (``--dataset galaxies-multi``) adds a space imager: InfoNCE for each pair of
modalities, averaged (as ImageBind/AION align many), scored as ``multimodal:<dataset>`` (no ceiling there).
"""
from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from astrobench import baseline
from astrobench.metrics import multimodal
from contrastive_data import (  # noqa: F401
    CROP,
    SPACE_CROP,
    SPEC_MASK_MAX,
    SPEC_NOISE,
    augment_images,
    augment_spectra,  # (notebooks)
    load_data,
    preprocess_images,
    preprocess_spectra,
)
from contrastive_plots import plot  # the figure, beside this script
from torch import nn

SCRIPT = "contrastive.py"
DATASET = "galaxies"
PRETRAINED = Path(__file__).resolve().parent / "pretrained"  # the shipped full-run CLIP
# ---------------------------------------------------------------- settings: FULL and FAST (--set KEY=VALUE)
FULL = dict(epochs=15, steps=None, width=32, batch=256, lr=2e-3, weight_decay=1e-4, warmup=0.15,
            spec_ssl_weight=1.0, learn_temperature=False)
FAST = dict(epochs=6, steps=None, width=16, batch=100, lr=2e-3, weight_decay=1e-4, warmup=0.15,
            spec_ssl_weight=1.0, learn_temperature=False)
# steps: optimizer steps instead of epochs. width: first-stage CNN channels (x2, x4 deeper). spec_ssl_weight=0: CLIP
EMBED_DIM = 128  # shared embedding space
FEATURES = 256  # encoder output before the projection heads
# --modalities: name -> (dataset array, tensors in load_data's dict, the model's embedding)
MODALITIES = {"ground": ("images", "img", "embed_image"), "space": ("space", "space", "embed_space"),
              "spectrum": ("spectra", "spec", "embed_spectrum")}
DEFAULT_MODALITIES = ("ground", "spectrum")  # today's image + spectrum model (the shipped one)
LOGIT_SCALE = 15.5  # AstroCLIP's fixed logit scale (see the docstring)
# ================================================================ MODEL SLOT: replace build_model with your own


def build_model(cfg: dict, n_wave: int) -> nn.Module:
    """Replace this with your model. Interface:

    ``model.embed_image(x) -> (B, D)``: x (B, 3, CROP, CROP) float32, arcsinh(flux / sky sigma) per band g, r, z
    (``preprocess_images``); ``model.embed_spectrum(s) -> (B, D)``: s (B, n_wave) float32, arcsinh(flux / sky
    sigma) standardised (``preprocess_spectra``). Both give L2-normalised rows in one D-dim space: the scorer probes
    them and retrieves one modality with the other by cosine similarity. ``model(x, s, s2) -> scalar``: the training
    loss of B pairs, s2 a second augmented view of the spectra (here InfoNCE image-spectrum + spec_ssl_weight x
    InfoNCE spectrum-spectrum). ``cfg``: the FULL/FAST settings (width, spec_ssl_weight, learn_temperature) and
    ``modalities`` (default ground, spectrum). With space: ``model.embed_space(x)``, x (B, 1, SPACE_CROP,
    SPACE_CROP) likewise, and ``model(x, s, s2, space=x_space)`` averages InfoNCE over the pairs (spectrum optional)."""
    return CLIP(cfg["width"], n_wave, cfg["learn_temperature"], cfg["spec_ssl_weight"],
                cfg.get("modalities", DEFAULT_MODALITIES))


def block(conv, cin, cout, stride):
    norm, k = (nn.BatchNorm2d, 3) if conv is nn.Conv2d else (nn.BatchNorm1d, 5)
    return nn.Sequential(conv(cin, cout, k, stride, k // 2, bias=False), norm(cout), nn.GELU())


def image_encoder(w: int, bands: int = 3) -> nn.Module:
    """bands x CROP x CROP -> FEATURES: conv stages halving the size, then global average pooling (position-free)."""
    c = nn.Conv2d
    return nn.Sequential(
        block(c, bands, w, 2),  # 24x24: a strided stem, as full-resolution convs cost too much on a CPU
        block(c, w, 2 * w, 2), block(c, 2 * w, 2 * w, 1),  # 12x12
        block(c, 2 * w, 4 * w, 2), block(c, 4 * w, 4 * w, 1),  # 6x6
        block(c, 4 * w, 4 * w, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # 3x3 -> pooled
        nn.Linear(4 * w, FEATURES), nn.GELU())


def spectrum_encoder(w: int, n_wave: int) -> nn.Module:
    """n_wave pixels -> FEATURES: strided 1-D convs, then flatten (NOT pooling: where a feature sits is redshift)."""
    c = nn.Conv1d
    return nn.Sequential(
        nn.Unflatten(1, (1, n_wave)),  # one input channel
        nn.Conv1d(1, w, 8, 4, 2), nn.GELU(),  # patchify stem: 4-pixel steps (full-res 1-D convs are slow)
        block(c, w, 2 * w, 2), block(c, 2 * w, 4 * w, 2), block(c, 4 * w, 4 * w, 1),
        nn.Flatten(), nn.Linear(4 * w * (n_wave // 16), FEATURES), nn.GELU())


def head() -> nn.Module:  # a projection head into the shared space
    return nn.Sequential(nn.Linear(FEATURES, FEATURES), nn.GELU(), nn.Linear(FEATURES, EMBED_DIM))


class CLIP(nn.Module):  # image_* is the ground imager (the shipped weights' names); space_* only if asked for
    def __init__(self, w: int, n_wave: int, learn_temperature: bool = False, spec_ssl_weight: float = 1.0,
                 modalities=DEFAULT_MODALITIES):
        super().__init__()
        self.modalities = tuple(modalities)
        has = [m in self.modalities for m in ("ground", "spectrum", "space")]  # this order: the seeded weights
        self.image_encoder = image_encoder(w)
        self.spectrum_encoder = spectrum_encoder(w, n_wave) if has[1] else None
        self.space_encoder = image_encoder(w, bands=1) if has[2] else None
        self.image_head, self.spectrum_head, self.space_head = (head() if on else None for on in has)
        self.log_scale = nn.Parameter(torch.tensor(math.log(LOGIT_SCALE)), requires_grad=learn_temperature)
        self.spec_ssl_weight = spec_ssl_weight

    def embed_image(self, x):
        return F.normalize(self.image_head(self.image_encoder(x)), dim=-1)

    def embed_spectrum(self, s):
        return F.normalize(self.spectrum_head(self.spectrum_encoder(s)), dim=-1)

    def embed_space(self, x):
        return F.normalize(self.space_head(self.space_encoder(x)), dim=-1)

    def forward(self, x, s, s2=None, space=None):
        """The training loss (in forward, so DDP's gradient sync sees the call): the CLIP loss of every pair of
        modalities (ground ``x``, ``space``, spectrum ``s``), averaged, plus spec_ssl_weight x the same loss between
        the two spectrum views ``s``, ``s2`` (SLIP-style)."""
        scale = self.log_scale.clamp(max=math.log(100)).exp()
        emb = {"ground": self.embed_image(x)}
        if "space" in self.modalities:
            emb["space"] = self.embed_space(space)
        if "spectrum" in self.modalities:
            emb["spectrum"] = v = self.embed_spectrum(s)
        pairs = list(itertools.combinations(emb.values(), 2))
        loss = sum(info_nce(a, b, scale) for a, b in pairs) / len(pairs)
        if s2 is not None and self.spec_ssl_weight and "spectrum" in emb:
            loss = loss + self.spec_ssl_weight * info_nce(v, self.embed_spectrum(s2), scale)
        return loss


def info_nce(u, v, scale):
    """Symmetric InfoNCE: row i of u must pick row i of v among all rows, and vice versa."""
    logits = scale * u @ v.T
    labels = torch.arange(len(u), device=u.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


# ================================================================ training, embedding, the supervised ceiling


def fit(model, batch_loss, n: int, cfg: dict, run, seed: int, name: str, steps=None, clock: bool = True) -> list:
    """AdamW + one-cycle schedule over ``steps`` optimizer steps (default: cfg's steps, else its epochs), stopped by
    --max-minutes if ``clock``; the loss per step. ``batch_loss(model, idx, gen)``: the loss of rows ``idx`` of
    ``n`` (batches of ``epoch_batches``: one permutation per epoch shared by the processes, the last partial batch
    dropped); ``cfg``: batch, lr, weight_decay, warmup (fraction of the steps), steps, epochs. Gradient accumulation
    and processes come from ``run.acc``; the model is unwrapped in place afterwards."""
    from tqdm.auto import tqdm

    acc = run.acc
    gen = torch.Generator().manual_seed(seed)  # the epoch permutations (and, in one process, the augmentations)
    loader = baseline.epoch_batches(acc, n, cfg["batch"], gen, drop_last=True, name=name)
    if len(loader) == 0:
        raise baseline.BaselineError(f"--set batch={cfg['batch']}: more than the {n} training rows per process; "
                            "expected a smaller batch")
    opt = torch.optim.AdamW(model.parameters(), cfg["lr"], weight_decay=cfg["weight_decay"])  # (frozen: no grad)
    model, opt = acc.prepare(model, opt)
    aug = gen if acc.num_processes == 1 else torch.Generator().manual_seed(seed + 1000 * acc.process_index)
    steps = steps or cfg["steps"] or cfg["epochs"] * math.ceil(len(loader) / acc.gradient_accumulation_steps)
    # stepped by hand once per optimizer step (a prepared scheduler would step once per process)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt.optimizer, cfg["lr"], total_steps=steps, pct_start=cfg["warmup"])
    history, micro = [], []
    model.train()
    with tqdm(total=steps, desc=name, unit="step", disable=not run.is_main) as bar:
        while len(history) < steps and not (clock and run.stopped_by_clock):
            for idx in loader:
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
                if len(history) >= steps or (clock and run.out_of_time()):
                    break
    acc.wait_for_everyone()
    acc.unwrap_model(model, keep_fp32_wrapper=False)  # drops the DDP wrapper and the autocast forward
    return history


def embed_batches(fn, x, device, batch: int = 500):
    """``fn`` (a model's embedding) over the rows of tensor ``x`` in batches, without gradients: a numpy array."""
    with torch.no_grad():
        return np.concatenate([fn(x[i : i + batch].to(device)).float().cpu().numpy()
                               for i in range(0, len(x), batch)])


def train_clip(d: dict, cfg: dict, run):
    """The contrastive model (``build_model``) on the train pairs, trained by ``fit`` (AdamW, one-cycle
    learning rate over a count of steps); returns (model in eval mode, loss per step)."""
    device, prep, mods = run.acc.device, d["prep"], d.get("modalities", DEFAULT_MODALITIES)
    torch.manual_seed(run.seed)
    model = build_model(dict(cfg, modalities=mods), d["spec_train"].shape[1]).to(device)

    def batch_loss(m, idx, gen):
        x = augment_images(d["img_train"][idx], gen).to(device)
        raw = d["spec_train"][idx]
        s, s2 = augment_spectra(raw, gen, prep).to(device), augment_spectra(raw, gen, prep).to(device)
        sp = {"space": augment_images(d["space_train"][idx], gen).to(device)} if "space" in mods else {}  # own flips
        return m(x, s, s2, **sp)

    history = fit(model, batch_loss, len(d["img_train"]), cfg, run, run.seed, "CLIP")
    return model.eval(), history


def redshift_cnn(w: int) -> nn.Module:
    """The supervised ceiling: the same image encoder with a linear head on (standardised) redshift; (B,) out."""
    return nn.Sequential(image_encoder(w), nn.Linear(FEATURES, 1), nn.Flatten(0))


def train_supervised(d: dict, cfg: dict, run, steps: int):
    """Ceiling: RedshiftCNN on the train labels, ``steps`` steps of the same batch, schedule and augmentations.
    Returns ({"supervised_z": test-set redshifts} on the main process, else None; the loss history)."""
    device = run.acc.device
    torch.manual_seed(run.seed)
    model = redshift_cnn(cfg["width"]).to(device)
    z = torch.as_tensor(np.asarray(d["train"].truth["z"], np.float32))
    mu, sd = float(z.mean()), float(z.std())

    def batch_loss(m, idx, gen):
        x = augment_images(d["img_train"][idx], gen).to(device)
        return F.mse_loss(m(x).float(), ((z[idx] - mu) / sd).to(device))

    history = fit(model, batch_loss, len(z), cfg, run, run.seed + 1, "supervised", steps=steps, clock=False)
    sup = embed_batches(model.eval(), d["img_test"], device) * sd + mu
    return ({"supervised_z": sup} if run.is_main else None), history


def embed_all(model, d: dict, device) -> dict:
    """Embeddings of each modality for both splits, in the keys the scorer expects: image_/spectrum_emb as ever
    without space (the ``galaxies`` task), ground_/space_/spectrum_emb with it (the instruments task)."""
    mods, out = d.get("modalities", DEFAULT_MODALITIES), {}
    for split, suffix in (("test", ""), ("train", "_train")):
        for m in mods:
            _, name, fn = MODALITIES[m]
            x = d[f"{name}_{split}"] if m != "spectrum" else preprocess_spectra(d[f"spec_{split}"], d["prep"])
            key = m if "space" in mods else {"ground": "image"}.get(m, m)  # the galaxies task's names without space
            out[f"{key}_emb{suffix}"] = embed_batches(getattr(model, fn), x, device)
    return out


def load_shipped(d: dict, device):
    """--pretrained: the shipped CLIP, checked against the data (``baseline.load_pretrained``), rebuilt from its own
    config with its own spectrum standardisation (``d["prep"]``); returns (model, config for metrics.json)."""
    state, shipped = baseline.load_pretrained(PRETRAINED, d["test"].meta)
    cfg, d["prep"] = {k: shipped[k] for k in FULL}, shipped["preprocess"]
    model = build_model(cfg, d["spec_train"].shape[1])
    model.load_state_dict(state)
    full = json.loads((PRETRAINED / "metrics.json").read_text())["metrics"]["supervised_r2_z"]
    return model.to(device).eval(), dict(cfg, pretrained=json.loads((PRETRAINED / "manifest.json").read_text())[
        "command"], steps_done=shipped["steps_done"], supervised_ceiling=f"not shipped (the run saved CLIP only); "
        f"supervised_r2_z {full:.4f} on the full test set (pretrained/metrics.json)")


# ---------------------------------------------------------------- main


def check_settings(cfg: dict) -> None:
    """The --set values a run cannot use, as one-line errors before any long work."""
    steps, w = cfg["steps"], cfg["spec_ssl_weight"]
    for key, ok, expected in [("epochs", cfg["epochs"] >= 1, ">= 1"), ("width", cfg["width"] >= 1, ">= 1"),
                              ("steps", steps is None or (isinstance(steps, int) and steps >= 1), "None or >= 1"),
                              ("batch", cfg["batch"] >= 2, ">= 2"), ("lr", cfg["lr"] > 0, "> 0"),
                              ("warmup", 0 < cfg["warmup"] < 1, "in (0, 1)"), ("spec_ssl_weight", w >= 0, ">= 0")]:
        if not ok:
            raise baseline.BaselineError(f"--set {key}={cfg[key]!r}: expected {expected}")


def parser():
    p = baseline.parser(SCRIPT, __doc__, out="outputs/multimodal", dataset=DATASET, budget="epochs",
                        budget_help="CLIP's training epochs (FULL 15, FAST 6; --set steps=N: optimizer steps); "
                        "the supervised ceiling trains as many steps")
    p.add_argument("--modalities", default=",".join(DEFAULT_MODALITIES), help="what to align, two or three of "
                   f"{', '.join(MODALITIES)} (default {','.join(DEFAULT_MODALITIES)}; space: e.g. galaxies-multi)")
    return p


def main(argv=None) -> int:
    """Train CLIP and the ceiling, embed, score and write everything (once, on the main process)."""
    try:
        args = parser().parse_args(argv)
        cfg = baseline.settings(FULL, FAST, args)
        run = baseline.start(args)  # (rejects --epochs 0 before check_settings sees the copy in cfg)
        check_settings(cfg)
        # ground in every run: the instruments scorer compares each view with the ground one
        mods = baseline.names("--modalities", args.modalities, tuple(MODALITIES), least=2, need="ground")
        if args.pretrained and mods != DEFAULT_MODALITIES:
            raise baseline.BaselineError(f"--modalities {args.modalities} --pretrained: expected ground,spectrum")
        d = load_data(args.dataset, run.fast, mods)
        if args.pretrained:  # no training and no ceiling: the shipped CLIP, evaluated as a trained one is
            (model, cfg), hist_clip, hist_sup, sup = load_shipped(d, run.acc.device), [], [], {}
        else:
            model, hist_clip = train_clip(d, cfg, run)
            sup, hist_sup = ({}, []) if "space" in mods else train_supervised(d, cfg, run, steps=len(hist_clip))
            cfg = dict(cfg, steps_done=len(hist_clip), loss_first_last={"first": float(np.mean(hist_clip[:3])),
                                                                        "last": float(np.mean(hist_clip[-3:]))})
        run.acc.end_training()
        if not run.is_main:
            return 0
        pred = {**embed_all(model, d, run.acc.device), **sup}
        metrics = multimodal.score(pred, task=args.dataset)  # the code path of `astrobench score multimodal`
        scale = float(model.log_scale.exp()) if hasattr(model, "log_scale") else None  # a slot model may have none
        config = dict(cfg, modalities=list(mods), embed_dim=EMBED_DIM, features=FEATURES, crop=CROP,
                      **({"space_crop": SPACE_CROP} if "space" in mods else {}), spec_noise=SPEC_NOISE,
                      spec_mask_max=SPEC_MASK_MAX, logit_scale=scale, preprocess=d["prep"], n_train=len(d["img_train"]),
                      n_test=len(d["img_test"]))
        run.out.mkdir(parents=True, exist_ok=True)
        inputs = tuple(MODALITIES[m][0] for m in mods)  # the test arrays the embeddings were made from
        baseline.save_predictions(run.out / "predictions.npz", d["test"].meta, inputs, **pred)
        torch.save(model.state_dict(), run.out / "clip.pt")
        baseline.write_json(run.out / "clip.config.json", {**config, **run.record()})
        plot(run.out, pred, hist_clip, hist_sup, d["test"].truth)
        report = run.write_metrics("multimodal", "embeddings", args.dataset, metrics, config, d["train"].meta,
                                   ("scikit-learn",))
        m = report["metrics"]  # with space: the scorer's headline (its first keys)
        head = "  ".join(f"{k} {m[k]:.3f}" for k in list(m)[:4]) if "space" in mods else (
            f"zero-shot z R² image {m['zeroshot_r2_z_image']:.4f}  spectrum {m['zeroshot_r2_z_spectrum']:.4f}  "
            f"top-1 i->s {m['retrieval_image_to_spectrum_top1']:.3f}  ceiling {m.get('supervised_r2_z', np.nan):.4f}")
        print(f"{head} ({config['steps_done']} steps{' pretrained' * args.pretrained}, {report['seconds']:.0f}s) -> "
              f"{run.out}")
    except baseline.ERRORS as err:
        return baseline.fail(SCRIPT, err)
    return 0


if __name__ == "__main__":
    sys.exit(main())

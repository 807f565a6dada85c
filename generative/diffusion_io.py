"""Checkpoint files, figures and input checks of ``diffusion.py`` (kept out of the script so that it reads top to
bottom).

Checkpoint folder (``OUT/checkpoint``):

- ``model_ema.safetensors`` + ``config.json`` (run settings, normalisation, UNet and scheduler configs): what
  ``diffusion.load_model`` needs to sample;
- ``train_state.safetensors`` + ``train_state.json``: raw weights, AdamW moments, EMA, learning-rate schedule,
  every process's random stream and the loss history, so that ``--resume`` continues an interrupted run to
  exactly the result of an uninterrupted one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from astrobench import data
from astrobench.baseline import BaselineError

# the settings that shape the training trajectory: a resumed run must use the ones it was started with
TRAJECTORY = ("steps", "batch", "lr", "warmup", "channels", "layers", "ema_decay", "resolution", "train_images",
              "seed", "dataset", "mode")


def check_dataset(name: str, fast: bool, samples: int, min_full: int) -> None:
    """``--dataset`` and ``--set samples``, checked from the registry before anything is generated or downloaded
    (a bad run is one line, with no progress bars before it): a built-in set must be one of the generative
    track's (3 x 64 x 64 galaxy stamps; your own sets name no track and are checked once loaded), and the samples
    must reach the scorer's minimum, where the registry knows it without the data."""
    info = data.info(name)  # an unknown name: a one-line DataError
    if info["tracks"] and "generative" not in info["tracks"]:
        raise BaselineError(f"--dataset {name}: expected a dataset with 3 x 64 x 64 'images', one of the generative "
                            f"track's (this one is for {', '.join(info['tracks'])})")
    check_samples(samples, info.get("sizes", {}).get("fast", {}).get("test", 0) if fast else min_full, fast)


def check_samples(samples: int, need: int, fast: bool) -> None:
    """The scorer asks for at least ``need`` samples: the FAST test split's size, or its FULL minimum."""
    if samples < need:
        raise BaselineError(f"--set samples={samples}: expected at least {need} (the scorer's minimum against the "
                            f"{'FAST' if fast else 'FULL'} test split)")


def _plain(value):
    return json.loads(json.dumps(value, default=list))  # tuples -> lists, as config.json holds them


def check_resume(path, config: dict) -> bool:
    """True when ``path`` holds a training state to resume from; a one-line error when it was written with
    other settings (its weights or schedule would not fit this run)."""
    path = Path(path)
    if not (path / "train_state.json").is_file():
        return False
    try:
        saved = json.loads((path / "config.json").read_text())["run"]
    except (OSError, ValueError, KeyError) as err:
        raise BaselineError(f"--resume: {path / 'config.json'} is unreadable ({err}); expected a checkpoint "
                            "written by diffusion.py") from None
    for key in TRAJECTORY:
        if key in config and _plain(saved.get(key)) != _plain(config[key]):
            raise BaselineError(f"--resume: {path} was trained with {key}={saved.get(key)!r}; expected the same "
                                f"settings as then (this run has {key}={config[key]!r})")
    return True


def save_checkpoint(path, model, ema, opt, lr_sched, gen, step, losses, config, scheduler, rng_ranks=None):
    """Write the checkpoint folder (main process only). ``model`` is the raw (unwrapped) model, ``scheduler``
    the noise scheduler's config."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    names = [n for n, _ in model.named_parameters()]  # EMAModel keeps its shadow copies in this order
    ema_weights = dict(weights, **{n: p.detach().cpu().contiguous() for n, p in zip(names, ema.shadow_params)})
    save_file(ema_weights, path / "model_ema.safetensors")
    unet = getattr(getattr(model, "unet", None), "config", None)
    config_file = {"run": config, "normalisation": config.get("normalisation"), "step": step,
                   "unet": dict(unet) if unet is not None else None,
                   "scheduler": dict(scheduler)}
    (path / "config.json").write_text(json.dumps(config_file, indent=1, default=list))
    tensors = {f"model.{k}": v for k, v in weights.items()}
    for i, s in opt.state_dict()["state"].items():
        tensors.update({f"opt.{i}.{k}": torch.as_tensor(v).cpu() for k, v in s.items()})
    tensors.update({f"ema.{i}": p.detach().cpu().contiguous() for i, p in enumerate(ema.shadow_params)})
    tensors["rng"] = gen.get_state()
    if rng_ranks is not None:  # several processes: every rank's random stream, for an exact resume
        tensors["rng_ranks"] = rng_ranks
    tensors["losses"] = torch.tensor(losses, dtype=torch.float64)
    save_file(tensors, path / "train_state.safetensors")
    ema_meta = {k: v for k, v in ema.state_dict().items() if k != "shadow_params"}
    state = {"step": step, "lr_scheduler": lr_sched.state_dict(), "param_groups": opt.state_dict()["param_groups"],
             "ema": ema_meta}
    (path / "train_state.json").write_text(json.dumps(state, indent=1))  # last: its presence marks a whole state


def load_checkpoint(path, model, ema, opt, lr_sched, gen, rank=0, processes=1):
    """Restore everything save_checkpoint wrote; returns (step, losses)."""
    from safetensors.torch import load_file

    path = Path(path)
    try:
        meta = json.loads((path / "train_state.json").read_text())
        t = load_file(path / "train_state.safetensors")
    except Exception as err:  # truncated or foreign files: safetensors raises its own error types
        raise BaselineError(f"--resume: {path} is unreadable ({str(err).splitlines()[0]}); expected a checkpoint "
                            "written by diffusion.py") from None
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

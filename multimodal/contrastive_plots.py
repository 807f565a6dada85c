"""Figures of multimodal/contrastive.py (kept apart so that the script stays short)."""

from __future__ import annotations

import numpy as np


def plot(out, pred: dict, hist_clip: list, hist_sup: list, truth) -> None:
    """clip.png: the training losses, the test similarity matrix, the supervised ceiling's redshifts (panels left
    empty, with a note, when there is nothing to show: a --pretrained run trains nothing and has no ceiling)."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    fig = Figure(figsize=(14, 4))
    ax = fig.subplots(1, 3)
    if hist_clip:
        ax[0].plot(hist_clip, label="CLIP + spectrum-view InfoNCE")
        ax[0].plot(hist_sup, label="supervised z (MSE, standardised)")
        ax[0].set(xlabel="step", ylabel="training loss", yscale="log", title="training")
        ax[0].legend()
    else:
        ax[0].text(0.5, 0.5, "pretrained: no training in this run\n(see pretrained/metrics.json)", ha="center")
        ax[0].set(title="training", xticks=[], yticks=[])
    a, b = [k for k in pred if k.endswith("_emb")][:2]  # image, spectrum (or ground, space: the instruments)
    n = min(64, len(pred[a]))
    im = ax[1].imshow(pred[a][:n] @ pred[b][:n].T, cmap="magma")
    ax[1].set(xlabel=f"{b.removesuffix('_emb')} (test)", ylabel=f"{a.removesuffix('_emb')} (test)",
              title="cosine similarity: pairs on the diagonal")
    fig.colorbar(im, ax=ax[1])
    if "supervised_z" in pred:
        ax[2].scatter(truth["z"], pred["supervised_z"], s=3, alpha=0.5)
        lim = [0, float(np.max(truth["z"]))]
        ax[2].plot(lim, lim, "k--", lw=0.8)
        ax[2].set(xlabel="true z", ylabel="predicted z", title="supervised CNN ceiling (test)")
    else:
        ax[2].text(0.5, 0.5, "no supervised ceiling in this run\n(its weights were not shipped)", ha="center")
        ax[2].set(title="supervised CNN ceiling", xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(out / "clip.png", dpi=90)

"""The anomaly baseline's helpers that are neither the model nor its training: images streamed in sky-sigma units
(``to_sigma``), the IsolationForest comparison and the figures. ``autoencoder.py`` imports them (``AE.to_sigma``...)."""

from __future__ import annotations

import numpy as np
import torch
from astrobench import data


class SigmaImages:
    """Images in units of sky noise per band, converted when indexed (``x[idx]``, ``x[a:b]``, ``x[i]``): a float32
    copy of a whole split would hold as much memory as the split (1 GB for the full train set, Binder has 2 GB)."""

    def __init__(self, images, sky_sigma):
        self.images, self.sky = images, np.asarray(sky_sigma, dtype=np.float32)[None, :, None, None]
        self.shape, self.dtype = (len(images), *images.shape[1:]), np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx) -> np.ndarray:
        if isinstance(idx, torch.Tensor):
            idx = idx.numpy()
        rows = np.arange(len(self.images))[idx]  # an int, a slice or an index array -> row numbers
        if np.ndim(rows) == 0:
            return self._read(rows[None])[0]
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.float32)
        for i in range(0, len(rows), self.CHUNK):
            out[i : i + self.CHUNK] = self._read(rows[i : i + self.CHUNK])
        return out

    CHUNK = 256  # rows read at once: what a memory map leaves resident is bounded by one chunk (see _read)

    def _read(self, rows) -> np.ndarray:
        out = np.asarray(self.images[rows], dtype=np.float32) / self.sky
        data.release_pages(self.images)  # copied: a streamed 1 GB split would otherwise stay resident
        return out


def to_sigma(images, sky_sigma) -> SigmaImages:
    """Images in nanomaggies -> units of sky noise per band, read batch by batch (datasets are read-only memmaps;
    ``x[:]`` is the whole split as one array, when you want that copy)."""
    return SigmaImages(images, sky_sigma)


def iforest_scores(train_feats, test_feats, seed: int) -> np.ndarray:
    """IsolationForest fit on train features; higher = more anomalous (sklearn's score_samples is the opposite)."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=300, random_state=seed).fit(train_feats)
    return -forest.score_samples(test_feats)


def gallery(images, scores, types, path=None, k: int = 32, sky_sigma=None):
    """The k highest-scoring test images with their true type (what a follow-up team would look at)."""
    from astrobench.plotting import image_grid

    top = np.argsort(-scores, kind="stable")[:k]
    titles = [f"#{r + 1} {types[i]}" for r, i in enumerate(top)]
    fig = image_grid(np.asarray(images)[top], titles, ncols=8, scale=None if sky_sigma is None else 30 * sky_sigma)
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

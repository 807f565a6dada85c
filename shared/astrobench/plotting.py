"""Figures shared by the tracks: 3-band image grids, spectra with lines marked, metric tables."""

from __future__ import annotations

import numpy as np

# Rest-frame lines (A) worth marking on a galaxy spectrum.
LINES = {"[OII]": 3727.1, "Ca K": 3933.7, "Ca H": 3968.5, "Hδ": 4101.7, "Hγ": 4340.5, "Hβ": 4861.3,
         "[OIII]": 5006.8, "Mg b": 5175.0, "Na D": 5892.9, "Hα": 6562.8, "[SII]": 6716.4}


def asinh_rgb(image, scale=None, q: float = 8.0) -> np.ndarray:
    """(3, H, W) g, r, z image -> (H, W, 3) RGB in [0, 1] with a Lupton-style asinh stretch.

    z maps to red, r to green, g to blue. ``scale`` (per-band divisors) defaults to each band's
    99.5th percentile, so the stretch is comparable across a grid when passed explicitly."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 3 or img.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) g, r, z image, got shape {img.shape}")
    if scale is None:
        scale = np.maximum(np.percentile(img, 99.5, axis=(1, 2)), 1e-12)
    x = img / np.asarray(scale, dtype=np.float64)[:, None, None]
    rgb = np.arcsinh(q * np.clip(x, 0, None)) / np.arcsinh(q)
    return np.clip(rgb[::-1].transpose(1, 2, 0), 0, 1)


def image_grid(images, titles=None, ncols: int = 8, scale=None, size: float = 1.6, fig=None):
    """Grid of (N, 3, H, W) images as asinh RGB; ``scale`` shared per band (default: whole-set percentile)."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    n = len(images)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    if scale is None:
        scale = np.maximum(np.percentile(images, 99.5, axis=(0, 2, 3)), 1e-12)
    fig = fig or plt.figure(figsize=(size * ncols, size * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(asinh_rgb(images[i], scale=scale), origin="lower", interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=7)
    fig.tight_layout()
    return fig


def spectrum(wavelength, flux, z=None, ax=None, label=None, lines: dict = LINES):
    """Observed-frame spectrum; with ``z``, the redshifted positions of common lines are marked."""
    import matplotlib.pyplot as plt

    ax = ax or plt.figure(figsize=(8, 3)).gca()
    ax.plot(wavelength, flux, lw=0.7, label=label)
    if z is not None:
        lo, hi = float(np.min(wavelength)), float(np.max(wavelength))
        for name, rest in lines.items():
            obs = rest * (1 + z)
            if lo < obs < hi:
                ax.axvline(obs, color="0.6", ls=":", lw=0.8)
                ax.text(obs, 0.97, name, rotation=90, va="top", ha="right", fontsize=6,
                        transform=ax.get_xaxis_transform())
    ax.set_xlabel("observed wavelength [Å]")
    ax.set_ylabel(r"$f_\lambda$ [$10^{-17}$ erg s$^{-1}$ cm$^{-2}$ Å$^{-1}$]")
    return ax


def metric_table(rows, title: str | None = None, ax=None, fmt: str = "{:.4g}"):
    """Render ``{name: value}`` or ``{row: {col: value}}`` as a table figure; also returns markdown."""
    import matplotlib.pyplot as plt

    if rows and not isinstance(next(iter(rows.values())), dict):
        rows = {"value": rows}
        rows = {k: {"value": v} for k, v in rows["value"].items()}
    cols = sorted({c for r in rows.values() for c in r}, key=lambda c: list(next(iter(rows.values()))).index(c)
                  if c in next(iter(rows.values())) else 99)

    def cell(v):
        return fmt.format(v) if isinstance(v, (int, float, np.floating, np.integer)) else str(v)

    body = [[cell(rows[r].get(c, "")) for c in cols] for r in rows]
    md = "| | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n"
    md += "".join(f"| {r} | " + " | ".join(b) + " |\n" for r, b in zip(rows, body))
    ax = ax or plt.figure(figsize=(1.6 + 1.4 * len(cols), 0.5 + 0.3 * len(rows))).gca()
    ax.set_axis_off()
    table = ax.table(cellText=body, rowLabels=list(rows), colLabels=cols, loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax, md

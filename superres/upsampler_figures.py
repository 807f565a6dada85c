"""Figures of the super-resolution baseline (``upsampler.py``): example rows and the power-spectrum ratio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_EXAMPLES = 4


def save_figures(out, lr, hr, sr, result: dict, cfg: dict) -> None:
    """``out``/examples.png (the first N_EXAMPLES test images) and ``out``/pk.png (P(k) ratio vs bicubic)."""
    import matplotlib

    matplotlib.use("Agg")
    from astrobench.metrics.superres import bicubic

    bic = bicubic(lr[:N_EXAMPLES], cfg["factor"], cfg["extensive"])
    plot_examples(lr, bic, sr, hr, cfg["extensive"], factor=cfg["factor"]).savefig(Path(out) / "examples.png", dpi=100)
    fig = plot_pk(result, cfg["factor"]).figure
    fig.tight_layout()
    fig.savefig(Path(out) / "pk.png", dpi=100)



def _show(image, scale=None, vmin=None, vmax=None):
    """What to imshow: asinh RGB for 3-band galaxies, log10 density for fields."""
    from astrobench.plotting import asinh_rgb

    if len(image) == 3:
        return dict(X=asinh_rgb(image, scale=scale))
    return dict(X=np.log10(np.clip(image[0], 1e-2, None)), cmap="magma", vmin=vmin, vmax=vmax)


def plot_examples(lr, bicubic, sr, hr, extensive: bool, n: int = N_EXAMPLES, factor: int = 4):
    """Rows of LR | bicubic | model | HR | residual (model - HR, first band, shared symmetric scale)."""
    import matplotlib.pyplot as plt

    n = min(n, len(bicubic))
    fig, axes = plt.subplots(n, 5, figsize=(10, 2.1 * n), squeeze=False)
    unit = factor**2 if extensive else 1.0  # LR flux per (bigger) pixel -> per HR pixel
    for i in range(n):
        scale = np.maximum(np.percentile(hr[i], 99.5, axis=(1, 2)), 1e-12)
        lo, hi = np.log10(max(hr[i].min(), 1e-2)), np.log10(hr[i].max())
        res = sr[i, 0] - hr[i, 0]
        lim = float(np.percentile(np.abs(hr[i, 0] - bicubic[i, 0]), 99))
        panels = [lr[i] / unit, bicubic[i], sr[i], hr[i]]
        for j, (img, title) in enumerate(zip(panels, ("LR", "bicubic", "model", "HR"), strict=True)):
            axes[i, j].imshow(origin="lower", interpolation="nearest", **_show(img, scale, lo, hi))
            axes[i, j].set_title(title if i == 0 else "", fontsize=9)
        axes[i, 4].imshow(res, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        axes[i, 4].set_title("model - HR" if i == 0 else "", fontsize=9)
        for ax in axes[i]:
            ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_pk(result: dict, factor: int = 4, ax=None):
    """P_SR / P_HR against k for the model and bicubic, with the LR and half-HR Nyquist frequencies."""
    import matplotlib.pyplot as plt

    ax = ax or plt.figure(figsize=(5.5, 3.5)).gca()
    k = np.asarray(result["pk_k"])
    ax.plot(k, result["pk_ratio"], label=f"model (PSNR {result['psnr']:.2f} dB)")
    ax.plot(k, result["pk_ratio_bicubic"], label=f"bicubic (PSNR {result['psnr_bicubic']:.2f} dB)", ls="--")
    ax.axhspan(0.9, 1.1, color="0.9", zorder=0, label="±10 %")
    ax.axvline(0.5 / factor, color="0.5", ls=":", lw=1)
    ax.axvline(0.25, color="0.3", ls=":", lw=1)
    ax.text(0.5 / factor, 0.02, " LR Nyquist", fontsize=7, transform=ax.get_xaxis_transform())
    ax.text(0.25, 0.02, " ½ HR Nyquist", fontsize=7, transform=ax.get_xaxis_transform())
    ax.set(xscale="log", yscale="log", xlabel="k [cycles / HR pixel]", ylabel=r"$P_{SR}(k) / P_{HR}(k)$",
           title=result["dataset"])
    ticks = [2.0**-i for i in range(int(np.log2(1 / k[0])), 0, -1)]
    ax.set_xticks(ticks, [f"1/{round(1 / t)}" for t in ticks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.legend(fontsize=7)
    return ax

"""Part II's figure types: effect matrices side by side, a latent traversal grid, measures per architecture.

    fig = effect_matrices(res.data["effects"])            # {title: (matrix [factors, latents], factor names)}
    fig = traversal_grid(res.data["traversal"]["vae (shapes)"], image=0)
    fig = measure_bars(res.tables["architectures"], ["ces", "specificity", "modularity"])
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def effect_matrices(effects: dict, ncols: int = 4, label: str = "effect (latent sd)"):
    """One heatmap per model: rows factors, columns latents; one colour scale for all panels."""
    n = len(effects)
    nrows = int(np.ceil(n / ncols))
    vmax = max(float(np.max(m)) for m, _ in effects.values()) or 1.0
    fig, axes = plt.subplots(nrows, min(n, ncols), figsize=(3.2 * min(n, ncols), 2.4 * nrows + 0.4), squeeze=False)
    im = None
    for ax, (title, (m, factors)) in zip(axes.flat, effects.items()):
        im = ax.imshow(m, aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
        ax.set_yticks(range(len(factors)), factors, fontsize=7)
        ax.set_xticks(range(m.shape[1]), [f"z{k}" for k in range(m.shape[1])], fontsize=6)
        ax.set_xlabel("latent", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(False)
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    fig.colorbar(im, ax=axes.ravel().tolist(), label=label, shrink=0.8)
    return fig


def traversal_grid(traversal: dict, image: int = 0, title: str = ""):
    """Rows latents, columns traversal values: the decoded image (in [0, 1]) of one held-out image."""
    imgs, grid = traversal["images"], traversal["grid"]
    d, steps = imgs.shape[:2]
    fig, axes = plt.subplots(d, steps, figsize=(0.75 * steps + 0.6, 0.75 * d + 0.5), squeeze=False)
    for k in range(d):
        for s in range(steps):
            ax = axes[k, s]
            ax.imshow(imgs[k, s, image], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if s == 0:
                ax.set_ylabel(f"z{k}", fontsize=8, rotation=0, labelpad=12)
            if k == d - 1:
                ax.set_xlabel(f"{grid[s]:.2g}", fontsize=7)
    fig.supxlabel("latent value (prior sd)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def measure_bars(arch: pd.DataFrame, measures: list[str], dataset: str = "shapes"):
    """Mean and 95% CI over replicates of each measure (one panel each) per architecture, one dataset."""
    fig, axes = plt.subplots(1, len(measures), figsize=(2.6 * len(measures), 2.8), squeeze=False)
    for ax, name in zip(axes.flat, measures):
        g = arch[(arch.measure == name) & (arch.dataset == dataset)]
        x = np.arange(len(g))
        err = np.vstack([g["mean"] - g.ci_low, g.ci_high - g["mean"]])
        ax.bar(x, g["mean"], yerr=np.where(np.isfinite(err), np.clip(err, 0, None), 0), capsize=3, alpha=0.8)
        ax.set_xticks(x, g.kind, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel(name.replace("_", " "))
    fig.tight_layout()
    return fig

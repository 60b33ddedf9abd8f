"""The analysis chapters' figure types (chapters 2-10 and 13); chapter 1's live in :mod:`circuitnb.viz.plotting`.

    fig = by_timestep(acc, "accuracy", "prediction accuracy (%)", paper=claims.by_timestep(paper, "acc"))
    fig = heatmap(matrix, rows, cols, "entropy (bits)")
    fig = over_training(res.data["quantities"], "noise R²")     # chapter 13

Every axis carries its quantity and unit; paper values are drawn as open
markers beside ours so the two are never confused.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from circuitnb.viz.plotting import DATASET_COLOURS, to_rgb


def by_timestep(frame: pd.DataFrame, value: str, ylabel: str, paper: dict | None = None, title: str = ""):
    """Mean with 95% CI per timestep for each dataset; ``paper`` = {dataset: {t: value}} as open markers."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for name, g in frame.groupby("dataset", sort=False):
        c = DATASET_COLOURS.get(name, "k")
        g = g.sort_values("t")
        ax.plot(g.t, g[value], "o-", color=c, label=f"{name} (ours)")
        if "ci_low" in g:
            ax.fill_between(g.t, g.ci_low, g.ci_high, color=c, alpha=0.2, lw=0)
        if paper and name in paper:
            ts = sorted(paper[name])
            ax.plot(ts, [paper[name][t] for t in ts], "s--", mfc="none", color=c, alpha=0.8, label=f"{name} (paper)")
    ax.set_xlabel("timestep t (of 1,000)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def heatmap(matrix, rows, cols, cbar_label: str, title: str = "", cmap: str = "viridis", xlabel: str = "",
            ylabel: str = "", center: float | None = None, annotate: bool = False, figsize=None):
    """A labelled heatmap; ``center`` makes a diverging colour scale symmetric about it."""
    m = np.asarray(matrix, float)
    fig, ax = plt.subplots(figsize=figsize or (max(4.0, 0.35 * len(cols) + 2.5), max(2.5, 0.28 * len(rows) + 1.2)))
    kw = {}
    if center is not None:
        span = np.nanmax(np.abs(m - center)) or 1.0
        kw = dict(vmin=center - span, vmax=center + span)
    im = ax.imshow(m, aspect="auto", cmap=cmap, **kw)
    ax.set_xticks(range(len(cols)), [str(c) for c in cols], rotation=60 if len(cols) > 6 else 0, ha="right"
                  if len(cols) > 6 else "center", fontsize=8)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=8)
    ax.grid(False)
    if annotate:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, f"{m[i, j]:.2g}", ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(im, ax=ax, label=cbar_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def bars(labels, ours, ci_low=None, ci_high=None, paper=None, ylabel: str = "", title: str = "",
         log: bool = False, colour: str = "#1f77b4"):
    """Bars of our values with 95% CIs, and the paper's values as open diamonds where given."""
    x = np.arange(len(labels))
    ours = np.asarray(ours, float)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.45 * len(labels) + 1.5), 3.4))
    err = None
    if ci_low is not None:
        err = np.vstack([ours - np.asarray(ci_low, float), np.asarray(ci_high, float) - ours])
        err = np.where(np.isfinite(err), np.clip(err, 0, None), 0)
    ax.bar(x, ours, yerr=err, color=colour, alpha=0.8, capsize=3, label="ours")
    if paper is not None:
        ax.plot(x, paper, "D", mfc="none", color="k", label="paper")
        ax.legend(fontsize=8)
    ax.set_xticks(x, labels, rotation=45 if len(labels) > 5 else 0, ha="right" if len(labels) > 5 else "center",
                  fontsize=8)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("symlog", linthresh=1e-4)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def attention_evolution(images_t: dict, maps: dict, query: int, grid: int, title: str = ""):
    """Fig. 9: for each t, the noisy input x_t (top) and each layer's head-mean attention of one query.

    ``images_t`` {t: [3, H, W]}; ``maps`` {(t, layer): [heads, Q, K]}.
    """
    ts = sorted(images_t, reverse=True)
    layers = sorted({layer for _, layer in maps})
    fig, axes = plt.subplots(1 + len(layers), len(ts), figsize=(1.5 * len(ts) + 0.8, 1.5 * (1 + len(layers))),
                             squeeze=False)
    qy, qx = divmod(query, grid)
    for j, t in enumerate(ts):
        axes[0, j].imshow(to_rgb(images_t[t]), interpolation="nearest")
        axes[0, j].set_title(f"t = {t}", fontsize=9)
        for i, layer in enumerate(layers, 1):
            a = np.asarray(maps[(t, layer)], float)[:, query].mean(0).reshape(grid, grid)
            axes[i, j].imshow(a, cmap="magma", interpolation="nearest")
            axes[i, j].plot(qx, qy, "c+", ms=8)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
    axes[0, 0].set_ylabel("x_t", fontsize=8)
    for i, layer in enumerate(layers, 1):
        axes[i, 0].set_ylabel(layer, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def ife_by_depth(ife: pd.DataFrame):
    """Fig. 6a: IFE of each consecutive block pair against depth, one line per t, a panel per dataset."""
    names = list(ife.dataset.unique())
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.4), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        g = ife[ife.dataset == name]
        for t, h in g.groupby("t"):
            ax.errorbar(h.depth, h.ife, yerr=[h.ife - h.ci_low, h.ci_high - h.ife], marker="o", capsize=2,
                        label=f"t = {t}")
        ax.set_xlabel("depth of the block pair (0 = input, 1 = output)")
        ax.set_title(name)
        for x in (1 / 3, 2 / 3):
            ax.axvline(x, color="grey", ls=":", lw=1)
    axes[0, 0].set_ylabel("information-flow efficiency (Eq. 4)")
    axes[0, -1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def phase_profile(prof: pd.DataFrame, boundaries, title: str = ""):
    """The standardised per-t profile (one line per feature) with the detected phase boundaries."""
    z = (prof - prof.mean()) / prof.std(ddof=0).replace(0, 1)
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for col in z.columns:
        ax.plot(z.index, z[col], lw=1, alpha=0.8, label=col)
    for b in boundaries:
        ax.axvline(b, color="k", ls="--", lw=1)
    ax.invert_xaxis()
    ax.set_xlabel("timestep t (reversed: denoising runs left to right)")
    ax.set_ylabel("z-score over t")
    ax.legend(fontsize=6, ncol=2, loc="best")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def over_training(frame: pd.DataFrame, quantity: str, ref: float | None = None):
    """One quantity against training step: mean and 95% CI over replicate models (band), a line per dataset,
    a panel per timestep; the same-data null as a grey band where the rows carry one; ``ref`` a dashed line.

    ``frame``: chapter 13's long table (quantity, unit, dataset, t, step, mean, ci_low, ci_high, null_*).
    """
    g = frame[frame.quantity == quantity]
    ts = sorted(g.t.dropna().unique()) or [None]
    fig, axes = plt.subplots(1, len(ts), figsize=(min(2.9 * len(ts) + 1.2, 12), 3.1), sharey=True, squeeze=False)
    for ax, t in zip(axes[0], ts):
        sub = g if t is None else g[g.t == t]
        for name, h in sub.sort_values("step").groupby("dataset", sort=False):
            c = DATASET_COLOURS.get(name, "#6a3d9a")           # a contrast: purple, apart from the grey null
            ax.plot(h.step, h["mean"], "o-", color=c, label=name)
            ax.fill_between(h.step, h.ci_low.astype(float), h.ci_high.astype(float), color=c, alpha=0.2, lw=0)
            if h.null_low.notna().any():
                ax.fill_between(h.step, h.null_low.astype(float), h.null_high.astype(float), facecolor="none",
                                edgecolor="grey", hatch="///", lw=0, label="same-data null")
        if ref is not None:
            ax.axhline(ref, color="grey", ls="--", lw=1)
        ax.set_xlabel("training step (optimizer steps)")
        if t is not None:
            ax.set_title(f"t = {int(t)}", fontsize=9)
    axes[0, 0].set_ylabel(f"{quantity}\n({g.unit.iloc[0]})")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def ife_calibration(calib: pd.DataFrame):
    """IFE readings on Gaussian pairs of known correlation: each reading's mean +- SD beside its known answer
    (binned: the exact k x k discretised value; kNN: rho^2), one panel per sample size n."""
    ns = sorted(calib.n.unique())
    fig, axes = plt.subplots(1, len(ns), figsize=(4.6 * len(ns), 3.4), sharey=True, squeeze=False)
    for ax, n in zip(axes[0], ns):
        g = calib[calib.n == n].sort_values("rho")
        for name, colour in (("binned", "C0"), ("knn", "C1")):
            ax.errorbar(g.rho, g[f"{name}_mean"], yerr=g[f"{name}_sd"], marker="o", capsize=2, color=colour,
                        label=f"{name} reading (mean ± SD)")
            ax.plot(g.rho, g[f"{name}_truth"], "--", color=colour, lw=1, label=f"{name}: known answer")
        ax.set_xlabel("true correlation rho of the Gaussian pair")
        ax.set_title(f"n = {n} images, {int(g.n_bins.iloc[0])} bins")
    axes[0, 0].set_ylabel("information-flow efficiency (Eq. 4, 0-1)")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def convergence_curves(curves: pd.DataFrame):
    """Held-out loss and bits/dim against training step (chapter 1): per dataset the mean over replicate models
    (line) and their range (band), each model faint. ``curves``: :func:`circuitnb.analysis.convergence.curves`."""
    panels = (("heldout_loss", "held-out L_simple\n(eps-MSE per pixel)"), ("bpd", "variational bound\n(bits/dim)"))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), squeeze=False)
    for ax, (col, label) in zip(axes[0], panels):
        for name, g in curves.groupby("dataset", sort=False):
            c = DATASET_COLOURS.get(name, "#6a3d9a")
            for _, h in g.groupby("replicate"):
                ax.plot(h.step, h[col], color=c, alpha=0.35, lw=0.8)
            band = g.groupby("step")[col].agg(["mean", "min", "max"])
            ax.plot(band.index, band["mean"], "o-", color=c, label=f"{name} (mean of models)")
            ax.fill_between(band.index, band["min"], band["max"], color=c, alpha=0.2, lw=0,
                            label=f"{name} (range over models)")
        ax.set_xlabel("training step (optimizer steps)")
        ax.set_ylabel(label)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig

"""Part III's figure types: held-out curves per table, tabular-vs-image ratios beside the same-data null, and
model-level scatter plots (one point per model, coloured by table).

    fig = heldout_curves(res.data["convergence_curves"])
    fig = contrast_bars(res.tables["contrast"], ["ces", "specificity", "modularity"])
    fig = model_scatter(res.tables["per_model_wide"], "ces", "mse")
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from circuitnb.viz.vae.figures import KIND_LABELS

LABELS = {
    "ces": "CES, posterior-calibrated (latent sd)", "ces_raw": "CES, raw (latent sd)",
    "specificity": "specificity (0 chance, 1 one latent)", "modularity": "modularity, encoder units (0-1)",
    "modularity_latent": "modularity, latents (0-1)", "mse": "held-out MSE (encoded units)",
    "auc": "downstream AUC (held-out rows)", "nelbo": "held-out negative ELBO (nats per row)",
    "fgd": "FGD (0-1)",
}
KINDS = {**KIND_LABELS, "dip_vae_ii": "DIP-VAE-II"}


def heldout_curves(curves: pd.DataFrame, ncols: int = 5):
    """Held-out negative ELBO (nats per row) against training step, one panel per table, one line per model."""
    tables = list(dict.fromkeys(curves.dataset))
    ncols = min(ncols, len(tables))
    nrows = int(np.ceil(len(tables) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    colours = {k: f"C{i}" for i, k in enumerate(dict.fromkeys(curves.kind))}
    for ax, ds in zip(axes.flat, tables):
        for (k, r), g in curves[curves.dataset == ds].groupby(["kind", "replicate"], sort=False):
            ax.plot(g.step, g.nelbo, color=colours[k], alpha=0.8, lw=1,
                    label=KINDS.get(k, k) if r == 0 else None)
        ax.set_title(ds)
        ax.set_xlabel("training step")
        ax.set_ylabel("held-out -ELBO (nats/row)")
    for ax in list(axes.flat)[len(tables):]:
        ax.set_axis_off()
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def contrast_bars(contrast: pd.DataFrame, measures: list[str]):
    """Tabular / image ratio per architecture (and pooled), geometric mean over seed pairs with its 95% CI
    (log axis); the grey band is the same-data null (ratio between two seeds on the same data)."""
    fig, axes = plt.subplots(1, len(measures), figsize=(3.6 * len(measures), 3.2), squeeze=False)
    for ax, name in zip(axes.flat, measures):
        g = contrast[contrast.measure == name].reset_index(drop=True)
        x = np.arange(len(g))
        eff = g.effect.to_numpy(float)
        err = np.vstack([eff - g.ci_low, g.ci_high - eff])
        ax.errorbar(x, eff, yerr=np.where(np.isfinite(err), np.clip(err, 0, None), 0), fmt="o", capsize=4)
        for i, r in g.iterrows():
            if np.isfinite(r.null_low):
                ax.fill_between([i - 0.3, i + 0.3], r.null_low, r.null_high, color="grey", alpha=0.3, lw=0)
        ax.axhline(1, color="k", lw=0.8, ls=":")
        if (eff > 0).all() and len(eff):
            ax.set_yscale("log")
        ax.set_xticks(x, [KINDS.get(k, k) for k in g.kind], rotation=30, ha="right")
        ax.set_xlabel("architecture")
        ax.set_ylabel(f"tabular / image\n{LABELS.get(name, name)}", fontsize=9)
    fig.tight_layout()
    return fig


def model_scatter(per_model: pd.DataFrame, x: str, y: str, ax=None):
    """One point per model (``per_model``: one row per model, one column per measure), coloured by table,
    marked by architecture."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 3.6))
    marks = dict(zip(dict.fromkeys(per_model.kind), "os^Dv<>p"))
    for i, (ds, g) in enumerate(per_model.groupby("dataset", sort=False)):
        for k, gk in g.groupby("kind", sort=False):
            ax.scatter(gk[x], gk[y], color=f"C{i}", marker=marks[k], s=22, alpha=0.8,
                       label=f"{ds}" if k == per_model.kind.iloc[0] else None)
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.legend(fontsize=7, title="table (marker: architecture)", title_fontsize=7)
    ax.figure.tight_layout()
    return ax.figure

"""Part V's figure types: held-out curves, a slice grid with lesion outlines, ROC curves, the reliability diagram,
head entropy on healthy against lesion slices, and head ablation effects (mean over replicate models with CIs).

    fig = heldout_curves(res.data["curves"])                  # -ELBO against step, one line per model
    fig = slice_grid(res.data["samples"], res.data["masks"])  # the four contrasts of a few held-out slices
    fig = roc_curves(res.data["roc"])                         # slice-level ROC of replicate 0 of each kind
    fig = reliability(res.tables["reliability"])              # mean squared error against mean variance per bin
    fig = head_entropy(res.tables["entropy_heads"])           # entropy per head, healthy vs lesion, CI over models
    fig = ablation(res.tables["ablation_targets"])            # change of slice ROC AUC when a head is zeroed
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

KINDS = {"attention": "Bayesian attention VAE", "no_attention": "Bayesian VAE, no attention",
         "non_bayesian": "attention VAE, not Bayesian"}
MODALITIES = ("FLAIR", "T1", "T1ce", "T2")
GROUPS = {"healthy": "C0", "lesion": "C3"}


def heldout_curves(curves: pd.DataFrame):
    """Held-out negative ELBO (nats per slice) of the healthy held-out slices against training step, one line per
    model, colour per kind."""
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    for i, (k, g) in enumerate(curves.groupby("kind", sort=False)):
        for r, gr in g.groupby("replicate"):
            ax.plot(gr.step, gr.nelbo, color=f"C{i}", lw=1, alpha=0.8, label=KINDS.get(k, k) if r == 0 else None)
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out -ELBO (nats/slice)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def slice_grid(images: np.ndarray, masks: np.ndarray):
    """Rows: held-out slices; columns: the four contrasts (intensity normalised to [-1, 1]) and the lesion mask
    (BraTS labels: 1 necrotic core, 2 oedema, 4 enhancing), with the lesion outlined on every contrast."""
    n = len(images)
    fig, axes = plt.subplots(n, 5, figsize=(6.5, 1.35 * n), squeeze=False)
    for i in range(n):
        for c in range(4):
            ax = axes[i, c]
            ax.imshow(images[i, c], cmap="gray", vmin=-1, vmax=1)
            if masks[i].any():
                ax.contour(masks[i] > 0, levels=[0.5], colors="r", linewidths=0.6)
        axes[i, 4].imshow(masks[i], cmap="magma", vmin=0, vmax=4, interpolation="nearest")
    for c, name in enumerate((*MODALITIES, "mask (label 0-4)")):
        axes[0, c].set_title(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    fig.tight_layout()
    return fig


def roc_curves(roc: dict):
    """Slice-level ROC curves: ``roc[kind] = (scores [N], lesion [N])`` of one model each; the diagonal is chance."""
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    for i, (k, (s, y)) in enumerate(roc.items()):
        if np.asarray(y).any() and not np.asarray(y).all():
            fpr, tpr, _ = roc_curve(np.asarray(y, bool), s)
            ax.plot(fpr, tpr, color=f"C{i}", label=KINDS.get(k, k))
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    ax.set_xlabel("false positive rate (healthy slices)")
    ax.set_ylabel("true positive rate (lesion slices)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def reliability(rel: pd.DataFrame, uncertainty: str = "total"):
    """Reliability diagram: per uncertainty bin, mean squared error against mean predictive variance (both per
    pixel, averaged over channels), log-log, one line per model; on the diagonal the variance is the error's
    size (calibrated in scale), and a rising line means uncertain pixels err more."""
    sub = rel[rel.uncertainty == uncertainty]
    fig, ax = plt.subplots(figsize=(4.0, 3.4))
    lo, hi = np.inf, 0.0
    for i, (k, g) in enumerate(sub.groupby("kind", sort=False)):
        for r, gr in g.groupby("replicate"):
            ax.plot(gr.mean_uncertainty, gr.mean_error, color=f"C{i}", marker="o", ms=3, lw=1,
                    label=KINDS.get(k, k) if r == 0 else None)
        vals = np.r_[g.mean_uncertainty, g.mean_error]
        vals = vals[vals > 0]
        if vals.size:
            lo, hi = min(lo, vals.min()), max(hi, vals.max())
    if hi > 0:
        ax.plot([lo, hi], [lo, hi], color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(f"mean {uncertainty} predictive variance (per pixel)")
    ax.set_ylabel("mean squared error (per pixel)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def head_entropy(heads: pd.DataFrame, kind: str = "attention", measure: str = "entropy"):
    """Each head's mean entropy (bits) on healthy and on lesion slices, mean over replicate models with 95%
    t-intervals, one panel per attention layer. ``heads``: across_replicates by kind, layer, head, group, measure."""
    sub = heads[(heads.kind == kind) & (heads.measure == measure)]
    layers = list(dict.fromkeys(sub.layer))
    fig, axes = plt.subplots(1, max(len(layers), 1), figsize=(3.6 * max(len(layers), 1), 2.8), squeeze=False,
                             sharey=True)
    for ax, layer in zip(axes.flat, layers):
        g = sub[sub.layer == layer]
        for j, (grp, colour) in enumerate(GROUPS.items()):
            h = g[g.group == grp].sort_values("head")
            x = np.arange(len(h)) + 0.18 * (2 * j - 1)
            err = np.nan_to_num(np.vstack([h["mean"] - h.ci_low, h.ci_high - h["mean"]]))
            ax.errorbar(x, h["mean"], yerr=err, fmt="o", ms=4, capsize=2, color=colour, label=f"{grp} slices")
            ax.set_xticks(np.arange(len(h)), [f"h{k}" if k >= 0 else "mean" for k in h["head"]])
        ax.set_title(layer, fontsize=9)
        ax.set_xlabel("head")
    axes.flat[0].set_ylabel("entropy (bits)" if measure == "entropy" else "specialization (0-1)")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def ablation(targets: pd.DataFrame, kind: str = "attention", measure: str = "delta_auc"):
    """Change of the slice-level ROC AUC when a head (or a whole layer) is zeroed, mean over replicate models
    with 95% t-intervals; below 0 the head carries detection. ``targets``: across_replicates by kind, target."""
    sub = targets[(targets.kind == kind) & (targets.measure == measure)]
    fig, ax = plt.subplots(figsize=(max(3.6, 0.55 * len(sub) + 1.5), 3.0))
    x = np.arange(len(sub))
    err = np.nan_to_num(np.vstack([sub["mean"] - sub.ci_low, sub.ci_high - sub["mean"]]))
    colours = ["C1" if "." in t.rsplit("attn", 1)[-1] else "C2" for t in sub.target]
    ax.bar(x, sub["mean"], yerr=err, color=colours, capsize=2)
    ax.axhline(0, color="grey", lw=1)
    ax.set_xticks(x, [t.replace(".attn", "") for t in sub.target], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("change of slice ROC AUC" if measure == "delta_auc" else measure)
    ax.set_xlabel("head zeroed (orange) or whole layer (green)")
    fig.tight_layout()
    return fig

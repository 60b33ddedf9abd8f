"""Part IV's figure types: held-out curves per set, a measure over the schedule (mean over replicate models with
their range), dead rate against the threshold, the schedule's k.

    fig = heldout_curves(res.data["curves"])                       # -ELBO against step, one line per model
    fig = over_schedule(res.tables["schedule_long"], "dead@0", end=res.values["schedule_end"])
    fig = threshold_curves(res.tables["thresholds"])               # dead rate against threshold, CI over models
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

METHODS = {"topk": "Top-k", "topk_auxk": "Top-k + AuxK", "l1": "L1"}
DATASETS = {"dsprites": "dSprites-style", "shapes3d": "Shapes3D-style"}
LABELS = {"mig_latent": "MIG of the latents (0-1)", "dci_d": "DCI disentanglement (0-1)",
          "dci_c": "DCI completeness (0-1)", "dci_i": "DCI informativeness (accuracy)",
          "mono_max": "monosemanticity, max eta^2 (0-1)", "mono_margin": "monosemanticity, margin (0-1)",
          "active_per_input": "active units per input", "k": "schedule's k (units)"}


def label(measure: str) -> str:
    if measure.startswith("dead@"):
        t = float(measure[5:])
        return "dead units (%), never active" if t == 0 else f"dead units (%), active on < {t:g} of inputs"
    return LABELS.get(measure, measure)


def heldout_curves(curves: pd.DataFrame):
    """Held-out negative ELBO (nats per image) against training step, one panel per set, one line per model."""
    sets = list(dict.fromkeys(curves.dataset))
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.0), squeeze=False)
    for ax, ds in zip(axes.flat, sets):
        for i, (k, g) in enumerate(curves[curves.dataset == ds].groupby("method", sort=False)):
            for r, gr in g.groupby("replicate"):
                ax.plot(gr.step, gr.nelbo, color=f"C{i}", lw=1, alpha=0.8, label=METHODS.get(k, k) if r == 0 else None)
        ax.set_title(DATASETS.get(ds, ds))
        ax.set_xlabel("training step")
        ax.set_ylabel("held-out -ELBO (nats/image)")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def over_schedule(long: pd.DataFrame, measure: str, end: int | None = None, percent: bool | None = None):
    """``measure`` against training step, one panel per set, one line per method: mean over replicate models, the
    band their range; a dotted line at the schedule's end (k final from there on). ``long``: schedule rows
    (method, dataset, replicate, step, measure columns)."""
    percent = measure.startswith("dead@") if percent is None else percent
    scale = 100.0 if percent else 1.0
    sets = list(dict.fromkeys(long.dataset))
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.0), squeeze=False, sharey=True)
    for ax, ds in zip(axes.flat, sets):
        for i, (k, g) in enumerate(long[long.dataset == ds].groupby("method", sort=False)):
            agg = g.groupby("step")[measure].agg(["mean", "min", "max"]) * scale
            ax.plot(agg.index, agg["mean"], color=f"C{i}", marker="o", ms=3, label=METHODS.get(k, k))
            ax.fill_between(agg.index, agg["min"], agg["max"], color=f"C{i}", alpha=0.2, lw=0)
        if end is not None:
            ax.axvline(end, color="grey", ls=":", lw=1)
        ax.set_title(DATASETS.get(ds, ds))
        ax.set_xlabel("training step")
    axes.flat[0].set_ylabel(label(measure))
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def threshold_curves(summary: pd.DataFrame):
    """Dead rate (%) at the last snapshot against the dead threshold (share of held-out inputs a unit must fire on),
    one panel per set, one line per method: mean over models with its 95% t-interval as error bars. ``summary``:
    :func:`circuitnb.analysis.replicates.across_replicates` by method, dataset, threshold."""
    sets = list(dict.fromkeys(summary.dataset))
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.0), squeeze=False, sharey=True)
    for ax, ds in zip(axes.flat, sets):
        for i, (k, g) in enumerate(summary[summary.dataset == ds].groupby("method", sort=False)):
            g = g.sort_values("threshold")
            x = np.arange(len(g))
            err = np.vstack([g["mean"] - g.ci_low, g.ci_high - g["mean"]]) * 100
            ax.errorbar(x + 0.06 * (i - 1), g["mean"] * 100, yerr=np.nan_to_num(err), color=f"C{i}", marker="o",
                        ms=3, capsize=2, label=METHODS.get(k, k))
            ax.set_xticks(x, [f"{t:g}" for t in g.threshold])
        ax.set_title(DATASETS.get(ds, ds))
        ax.set_xlabel("threshold (share of held-out inputs)")
    axes.flat[0].set_ylabel("dead units (%)")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def schedule_k(steps: np.ndarray, k: np.ndarray, end: int):
    """The schedule: k (active units per input) against training step; a dotted line at the decay's end."""
    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    ax.plot(steps, k, color="C0")
    ax.axvline(end, color="grey", ls=":", lw=1)
    ax.set_xlabel("training step")
    ax.set_ylabel("k (active units per input)")
    fig.tight_layout()
    return fig

"""The paper's metrics per held-out image and timestep, from one model's recorded sweep (or its interventions).

    acc = replicates.per_replicate(sweeps, accuracy_per_image)      # dataset, replicate, t, image, value

Each function takes one :class:`circuitnb.analysis.sweep.Sweep` and returns one row per (image, t) with
columns dataset, t, image, value; :func:`circuitnb.analysis.replicates.per_replicate` adds the replicate.
Chapters 2, 3, 7 and 13 read them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.measures import quantities


def accuracy_per_image(sw) -> pd.DataFrame:
    """Prediction accuracy (:func:`circuitnb.measures.quantities.prediction_accuracy`, noise R² in %) per image
    and t: ``accuracy_per_image(sweep)`` -> columns dataset, t, image, value."""
    return sw.mse[["dataset", "t", "image", "accuracy"]].rename(columns={"accuracy": "value"})


def complexity_per_image(sw) -> pd.DataFrame:
    """Feature complexity (Eq. 3) per image and t, the mean over the U-Net's blocks:
    ``complexity_per_image(sweep)`` -> columns dataset, t, image, value."""
    return sw.blocks.groupby(["dataset", "t", "image"], as_index=False).complexity.mean().rename(
        columns={"complexity": "value"})


def circuit_complexity_per_image(sw) -> pd.DataFrame:
    """Circuit complexity (:func:`circuitnb.measures.quantities.circuit_complexity`) per image and t."""
    frames = []
    for t in sw.timesteps:
        cc = quantities.circuit_complexity(sw.head_matrix(t, "energy"))
        frames.append(pd.DataFrame(dict(dataset=sw.dataset, t=t, image=np.arange(len(cc)), value=cc)))
    return pd.concat(frames, ignore_index=True)


def feature_hierarchy_per_image(sw) -> pd.DataFrame:
    """Feature hierarchy (:func:`circuitnb.measures.quantities.feature_hierarchy`) per image and t."""
    frames = []
    for t, g in sw.blocks.groupby("t"):
        wide = g.pivot_table(index="image", columns="block", values="complexity", sort=False)[sw.block_names]
        frames.append(pd.DataFrame(dict(dataset=sw.dataset, t=t, image=wide.index,
                                        value=quantities.feature_hierarchy(wide.to_numpy()))))
    return pd.concat(frames, ignore_index=True)


def entropy_per_image(sw) -> pd.DataFrame:
    """Attention entropy (Eq. 1, bits) per image and t: the mean over all heads."""
    return sw.heads.groupby(["dataset", "t", "image"], as_index=False).entropy.mean().rename(
        columns={"entropy": "value"})


def intervention_impact_per_image(ivs: pd.DataFrame) -> pd.DataFrame:
    """Table 4 "intervention impact": per image and t, the mean impact (Eq. 5) over the layer-ablation family.

        ii = intervention_impact_per_image(interventions.intervention_sweep(cfg, models))  # dataset, t, image, value
    """
    sub = ivs[ivs.family == "layer ablation"]
    return sub.groupby(["dataset", "t", "image"], as_index=False).impact.mean().rename(columns={"impact": "value"})

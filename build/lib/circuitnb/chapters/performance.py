"""Chapter 2 (§4.1, Fig. 3): prediction accuracy and feature complexity per timestep."""
from __future__ import annotations

import pandas as pd

from circuitnb.measures import claims
from circuitnb.chapters.common import mean_ci

_DS = {"synthetic": "syn", "celeba": "cel"}


def accuracy_table(sweeps: dict, n_bootstrap: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Prediction accuracy (:func:`circuitnb.quantities.prediction_accuracy`) per dataset and t, mean [95% CI]."""
    rows = []
    for name, sw in sweeps.items():
        for t, g in sw.mse.groupby("t"):
            m, lo, hi = mean_ci(g.accuracy, n_bootstrap, seed)
            rows.append(dict(dataset=name, t=t, accuracy=m, ci_low=lo, ci_high=hi, n=len(g)))
    return pd.DataFrame(rows)


def complexity_per_image(sw) -> pd.DataFrame:
    """Feature complexity (Eq. 3) per image and t: the mean over the U-Net's blocks."""
    return sw.blocks.groupby(["dataset", "t", "image"], as_index=False).complexity.mean()


def complexity_table(sweeps: dict, n_bootstrap: int = 2000, seed: int = 0) -> pd.DataFrame:
    rows = []
    for name, sw in sweeps.items():
        for t, g in complexity_per_image(sw).groupby("t"):
            m, lo, hi = mean_ci(g.complexity, n_bootstrap, seed)
            rows.append(dict(dataset=name, t=t, complexity=m, ci_low=lo, ci_high=hi, n=len(g)))
    return pd.DataFrame(rows)


def claim_rows(acc: pd.DataFrame, fc: pd.DataFrame) -> list[dict]:
    rows = []
    for r in acc.itertuples():
        rows.append(claims.row(f"acc_{_DS[r.dataset]}_{r.t}", r.accuracy, r.ci_low, r.ci_high, complement=100,
                               definition="quantities.prediction_accuracy (compared as error rate 100 - acc)"))
    for r in fc.itertuples():
        rows.append(claims.row(f"fc_{_DS[r.dataset]}_{r.t}", r.complexity, r.ci_low, r.ci_high, comparable=False,
                               why="Eq. 3 without the paper's normalisation or sparsity measure; our scale is ours",
                               definition="metrics.feature_complexity"))
    return rows

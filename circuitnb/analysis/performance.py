"""§4.1: the scorecard rows of prediction accuracy and feature complexity per timestep.

    acc = replicates.per_replicate(sweeps, per_image.accuracy_per_image)
    fc = replicates.per_replicate(sweeps, per_image.complexity_per_image)
    rows = claim_rows(acc, fc)        # acc_<ds>_<t> judged, fc_<ds>_<t> not comparable

Chapters 2 and 13 (over training) read them.
"""
from __future__ import annotations

import pandas as pd

from circuitnb.analysis import replicates
from circuitnb.analysis.claim_rows import claim_row, labelled_row
from circuitnb.measures import claims

_DS = {"synthetic": "syn", "celeba": "cel"}
FC_WHY = "Eq. 3 without the paper's normalisation or sparsity measure (neither is given); our scale is ours"


def claim_rows(acc: pd.DataFrame, fc: pd.DataFrame) -> list[dict]:
    """Scorecard rows: accuracies judged as values (the margins file states the scale), each replicate model
    judged alone beside; feature complexities not comparable (``FC_WHY``).

        claim_rows(per_acc, per_fc)     # per-image frames with a replicate column
    """
    rows = []
    levels = replicates.across_replicates(acc, ["dataset", "t"]).set_index(["dataset", "t"])
    per_model = replicates.image_estimates(acc, ["dataset", "t"])
    for (d, t), r in levels.iterrows():
        rows.append(claim_row(f"acc_{_DS[d]}_{t}", replicates.estimate(r), per_model[(d, t)], unit="%",
                              reason="noise R² in % (our reading of the undefined 'prediction accuracy')"))
    for r in replicates.across_replicates(fc, ["dataset", "t"]).itertuples():
        rows.append(labelled_row(f"fc_{_DS[r.dataset]}_{r.t}", r.mean, "not comparable", FC_WHY, unit="a.u."))
    return claims.known(rows)

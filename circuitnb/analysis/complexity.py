"""§4.2, Table 1: circuit complexity per timestep at the model level, and its scorecard rows.

    per = replicates.per_replicate(sweeps, per_image.circuit_complexity_per_image)
    t1 = table1(per, cfg.analysis.alpha)      # levels per dataset, CelebA / synthetic ratio and d beside the null
    rows = table1_claims(per)                 # cc_<ds>_<t> (not comparable), cc_ratio_<t> (judged)

Chapters 3, 12 (the head-energy site reading) and 13 (over training) read them.
"""
from __future__ import annotations

import pandas as pd

from circuitnb.analysis import replicates
from circuitnb.analysis.claim_rows import claim_row, labelled_row
from circuitnb.measures import stats

_DS = {"synthetic": "syn", "celeba": "cel"}


def table1(per: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Table 1 at the model level: circuit complexity per t for each dataset (mean over models, t-CI), the
    ratio CelebA / synthetic and image-level Cohen's d per replicate pair (mean, t-CI), each beside its
    same-data null; Welch's t over model means, Holm over the timesteps (one family)."""
    levels = replicates.across_replicates(per, ["dataset", "t"]).set_index(["dataset", "t"])
    ratio = replicates.dataset_contrast(per, ["t"], "ratio").set_index("t")
    d = replicates.dataset_contrast(per, ["t"], "d").set_index("t")
    out = pd.DataFrame(index=ratio.index)
    for name, short in (("synthetic", "syn"), ("celeba", "cel")):
        lv = levels.xs(name, level="dataset")
        out[short], out[f"{short}_ci_low"], out[f"{short}_ci_high"] = lv["mean"], lv.ci_low, lv.ci_high
    for col in ("effect", "ci_low", "ci_high", "null_low", "null_high", "beyond_null", "per_pair"):
        out[f"ratio_{col}" if col != "effect" else "ratio"] = ratio[col]
    for col in ("effect", "ci_low", "ci_high", "null_low", "null_high", "beyond_null"):
        out[f"d_{col}" if col != "effect" else "d"] = d[col]
    out["p_models"] = ratio.p_models
    out["p_holm"] = stats.correct(out.p_models.fillna(1.0).to_numpy(), alpha).p_holm.to_numpy()
    out["n_models"] = int(levels.n_models.min())
    out["n_images"] = int(levels.n_images.min())
    return out.reset_index().rename(columns={"t": "timestep"})


def table1_claims(per: pd.DataFrame) -> list[dict]:
    """Scorecard rows of Table 1: levels are on our scale (not comparable); the ratio is judged, with each
    replicate pair's own verdict beside."""
    rows = []
    why = ("our circuit complexity is the share of heads that carry the output (in [1/24, 1]); the paper's "
           "scale is undefined")
    levels = replicates.across_replicates(per, ["dataset", "t"])
    for r in levels.itertuples():
        rows.append(labelled_row(f"cc_{_DS[r.dataset]}_{r.t}", r.mean, "not comparable", why))
    for _, r in replicates.dataset_contrast(per, ["t"], "ratio").iterrows():
        rows.append(claim_row(f"cc_ratio_{r.t}", replicates.estimate(r), r.pair_estimates, unit="ratio",
                              reason="beyond the same-data null" if r.beyond_null
                              else "within the same-data null (seed-to-seed spread)"))
    return rows

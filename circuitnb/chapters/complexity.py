"""Chapter 3 (§4.2, Table 1): circuit complexity; and the per-image metrics that chapter 7 (Table 4) compares."""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis import replicates
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult
from circuitnb.measures import claims, quantities, stats

CHAPTER = "03_circuit_complexity"
_DS = {"synthetic": "syn", "celeba": "cel"}

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
        rows.append(common.labelled_row(f"cc_{_DS[r.dataset]}_{r.t}", r.mean, "not comparable", why))
    for _, r in replicates.dataset_contrast(per, ["t"], "ratio").iterrows():
        rows.append(common.claim_row(f"cc_ratio_{r.t}", replicates.estimate(r), r.pair_estimates, unit="ratio",
                                     reason="beyond the same-data null" if r.beyond_null
                                     else "within the same-data null (seed-to-seed spread)"))
    return rows


@common.cached_chapter()
def run(cfg) -> ChapterResult:
    """Chapter 3: Table 1 and its figure, from every replicate model on held-out images."""
    _, sweeps = common.models_and_sweeps(cfg)
    per = replicates.per_replicate(sweeps, circuit_complexity_per_image)
    t1 = table1(per, cfg.analysis.alpha)
    first = t1.iloc[0]
    res = ChapterResult(CHAPTER)
    res.tables["table1"] = t1
    res.tables["claims"] = pd.DataFrame(claims.known(table1_claims(per)))
    res.data["levels"] = replicates.across_replicates(per, ["dataset", "t"]).rename(columns={"mean": "value"})
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n=int(first.n_images), n_models=int(first.n_models),
                      timesteps=", ".join(map(str, cfg.analysis.timesteps)), t_first=int(first.timestep),
                      ratio_first=first.ratio, ratio_lo=first.ratio_ci_low, ratio_hi=first.ratio_ci_high,
                      null_lo=first.ratio_null_low, null_hi=first.ratio_null_high, d_first=first.d,
                      d_lo=first.d_ci_low, d_hi=first.d_ci_high, p_first=first.p_holm,
                      n_beyond=int(t1.ratio_beyond_null.sum()), n_t=len(t1))
    return res

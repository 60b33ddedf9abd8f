"""§4.7, Table 4: four metrics compared across datasets, the model as the unit; and Table 4's scorecard rows.

    per = per_image_metrics(sweeps, ivs)      # metric, dataset, replicate, t, image, value
    img = image_level(per)                    # each image's mean over the analysed timesteps
    t4 = table4(img, cfg.analysis.alpha)      # levels, difference and d beside the same-data null, MDE

The paper pools images x timesteps as independent observations (n = 400 per
dataset for 100 images at 4 timesteps); values of one image at different t are
not independent, and one model per dataset confounds the dataset with the
training seed. Here each metric is first averaged over the analysed timesteps
*per image* (the image is the unit within a model), then over images per model;
the dataset contrast takes the model as the unit and is set beside the
same-data null (:func:`circuitnb.analysis.replicates.dataset_contrast`). Holm
over the four metrics (one family, as the paper's Table 4). Chapters 7 and 13 read them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis import replicates
from circuitnb.analysis.claim_rows import claim_row, labelled_row
from circuitnb.analysis.per_image import (
    circuit_complexity_per_image,
    entropy_per_image,
    feature_hierarchy_per_image,
    intervention_impact_per_image,
)
from circuitnb.measures import claims, stats, verdicts

_DS = {"synthetic": "syn", "celeba": "cel"}
AUDIT_CSV = claims.PAPER_DATA / "audit.csv"     # the paper's Table 4 Cohen's d (table4_d_<metric>)
POWER = 0.80                                    # the minimum detectable effect's power (Cohen's convention)

# Table 4's rows: label -> (short id of the claim ids t4_<short>_syn/cel, per-image function of one sweep).
# Intervention impact needs the chapter 6 sweep, not the recorded sweep; see :func:`per_image_metrics`.
METRICS = {"Circuit Complexity": ("cc", circuit_complexity_per_image),
           "Attention Entropy": ("ent", entropy_per_image),
           "Feature Hierarchy": ("fh", feature_hierarchy_per_image),
           "Intervention Impact": ("ii", None)}
UNITS = {"cc": "share of heads", "ent": "bits", "fh": "a.u. (slope over depth)", "ii": "ratio of MSEs (Eq. 5)"}
# Levels on our own scale (the paper never defines the quantity) are labelled, not judged.
NOT_COMPARABLE = {
    "cc": "our circuit complexity is the share of heads that carry the output (in [1/24, 1]); the paper's "
          "scale is undefined",
    "fh": "our feature hierarchy is the slope of Eq. 3 over depth, with our normalisation of Eq. 3; the "
          "paper's scale is undefined"}


def per_image_metrics(sweeps: dict, ivs: list[pd.DataFrame]) -> pd.DataFrame:
    """Every metric per (dataset, replicate, t, image): columns metric, dataset, replicate, t, image, value.

    ``sweeps`` {dataset: [sweep of replicate r]}; ``ivs[r]``: the intervention sweep of replicate r's models.
    """
    frames = [replicates.per_replicate(sweeps, fn).assign(metric=label)
              for label, (_, fn) in METRICS.items() if fn is not None]
    frames += [intervention_impact_per_image(iv).assign(replicate=r, metric="Intervention Impact")
               for r, iv in enumerate(ivs)]
    return pd.concat(frames, ignore_index=True)[["metric", "dataset", "replicate", "t", "image", "value"]]


def image_level(per: pd.DataFrame) -> pd.DataFrame:
    """One value per image of each model: the mean over the analysed timesteps (the image is the unit).

        image_level(per)      # columns metric, dataset, replicate, image, value, n_t
    """
    g = per.groupby(["metric", "dataset", "replicate", "image"], sort=False).value
    return g.agg(value="mean", n_t="size").reset_index()


def _paper_d() -> pd.Series:
    audit = pd.read_csv(AUDIT_CSV, dtype={"value": str}).set_index("key").value.astype(float)
    return pd.Series({label: audit.get(f"table4_d_{s}", np.nan) for label, (s, _) in METRICS.items()})


def _mde(n: int, alpha: float) -> float:
    return verdicts.minimum_detectable_effect(n, alpha=alpha, power=POWER) if n >= 2 else np.nan


def table4(img: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Table 4 at the model level, from :func:`image_level` values.

    Per metric: each dataset's level (mean over models of each model's image mean, t-interval over models),
    the paper's levels; the CelebA - synthetic difference and image-level Cohen's d per replicate pair
    (mean and t-interval over pairs), each beside its same-data null; the paper's d; Welch's t over model
    means, Holm over the four metrics; and the minimum detectable effect (Cohen's d at 80% power and
    ``alpha``) at the design's n: between model means (n models per dataset) and within one replicate pair
    (n images per model).
    """
    levels = replicates.across_replicates(img, ["metric", "dataset"]).set_index(["metric", "dataset"])
    paper = claims.load().set_index("id").paper_value.astype(float)
    out = pd.DataFrame(index=pd.Index(list(METRICS), name="metric"))
    for name, short in _DS.items():
        lv = levels.xs(name, level="dataset").reindex(out.index)
        out[short], out[f"{short}_ci_low"], out[f"{short}_ci_high"] = lv["mean"], lv.ci_low, lv.ci_high
        out[f"paper_{short}"] = [paper.get(f"t4_{s}_{short}", np.nan) for s, _ in METRICS.values()]
    for measure, prefix in (("difference", "diff"), ("d", "d")):
        c = replicates.dataset_contrast(img, ["metric"], measure).set_index("metric").reindex(out.index)
        out[prefix] = c.effect
        for col in ("ci_low", "ci_high", "null_low", "null_high", "beyond_null"):
            out[f"{prefix}_{col}"] = c[col]
        out["p_models"] = c.p_models
    out["paper_d"] = _paper_d().reindex(out.index)
    out["p_holm"] = stats.correct(out.p_models.fillna(1.0).to_numpy(), alpha).p_holm.to_numpy()
    out["n_models"] = int(levels.n_models.min())
    # per metric: intervention impact is measured on chapter 6's images (n_intervention_samples), the rest on
    # the recorded sweep's
    # the recorded sweep's; a metric left out (chapter 13 has no intervention impact) has none ("Int64": NA)
    out["n_images"] = levels.n_images.groupby(level="metric").min().reindex(out.index).astype("Int64")
    out["n_t"] = int(img.n_t.min())
    out["mde_models"] = _mde(int(out.n_models.iloc[0]), alpha)
    out["mde_images"] = [np.nan if pd.isna(n) else _mde(int(n), alpha) for n in out.n_images]
    return out.reset_index()


def table4_claims(img: pd.DataFrame) -> list[dict]:
    """Scorecard rows of Table 4: t4_<metric>_syn and t4_<metric>_cel are LEVELS (mean over models of that
    dataset's metric), judged as levels where the scale is the paper's (entropy in bits, impact as Eq. 5)
    and labelled not comparable where it is ours. The contrast is reported in :func:`table4`, not judged
    here: the paper's p and d are no level's verdict."""
    rows = []
    levels = replicates.across_replicates(img, ["metric", "dataset"]).set_index(["metric", "dataset"])
    per_model = replicates.image_estimates(img, ["metric", "dataset"])
    for (metric, dataset), r in levels.reindex([(m, d) for m in METRICS for d in _DS]).dropna(how="all").iterrows():
        s = METRICS[metric][0]
        cid = f"t4_{s}_{_DS[dataset]}"
        if s in NOT_COMPARABLE:
            rows.append(labelled_row(cid, r["mean"], "not comparable", NOT_COMPARABLE[s], unit=UNITS[s]))
        else:
            rows.append(claim_row(cid, replicates.estimate(r), per_model[(metric, dataset)], unit=UNITS[s],
                                  reason="level over all analysed timesteps (image mean over t, "
                                         "then over images, then over models)"))
    return claims.known(rows)

"""Chapter 7 (§3.3, §4.7, Table 4, Figs. 2 and 8a): four metrics compared across datasets, the model as the unit.

    res = cross_dataset.run(cfg)          # res.tables["table4"], ["per_timestep"], ["claims"]

The paper pools images x timesteps as independent observations (n = 400 per
dataset for 100 images at 4 timesteps); values of one image at different t are
not independent, and one model per dataset confounds the dataset with the
training seed. Here each metric is first averaged over the analysed timesteps
*per image* (the image is the unit within a model), then over images per model;
the dataset contrast takes the model as the unit and is set beside the
same-data null (:func:`circuitnb.analysis.replicates.dataset_contrast`). Holm
over the four metrics (one family, as the paper's Table 4).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis import replicates
from circuitnb.chapters import causal, common, complexity
from circuitnb.chapters.report import ChapterResult
from circuitnb.measures import claims, stats, verdicts

CHAPTER = "07_cross_dataset"
_DS = {"synthetic": "syn", "celeba": "cel"}
AUDIT_CSV = claims.PAPER_DATA / "audit.csv"     # the paper's Table 4 Cohen's d (table4_d_<metric>)
POWER = 0.80                                    # the minimum detectable effect's power (Cohen's convention)


def intervention_impact_per_image(ivs: pd.DataFrame) -> pd.DataFrame:
    """Table 4 "intervention impact": per image and t, the mean impact (Eq. 5) over the layer-ablation family.

        ii = intervention_impact_per_image(causal.intervention_sweep(cfg, models))   # dataset, t, image, value
    """
    sub = ivs[ivs.family == "layer ablation"]
    return sub.groupby(["dataset", "t", "image"], as_index=False).impact.mean().rename(columns={"impact": "value"})


# Table 4's rows: label -> (short id of the claim ids t4_<short>_syn/cel, per-image function of one sweep).
# Intervention impact needs the chapter 6 sweep, not the recorded sweep; see :func:`per_image_metrics`.
METRICS = {"Circuit Complexity": ("cc", complexity.circuit_complexity_per_image),
           "Attention Entropy": ("ent", complexity.entropy_per_image),
           "Feature Hierarchy": ("fh", complexity.feature_hierarchy_per_image),
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


def per_timestep(per: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Fig. 8a at the model level: each metric at each t, levels and Cohen's d beside the same-data null,
    Holm over each metric's timesteps (the image is still the unit within a model)."""
    frames = []
    for label, g in per.groupby("metric", sort=False):
        lv = replicates.across_replicates(g, ["dataset", "t"]).pivot(index="t", columns="dataset", values="mean")
        d = replicates.dataset_contrast(g, ["t"], "d").set_index("t")
        f = pd.DataFrame({"metric": label, "syn": lv["synthetic"], "cel": lv["celeba"], "d": d.effect,
                          "d_ci_low": d.ci_low, "d_ci_high": d.ci_high, "d_null_low": d.null_low,
                          "d_null_high": d.null_high, "d_beyond_null": d.beyond_null, "p_models": d.p_models})
        f["p_holm"] = stats.correct(f.p_models.fillna(1.0).to_numpy(), alpha).p_holm.to_numpy()
        frames.append(f.reset_index())
    return pd.concat(frames, ignore_index=True)[["metric", "t", "syn", "cel", "d", "d_ci_low", "d_ci_high",
                                                 "d_null_low", "d_null_high", "d_beyond_null", "p_models",
                                                 "p_holm"]]


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
            rows.append(common.labelled_row(cid, r["mean"], "not comparable", NOT_COMPARABLE[s], unit=UNITS[s]))
        else:
            rows.append(common.claim_row(cid, replicates.estimate(r), per_model[(metric, dataset)], unit=UNITS[s],
                                         reason="level over all analysed timesteps (image mean over t, "
                                                "then over images, then over models)"))
    return claims.known(rows)


@common.cached_chapter()
def run(cfg) -> ChapterResult:
    """Chapter 7: Table 4 and its per-timestep view, from every replicate model on held-out images."""
    models, sweeps = common.models_and_sweeps(cfg)
    ivs = [causal.intervention_sweep(cfg, {name: models[name][r] for name in models})
           for r in range(cfg.run.replicates)]
    per = per_image_metrics(sweeps, ivs)
    img = image_level(per)
    t4 = table4(img, cfg.analysis.alpha)
    res = ChapterResult(CHAPTER)
    res.tables["table4"] = t4
    res.tables["per_timestep"] = per_timestep(per, cfg.analysis.alpha)
    res.tables["claims"] = pd.DataFrame(table4_claims(img))
    res.data["effects"] = t4                   # Figure 7.1: d, its CI, the same-data null, the paper's d
    first = t4.iloc[0]
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n_models=int(first.n_models),
                      n=int(first.n_images), n_ii=int(t4.set_index("metric").n_images["Intervention Impact"]),
                      n_t=int(first.n_t), alpha=cfg.analysis.alpha,
                      timesteps=", ".join(map(str, cfg.analysis.timesteps)),
                      n_beyond=int(t4.d_beyond_null.sum()), n_holm=int((t4.p_holm < cfg.analysis.alpha).sum()),
                      n_metrics=len(t4), mde_models=first.mde_models, mde_images=first.mde_images,
                      power=f"{POWER:.0%}")
    for r in t4.itertuples():
        s = METRICS[r.metric][0]
        res.values.update({f"d_{s}": r.d, f"d_{s}_lo": r.d_ci_low, f"d_{s}_hi": r.d_ci_high,
                           f"null_{s}_lo": r.d_null_low, f"null_{s}_hi": r.d_null_high, f"p_{s}": r.p_holm})
    return res

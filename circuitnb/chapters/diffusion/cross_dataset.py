"""Chapter 7 (§3.3, §4.7, Table 4, Figs. 2 and 8a): four metrics compared across datasets, the model as the unit.

    res = cross_dataset.run(cfg)          # res.tables["table4"], ["per_timestep"], ["claims"]

The paper pools images x timesteps as independent observations (n = 400 per
dataset for 100 images at 4 timesteps); values of one image at different t are
not independent, and one model per dataset confounds the dataset with the
training seed. Here each metric is first averaged over the analysed timesteps
*per image* (the image is the unit within a model), then over images per model;
the dataset contrast takes the model as the unit and is set beside the
same-data null (:func:`circuitnb.analysis.replicates.dataset_contrast`). Holm
over the four metrics (one family, as the paper's Table 4). Table 4 and its claim rows are the library's
(:mod:`circuitnb.analysis.cross_dataset`); the per-timestep view is this chapter's.
"""
from __future__ import annotations

import pandas as pd

from circuitnb.analysis import claim_sources, replicates
from circuitnb.analysis.cross_dataset import METRICS, POWER, image_level, per_image_metrics, table4
from circuitnb.analysis.interventions import intervention_sweep
from circuitnb.chapters import common
from circuitnb.chapters.report import ChapterResult
from circuitnb.measures import stats

CHAPTER = "07_cross_dataset"


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


@common.cached_chapter()
def run(cfg) -> ChapterResult:
    """Chapter 7: Table 4 and its per-timestep view, from every replicate model on held-out images."""
    if (res := common.on_your_model(cfg, CHAPTER)) is not None:
        return res                                  # cannot run on a model of your own: its line says why
    models, sweeps = common.models_and_sweeps(cfg)
    ivs = [intervention_sweep(cfg, {name: models[name][r] for name in models})
           for r in range(cfg.run.replicates)]
    per = per_image_metrics(sweeps, ivs)
    img = image_level(per)
    t4 = table4(img, cfg.analysis.alpha)
    res = ChapterResult(CHAPTER)
    res.tables["table4"] = t4
    res.tables["per_timestep"] = per_timestep(per, cfg.analysis.alpha)
    res.tables["claims"] = claim_sources.claims_table(cfg, "cross_dataset", models, sweeps)
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

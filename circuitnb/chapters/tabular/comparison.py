"""Chapter 32 (Part III): tabular against image VAEs, and the tabular-VAE abstract's claims with verdicts.

    res = comparison.run(cfg)
    res.tables["architectures_wide"]   # every measure per table and architecture: "mean [95% CI]" over seeds
    res.tables["contrast"]             # tabular / image per architecture (and pooled), with the same-data null
    res.tables["correlations"]         # CES-MSE and specificity-AUC over models, under each reading
    res.tables["holm"]                 # the reference differences (Holm-Sidak) and whether CES detects each
    res.tables["scorecard"]            # claims_tabular.csv beside ours, verdicts (also CSV)

The comparisons and readings are :mod:`circuitnb.analysis.tabular.claims`'s; the statistics
:mod:`circuitnb.analysis.tabular.compare`'s; each model's measures :mod:`circuitnb.analysis.tabular.common`'s
(cached, shared with chapter 31). The model is the unit: every interval is over seeds or over models.
"""
from __future__ import annotations

import numpy as np

from circuitnb.analysis.replicates import across_replicates
from circuitnb.analysis.tabular import claims as tab_claims
from circuitnb.analysis.tabular import common as tab_common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.measures import verdicts
from circuitnb.viz.vae.figures import wide_table

CHAPTER = "32_tabular_comparison"
SHOWN = ("ces", "specificity", "modularity", "fgd", "mse", "auc")      # the page's wide table; all in the CSV


def run(cfg: Config) -> ChapterResult:
    """Chapter 32: measures per architecture, the tabular-vs-image contrast, the correlations, the Holm-Sidak
    count and the scorecard."""
    t = cfg.tabular
    per, img = tab_common.measures_frame(cfg), tab_common.image_frame(cfg)
    out = tab_claims.comparison(cfg, per, img)
    card = tab_claims.scorecard(out["rows"], cfg.analysis.alpha)
    arch = across_replicates(per, by=["kind", "dataset", "measure"]).drop(columns=["n_images", "eq_low", "eq_high"])
    res = ChapterResult(CHAPTER)
    res.tables["per_model"] = per
    res.tables["per_model_wide"] = out["wide"]
    res.tables["architectures"] = arch
    res.tables["architectures_wide"] = wide_table(arch[arch.measure.isin(SHOWN)], ["dataset", "kind"],
                                                  order=dict(dataset=t.datasets, kind=t.kinds, measure=SHOWN))
    res.tables["image"] = across_replicates(img, by=["kind", "dataset", "measure"]).drop(
        columns=["n_images", "eq_low", "eq_high"])
    res.tables["contrast"] = out["contrast"]
    res.tables["contrast_tables"] = out["contrast_tables"]
    res.tables["correlations"] = tab_claims.readings_verdicts(out["correlations"], cfg.analysis.alpha)
    res.tables["holm"] = out["holm"]
    res.tables["holm_ces"] = out["holm_ces"]
    res.tables["holm_readings"] = out["holm_readings"]
    res.tables["scorecard"] = card
    counts = card.verdict.value_counts()
    con = out["contrast"]
    mod = con[(con.measure == "modularity") & (con.kind == "all (pooled)")]
    ces_b = con[(con.measure == "ces") & (con.kind == "beta_vae")]
    c1, c2 = (out["corr"][(cid, "pooled over models")] for cid in ("tab_ces_mse_r", "tab_spec_auc_r"))
    flips = res.tables["correlations"].groupby("id").verdict.nunique()
    res.values = dict(profile=cfg.profile, seed=cfg.run.seed, n_models=t.replicates, n_image=cfg.run.replicates,
                      n_tab_models=int(len(out["wide"])), n_kinds_shared=len(tab_common.image_kinds(cfg)),
                      kinds_shared=", ".join(tab_common.image_kinds(cfg)), n_claims=len(card),
                      **{f"n_{v.replace(' ', '_')}": int(counts.get(v, 0)) for v in verdicts.VERDICTS},
                      mod_ratio=float(mod.effect.iloc[0]) if len(mod) else np.nan,
                      mod_low=float(mod.ci_low.iloc[0]) if len(mod) else np.nan,
                      mod_high=float(mod.ci_high.iloc[0]) if len(mod) else np.nan,
                      mod_beyond=bool(mod.beyond_null.iloc[0]) if len(mod) else False,
                      ces_beta_ratio=float(ces_b.effect.iloc[0]) if len(ces_b) else np.nan,
                      ces_mse_r=c1["r"], ces_mse_low=c1["ci_low"], ces_mse_high=c1["ci_high"], ces_mse_p=c1["p"],
                      spec_auc_r=c2["r"], spec_auc_low=c2["ci_low"], spec_auc_high=c2["ci_high"], spec_auc_p=c2["p"],
                      n_reference=out["found"]["n_reference"], n_detected=out["found"]["n_detected"],
                      n_ces_sig=out["found"]["n_test"], n_pairs=out["found"]["n_pairs"],
                      reference=tab_claims.REFERENCE, n_flip=int((flips > 1).sum()), n_corr=int(len(flips)))
    return res

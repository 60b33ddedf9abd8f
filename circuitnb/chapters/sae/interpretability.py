"""Chapter 42 (Part IV): global representation quality (MIG, DCI of the latents) against local interpretability
(monosemanticity of the hidden units) over the schedule, and the abstract's claims with verdicts.

    res = interpretability.run(cfg)
    res.tables["over_schedule"]     # per method, set and snapshot: mean [95% CI] over models of each measure
    res.tables["change"]            # last snapshot minus first, per model pair of snapshots: t-interval over models
    res.tables["final_wide"]        # every measure at the last snapshot per method and set
    res.tables["units"]             # every unit of replicate 0 at the last snapshot: best factor, eta^2
    res.tables["readings"]          # each dead-rate claim under every threshold and moment: which verdicts flip
    res.tables["scorecard"]         # claims_sae.csv beside ours, verdicts (also CSV)

The measures are :func:`circuitnb.measures.sae.schedule_measures`' (MIG and DCI of the posterior means;
monosemanticity = mean over the units that vary of the largest eta^2 of one factor), cached per model by
:func:`circuitnb.analysis.sae.common.analysis` (shared with chapter 41). The claims and readings are
:mod:`circuitnb.analysis.sae.claims`'s. The model is the unit: every interval is over the replicate models.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis.replicates import across_replicates
from circuitnb.analysis.sae import claims as sae_claims
from circuitnb.analysis.sae import common as sae_common
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.measures import verdicts
from circuitnb.viz.vae.figures import wide_table

CHAPTER = "42_sae_interpretability"
MEASURES = ("mig_latent", "dci_d", "dci_c", "dci_i", "mono_max", "mono_margin", "n_varying", "active_per_input")
SHOWN = ("dead@0", "mig_latent", "dci_d", "mono_max", "mono_margin", "nelbo")


def _change(sched: pd.DataFrame) -> pd.DataFrame:
    """Per model: each measure at the last snapshot minus at the first; then mean and t-interval over models."""
    rows = []
    for (k, ds, r), g in sched.groupby(["method", "dataset", "replicate"], sort=False):
        g = g.sort_values("step")
        rows += [dict(method=k, dataset=ds, replicate=r, measure=m, value=float(g[m].iloc[-1] - g[m].iloc[0]))
                 for m in ("mig_latent", "dci_d", "mono_max", "dead@0")]
    return across_replicates(pd.DataFrame(rows), by=["method", "dataset", "measure"]).drop(columns="n_images")


def run(cfg: Config) -> ChapterResult:
    """Chapter 42: the measures over the schedule, their change, each unit's best factor, and the scorecard."""
    s = cfg.sae
    analyses = sae_common.all_analyses(cfg)
    sched, dead, per = sae_common.schedule_frame(cfg), sae_common.dead_frame(cfg), sae_common.model_frame(cfg)
    out = sae_claims.claims(cfg, dead, per, analyses)
    card = sae_claims.scorecard(out["rows"], cfg.analysis.alpha)
    order = dict(dataset=s.datasets, method=s.methods)
    long = sched.melt(id_vars=["method", "dataset", "replicate", "step"], value_vars=list(MEASURES),
                      var_name="measure")
    res = ChapterResult(CHAPTER)
    res.tables["over_schedule"] = across_replicates(long, by=["method", "dataset", "measure", "step"]).drop(
        columns="n_images")
    res.tables["change"] = _change(sched)
    res.tables["change_wide"] = wide_table(res.tables["change"], ["dataset", "method"], order=order)
    final = across_replicates(per, by=["method", "dataset", "measure"]).drop(columns="n_images")
    res.tables["final"] = final
    res.tables["final_wide"] = wide_table(final[final.measure.isin(SHOWN)], ["dataset", "method"],
                                          order=dict(order, measure=SHOWN))
    res.tables["units"] = pd.concat([a[0]["mono"].assign(method=k, dataset=ds)
                                     for (k, ds), a in analyses.items()], ignore_index=True)
    res.tables["readings"] = out["readings"]
    res.tables["scorecard"] = card
    res.data["schedule_long"] = sched
    counts = card.verdict.value_counts()
    ch = res.tables["change"].set_index(["method", "dataset", "measure"])
    flips = out["readings"].groupby("id").verdict.nunique()
    vals = dict(profile=cfg.profile, seed=cfg.run.seed, n_models=s.replicates, n_heldout=s.n_analysis,
                dci_trees=s.dci_trees, n_claims=len(card), schedule_end=int(sae_common.schedule_end(cfg)),
                **{f"n_{v.replace(' ', '_')}": int(counts.get(v, 0)) for v in verdicts.VERDICTS},
                n_flip=int((flips > 1).sum()), n_dead_claims=int(len(flips)),
                n_readings=int(out["readings"].groupby(["threshold", "when"]).ngroups))
    for (k, ds, m), r in ch.iterrows():
        vals[f"d_{m.replace('@', '')}_{k}_{ds}"] = float(r["mean"])
    units = res.tables["units"]
    vals["mono_units_mean"] = float(np.nanmean(units.score)) if units.score.notna().any() else float("nan")
    res.values = vals
    return res

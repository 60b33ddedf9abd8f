"""Chapter 41 (Part IV): dead units over the sparsity schedule, under every threshold, after the extension
(revival), Shapes3D against dSprites, and Top-k with AuxK against plain Top-k; an explorer of every unit's activity.

    res = dead_neurons.run(cfg)
    res.tables["schedule_long"]     # one row per model and snapshot: k, dead@tau, MIG, DCI, monosemanticity
    res.tables["thresholds"]        # dead rate at the last snapshot per threshold: mean [95% CI] over models
    res.tables["revival"]           # units dead at the schedule's end that fire again, per method and set
    res.tables["ratios"]            # Shapes3D / dSprites per method, CI over replicate pairs, same-data null
    res.tables["auxk"]              # AuxK against Top-k at the same k: the outcome for the "intrinsic" reading
    display(res.data["explorer"])   # every unit's firing rate at every snapshot, offline

Every model's measures come from :func:`circuitnb.analysis.sae.common.analysis` (cached, shared with chapter 42);
the statistics from :mod:`circuitnb.analysis.sae.dead` and :mod:`circuitnb.analysis.sae.claims`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis.replicates import across_replicates
from circuitnb.analysis.sae import claims as sae_claims
from circuitnb.analysis.sae import common as sae_common
from circuitnb.analysis.sae.dead import RECON_TOL, SAME_DEAD
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.viz.sae.explorer import SaeExplorer
from circuitnb.viz.vae.figures import wide_table

CHAPTER = "41_sae_dead_neurons"


def explorer(models: dict, analyses: dict) -> SaeExplorer:
    """Replicate 0 of every (method, set): firing rates at every snapshot, best factor per unit at the end."""
    data = dict(kind="sae", models=[], steps=[], k={}, firing={}, best={}, eta2={}, end=0)
    for (k, ds), ms in models.items():
        m, a, key = ms[0], analyses[(k, ds)][0], f"{k}|{ds}"
        data["models"].append(key)
        data["steps"], data["end"] = [int(s) for s in a["steps"]], int(a["schedule_end"])
        data["k"][key] = [int(st["k"]) for st in m.meta["snapshot_state"]]
        data["firing"][key] = np.round(a["firing"], 4).tolist()
        data["best"][key] = [None if b is None else str(b) for b in a["mono"].best_factor]
        data["eta2"][key] = [None if not np.isfinite(v) else round(float(v), 3) for v in a["mono"].eta2_best]
    return SaeExplorer(data)


def _revival_summary(rev: pd.DataFrame) -> pd.DataFrame:
    g = rev.groupby(["method", "dataset", "threshold"], sort=False)
    return g.agg(n_models=("replicate", "nunique"), dead_end=("n_dead_end", "sum"), dead_last=("n_dead_last", "sum"),
                 revived=("n_revived", "sum"), ever_revived=("n_ever_revived", "sum"), died=("n_died", "sum"),
                 units=("n_units", "sum")).reset_index().assign(
        revived_share=lambda f: f.revived / f.dead_end.replace(0, np.nan))


def run(cfg: Config) -> ChapterResult:
    """Chapter 41: the dead-unit curves, thresholds, revival, the set ratio and AuxK, and the explorer."""
    s = cfg.sae
    models = sae_common.models(cfg)
    analyses = sae_common.all_analyses(cfg)
    sched, dead, per = sae_common.schedule_frame(cfg), sae_common.dead_frame(cfg), sae_common.model_frame(cfg)
    out = sae_claims.claims(cfg, dead, per, analyses)
    order = dict(dataset=s.datasets, method=s.methods)
    final = dead[dead.when == "final"].rename(columns={"dead_rate": "value"})
    thr = across_replicates(final, by=["method", "dataset", "threshold"]).drop(columns=["n_images"])
    res = ChapterResult(CHAPTER)
    res.tables["schedule_long"] = sched
    res.tables["dead"] = dead
    res.tables["thresholds"] = thr
    res.tables["thresholds_wide"] = wide_table(thr.assign(measure=[f"tau = {t:g}" for t in thr.threshold]),
                                               ["dataset", "method"], order=order)
    rev = out["revival"]
    res.tables["revival_per_model"] = rev
    res.tables["revival"] = _revival_summary(rev)
    res.tables["ratios"] = out["ratios"]
    res.tables["ratio_readings"] = out["ratio_readings"]
    res.tables["auxk"] = out["auxk"]
    res.data["explorer"] = explorer(models, analyses)
    tau = sae_claims.threshold(cfg)               # the config's reading of 'dead' (READINGS["dead_threshold"])
    prim = final[np.isclose(final.threshold, tau)]
    mean = prim.groupby(["method", "dataset"]).value.mean()
    spread = final.groupby(["method", "dataset", "replicate"]).value.agg(lambda v: v.max() - v.min())
    r0 = rev[np.isclose(rev.threshold, tau)]
    rat = out["ratios"].set_index("method") if len(out["ratios"]) else pd.DataFrame()
    auxk = out["auxk"].set_index("dataset") if len(out["auxk"]) else pd.DataFrame()
    vals = dict(profile=cfg.profile, seed=cfg.run.seed, n_models=s.replicates, n_heldout=s.n_analysis,
                primary_threshold=tau, thresholds=", ".join(f"{t:g}" for t in sorted(set(s.dead_fractions))),
                schedule_end=int(sae_common.schedule_end(cfg)), steps=s.steps,
                extension_epochs=sae_common.extension_epochs(cfg),
                threshold_spread_max=100 * float(spread.max()), dead_end_total=int(r0.n_dead_end.sum()),
                revived_total=int(r0.n_revived.sum()), ever_revived_total=int(r0.n_ever_revived.sum()),
                n_models_total=int(len(r0)), kb_explorer=res.data["explorer"].nbytes / 1024,
                recon_tol=100 * RECON_TOL, same_dead=100 * SAME_DEAD)
    for (k, ds), v in mean.items():
        vals[f"dead_{k}_{ds}"] = 100 * float(v)
    for k, r in rat.iterrows():
        vals |= {f"ratio_{k}": r.ratio, f"ratio_{k}_low": r.ci_low, f"ratio_{k}_high": r.ci_high,
                 f"ratio_{k}_null_low": r.null_low, f"ratio_{k}_null_high": r.null_high,
                 f"ratio_{k}_beyond": bool(r.beyond_null)}
    for ds, r in auxk.iterrows():
        vals |= {f"auxk_saved_{ds}": 100 * r.dead_saved, f"auxk_saved_{ds}_low": 100 * r.saved_low,
                 f"auxk_saved_{ds}_high": 100 * r.saved_high, f"auxk_recon_{ds}": 100 * r.recon_change,
                 f"auxk_outcome_{ds}": r.outcome}
    res.values = vals
    return res

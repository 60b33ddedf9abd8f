"""Chapter 51 (Part V): anomaly detection measured as the field does (slice and pixel ROC AUC, PR AUC, Dice at the
best threshold) for the Bayesian attention VAE and its two baselines, the calibration of their uncertainty, and
"uncertainty helps" as measured contrasts.

    res = detection.run(cfg)
    res.tables["baselines_wide"]    # primary reading: every measure per kind, mean [95% CI] over models
    res.tables["readings"]          # every kind x pixel reading x slice reading x measure, CI over models
    res.tables["contrasts"]         # paired differences between models / readings: helps, hurts, no difference
    res.tables["calibration"]       # Spearman rho, ENCE, error / variance per kind and uncertainty, CI over models
    res.tables["reliability"]       # every model's reliability table (the diagram's points)

Every model's measures come from :func:`circuitnb.analysis.mri.common.analysis` (cached, shared with chapter 52);
the contrasts from :func:`circuitnb.analysis.mri.claims.contrasts`. The model is the unit: every interval is a
t-interval over the ``mri.replicates`` models.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis.mri import claims as mri_claims
from circuitnb.analysis.mri import common as mri_common
from circuitnb.analysis.replicates import across_replicates
from circuitnb.chapters.report import ChapterResult
from circuitnb.core.config import Config
from circuitnb.modeling.mri import mri_split
from circuitnb.viz.vae.figures import wide_table

CHAPTER = "51_mri_detection"
MEASURES = ("slice_roc_auc", "slice_pr_auc", "pixel_roc_auc", "pixel_pr_auc", "dice")
CALIBRATION = ("spearman", "ence", "scale_ratio")


def _primary_rows(det: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([mri_common.primary(det, m) for m in MEASURES], ignore_index=True)


def run(cfg: Config) -> ChapterResult:
    """Chapter 51: the baselines under every reading, the contrasts, and calibration."""
    mr, alpha = cfg.mri, cfg.analysis.alpha
    analyses = mri_common.all_analyses(cfg)
    det = mri_common.detection_frame(cfg)
    cal = mri_common.calibration_frame(cfg)
    held = mri_split(cfg).heldout
    order = dict(kind=mr.kinds, measure=MEASURES)
    prim = across_replicates(_primary_rows(det), by=["kind", "measure"], level=1 - alpha).drop(columns="n_images")
    readings = across_replicates(det, by=["kind", "pixel_reading", "slice_reading", "measure"],
                                 level=1 - alpha).drop(columns="n_images")
    cal_long = cal.melt(id_vars=["dataset", "kind", "replicate", "uncertainty"], value_vars=list(CALIBRATION),
                        var_name="measure").dropna(subset=["value"])
    calib = across_replicates(cal_long, by=["kind", "uncertainty", "measure"], level=1 - alpha).drop(
        columns="n_images")
    rel = pd.concat([a["reliability"].assign(kind=k, replicate=r) for k, items in analyses.items()
                     for r, a in enumerate(items)], ignore_index=True)
    res = ChapterResult(CHAPTER)
    res.tables["baselines"] = prim
    res.tables["baselines_wide"] = wide_table(prim, ["kind"], order=order)
    res.tables["readings"] = readings
    res.tables["per_model"] = det
    res.tables["contrasts"] = mri_claims.contrasts(det, alpha)
    res.tables["calibration"] = calib
    res.tables["calibration_wide"] = wide_table(calib[calib.uncertainty == "total"], ["kind"],
                                                order=dict(kind=mr.kinds, measure=CALIBRATION))
    res.tables["calibration_per_model"] = cal
    res.tables["reliability"] = rel
    res.data["roc"] = {k: (items[0]["slice_scores"], items[0]["lesion"]) for k, items in analyses.items()}
    n_les, n = int(held.lesion.sum()), len(held)
    vals = dict(profile=cfg.profile, seed=cfg.run.seed, n_models=mr.replicates, n_heldout=n, n_lesion=n_les,
                n_healthy=n - n_les, chance_pr=n_les / max(n, 1), mc_passes=mr.mc_passes,
                bins=mr.calibration_bins, pixel_reading=mri_common.PIXEL_READING,
                slice_reading=mri_common.SLICE_READING, source_line=mri_common.source_line(cfg),
                n_pixels=int(cal.n_pixels.iloc[0]) if len(cal) else 0)
    for r in prim.itertuples():
        vals |= {f"{r.measure}_{r.kind}": r.mean, f"{r.measure}_{r.kind}_low": r.ci_low,
                 f"{r.measure}_{r.kind}_high": r.ci_high}
    for r in calib[calib.uncertainty == "total"].itertuples():
        vals |= {f"{r.measure}_{r.kind}": r.mean, f"{r.measure}_{r.kind}_low": r.ci_low,
                 f"{r.measure}_{r.kind}_high": r.ci_high}
    con = res.tables["contrasts"]
    for r in con[con.measure == "slice_roc_auc"].itertuples():
        key = r.contrast.split()[0].lower()
        vals |= {f"contrast_{key}": r.difference, f"contrast_{key}_low": r.ci_low,
                 f"contrast_{key}_high": r.ci_high, f"contrast_{key}_outcome": r.outcome}
    vals["n_helps"] = int((con.outcome == "helps").sum()) if len(con) else 0
    vals["n_hurts"] = int((con.outcome == "hurts").sum()) if len(con) else 0
    vals["n_contrasts"] = len(con)
    vals["rho_positive"] = int((cal[cal.uncertainty == "total"].spearman > 0).sum())
    vals["rho_models"] = int(np.isfinite(cal[cal.uncertainty == "total"].spearman).sum())
    res.values = vals
    return res

"""What Part V's chapters share: the replicate MRI VAEs and each model's detection and calibration, cached.

    models = mri_common.models(cfg)                     # {kind: [TrainedMri per replicate]}
    a = mri_common.analysis(cfg, models["attention"][0])
    a["detection"]                                      # one row per reading: slice / pixel ROC AUC, PR AUC, Dice
    a["calibration"]                                    # one row per uncertainty: Spearman rho, ENCE, n pixels
    a["reliability"]                                    # the reliability table of each uncertainty
    mri_common.detection_frame(cfg)                     # kind, replicate, reading, measure, value

Everything is measured on the held-out subjects' slices (:func:`circuitnb.modeling.mri.mri_split`: no model saw
them), with the predictive distribution of :func:`circuitnb.modeling.mri.mc_predict` (``mri.mc_passes`` MC-dropout
passes seeded with ``seed``; one deterministic pass for ``non_bayesian``), and the readings of
:mod:`circuitnb.measures.mri`:

* detection: every pixel reading (``error``, ``standardized``) x slice reading (``mean``, ``q99``); slice level:
  ROC AUC and PR AUC of the slice scores against ``lesion``; pixel level: ROC AUC, PR AUC and Dice at the best
  threshold over the brain pixels of every held-out slice against the lesion masks (any label).
  The abstract's model scores with its uncertainty: the primary reading is :data:`PIXEL_READING` ("standardized",
  error over predictive variance) averaged over the slice's brain (:data:`SLICE_READING`); the chapters show all.
* calibration: the brain pixels of held-out *healthy* slices (where an error is the model's, not a lesion's):
  squared error against each predictive variance (``total`` = aleatoric + epistemic, and each alone where it
  varies), averaged over the four channels; Spearman's rho, ENCE and the reliability table
  (``mri.calibration_bins`` equal-count bins).
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from circuitnb.analysis.replicates import each_of
from circuitnb.core import cache, results
from circuitnb.core.config import Config
from circuitnb.measures.mri import (
    PIXEL_READINGS,
    SLICE_READINGS,
    best_dice,
    brain_mask,
    ence,
    pixel_scores,
    pr_auc,
    reliability_table,
    roc_auc,
    slice_scores,
    uncertainty_spearman,
)
from circuitnb.modeling.checkpoints import CacheEntry
from circuitnb.modeling.mri import TrainedMri, load_or_train_mri, mc_predict, model_key, mri_split
from circuitnb.modeling.store import heldout_convergence

READS = ("seed", "mri.mc_passes", "mri.calibration_bins")     # the config fields an analysis reads
PIXEL_READING, SLICE_READING = "standardized", "mean"         # the primary reading (module docstring)
UNCERTAINTIES = ("total", "aleatoric", "epistemic")
N_EXPLORE = 8                                                 # held-out slices in the explorer (lesion first)


@functools.lru_cache(maxsize=2)
def models(cfg: Config) -> dict[str, list[TrainedMri]]:
    """Every kind with its ``mri.replicates`` models, trained once (cache) and loaded once per process; models
    another process is training right now are taken last (two notebooks side by side train different ones)."""
    m = cfg.mri
    jobs = [(k, r) for k in m.kinds for r in range(m.replicates)]
    busy = [j for j in jobs if cache.is_locked(CacheEntry(cfg.cache_path, model_key(cfg, *j)).dir)]
    done = {j: load_or_train_mri(cfg, *j, progress=True) for j in [j for j in jobs if j not in busy] + busy}
    return {k: [done[(k, r)] for r in range(m.replicates)] for k in m.kinds}


def explore_rows(lesion: np.ndarray, masks: np.ndarray, n: int = N_EXPLORE) -> np.ndarray:
    """Indices of the explorer's slices: the held-out lesion slices with the most lesion pixels (up to n - n // 4),
    then healthy ones, in that order. ``explore_rows(lesion [N], masks [N, H, W])``."""
    size = (np.asarray(masks) > 0).reshape(len(masks), -1).sum(1)
    les = [i for i in np.argsort(-size, kind="stable") if lesion[i]][: n - n // 4]
    healthy = [i for i in range(len(lesion)) if not lesion[i]][: n - len(les)]
    return np.array(les + healthy, int)


def _safe(fn, *args) -> float:
    try:
        return float(fn(*args))
    except ValueError:                      # one class only (no held-out lesion slice): undefined, not an error
        return float("nan")


def detection_rows(x: np.ndarray, pred: dict, masks: np.ndarray, lesion: np.ndarray) -> pd.DataFrame:
    """One row per (pixel reading, slice reading): slice_roc_auc, slice_pr_auc, and (slice reading "-") the
    pixel-level pixel_roc_auc, pixel_pr_auc, dice, dice_threshold, over brain pixels. NaN where undefined."""
    brain, truth = brain_mask(x), np.asarray(masks) > 0
    rows = []
    for pr in PIXEL_READINGS:
        px = pixel_scores(x, pred, pr)
        for sr in SLICE_READINGS:
            sl = slice_scores(px, brain, sr)
            rows.append(dict(pixel_reading=pr, slice_reading=sr, slice_roc_auc=_safe(roc_auc, sl, lesion),
                             slice_pr_auc=_safe(pr_auc, sl, lesion)))
        d, thr = best_dice(px[brain], truth[brain]) if truth[brain].any() else (np.nan, np.nan)
        rows.append(dict(pixel_reading=pr, slice_reading="-", pixel_roc_auc=_safe(roc_auc, px[brain], truth[brain]),
                         pixel_pr_auc=_safe(pr_auc, px[brain], truth[brain]), dice=d, dice_threshold=thr))
    return pd.DataFrame(rows)


def calibration(x: np.ndarray, pred: dict, healthy: np.ndarray, bins: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, reliability) on the brain pixels of the healthy slices: per uncertainty, Spearman rho, ENCE,
    mean squared error / mean variance; an uncertainty that is one value everywhere (a homoscedastic decoder's,
    or no epistemic part) gets rho NaN and no ENCE."""
    err = pixel_scores(x, pred, "error")
    mask = brain_mask(x) & np.asarray(healthy, bool)[:, None, None]
    unc = {"aleatoric": pred["aleatoric"].mean(1), "epistemic": pred["epistemic"].mean(1)}
    unc["total"] = unc["aleatoric"] + unc["epistemic"]
    summary, tables = [], []
    for name in UNCERTAINTIES:
        u = unc[name]
        if not mask.any():
            continue
        table = reliability_table(u, err, bins, mask).assign(uncertainty=name)
        varies = np.ptp(u[mask]) > 0
        rho, p = uncertainty_spearman(u, err, mask)
        summary.append(dict(uncertainty=name, spearman=rho, p_value=p, ence=ence(table) if varies else np.nan,
                            scale_ratio=float(err[mask].mean() / u[mask].mean()) if u[mask].mean() > 0 else np.nan,
                            n_pixels=int(mask.sum()), varies=bool(varies)))
        tables.append(table)
    return pd.DataFrame(summary), pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _compute(cfg: Config, m: TrainedMri) -> dict:
    held = mri_split(cfg).heldout
    x = held.images
    pred = mc_predict(m.model, x, cfg.mri.mc_passes, seed=cfg.run.seed)
    summ, rel = calibration(x, pred, ~held.lesion, cfg.mri.calibration_bins)
    brain = brain_mask(x)
    rows = explore_rows(held.lesion, held.masks)
    px = pixel_scores(x, pred, PIXEL_READING)
    return dict(detection=detection_rows(x, pred, held.masks, held.lesion), calibration=summ, reliability=rel,
                slice_scores=slice_scores(px, brain, SLICE_READING), lesion=held.lesion.copy(),
                explore=dict(rows=rows, mean=pred["mean"][rows], error=pixel_scores(x[rows], {
                    k: v[rows] for k, v in pred.items()}, "error"),
                    uncertainty=(pred["aleatoric"][rows] + pred["epistemic"][rows]).mean(1)),
                nelbo=float(np.mean(m.meta["heldout_nelbo"][-1])), converged=heldout_convergence(
                    m.meta, cfg.analysis.converged_tol)["status"])


def analysis(cfg: Config, m: TrainedMri, wait: bool = True) -> dict:
    """One model's detection, calibration and explorer slices (see the module docstring), from the results cache."""
    return results.cached(cfg, "mri_analysis", m, lambda: _compute(cfg, m), reads=READS,
                          data=mri_split(cfg).heldout.images, wait=wait)


def all_analyses(cfg: Config) -> dict[str, list[dict]]:
    return each_of(models(cfg), lambda key, m, wait=True: analysis(cfg, m, wait))


def source(cfg: Config) -> str:
    """The data's name in every frame's ``dataset`` column: "phantom" (the stand-in) or "brats2020"."""
    return "brats2020" if cfg.mri.root else "phantom"


def source_line(cfg: Config) -> str:
    """What every Part V page says it read: the phantom, named a stand-in, or the BraTS folder."""
    if not cfg.mri.root:
        return "the procedural phantom, a stand-in for BraTS2020 (no BraTS folder given: mri.root is empty)"
    return f"BraTS2020 read from {cfg.mri.root}"


def detection_frame(cfg: Config) -> pd.DataFrame:
    """One row per model, reading and measure: dataset, kind, replicate, pixel_reading, slice_reading, measure,
    value."""
    rows = []
    for k, items in all_analyses(cfg).items():
        for r, a in enumerate(items):
            long = a["detection"].melt(id_vars=["pixel_reading", "slice_reading"], var_name="measure").dropna(
                subset=["value"])
            rows.append(long[long.measure != "dice_threshold"].assign(dataset=source(cfg), kind=k, replicate=r))
    return pd.concat(rows, ignore_index=True).astype({"value": float})


def calibration_frame(cfg: Config) -> pd.DataFrame:
    """One row per model and uncertainty: kind, replicate and :func:`calibration`'s summary columns."""
    return pd.concat([a["calibration"].assign(dataset=source(cfg), kind=k, replicate=r)
                      for k, items in all_analyses(cfg).items() for r, a in enumerate(items)], ignore_index=True)


def primary(frame: pd.DataFrame, measure: str, pixel: str = PIXEL_READING, slice_: str = SLICE_READING):
    """Rows of :func:`detection_frame` for one measure under one reading (pixel measures: slice reading "-")."""
    s = "-" if measure.startswith(("pixel_", "dice")) else slice_
    return frame[(frame.measure == measure) & (frame.pixel_reading == pixel) & (frame.slice_reading == s)]

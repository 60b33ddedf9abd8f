"""Part V's anomaly-detection measures: pixel and slice scores, ROC AUC, PR AUC, best Dice.

    px = pixel_scores(x, pred)                              # [N, H, W] squared error (reading "error")
    px_w = pixel_scores(x, pred, reading="standardized")    # error / predictive variance
    sl = slice_scores(px, brain_mask(x))                    # [N] mean over brain pixels
    roc_auc(sl, lesion), pr_auc(sl, lesion)                 # slice level; pixel level on px[brain], masks[brain] > 0
    best_dice(px[brain], masks[brain] > 0)                  # (Dice, threshold): an optimistic upper bound

Readings (one function each; the default first):

* pixel score ``error``: the squared reconstruction error averaged over the 4 channels,
  mean_c (x - mean)^2 (the field's residual score, e.g. Baur et al. 2021);
* pixel score ``standardized``: the squared error divided by the predictive variance, mean_c (x - mean)^2 /
  (aleatoric + epistemic) (the Mahalanobis term of the Gaussian predictive NLL): an error the model expected,
  where it is uncertain, counts less, one it was sure of counts more. For a homoscedastic non-Bayesian model the
  variance is one constant, so it ranks pixels exactly as ``error`` does;
* slice score ``mean``: the mean pixel score over the slice's brain pixels; ``q99``: their 99th percentile
  (small lesions are not averaged away).
* ROC AUC: sklearn's ``roc_auc_score`` (trapezoidal, ties at half); PR AUC: sklearn's
  ``average_precision_score`` (the step-wise sum of precision over recall increments, not the trapezoid,
  which overestimates). Chance is 0.5 for ROC AUC and the positive rate for PR AUC.
* Dice at the best threshold: 2 TP / (2 TP + FP + FN) pooled over every pixel given, at the threshold that
  maximises it *on the evaluation set itself* -- an optimistic upper bound, as the field usually reports it
  (Baur et al. 2021's "best possible Dice"), not what a threshold chosen beforehand would give. Exact: every
  distinct score is tried.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

PIXEL_READINGS = ("error", "standardized")
SLICE_READINGS = ("mean", "q99")
VAR_FLOOR = 1e-6          # a predictive variance never divides by less (a pixel the model is certain of)


def brain_mask(images: np.ndarray) -> np.ndarray:
    """``brain_mask(x)`` -> bool [N, H, W]: pixels where any channel is above the background value -1."""
    return (np.asarray(images) > -1 + 1e-6).any(axis=1)


def pixel_scores(images: np.ndarray, pred: dict, reading: str = "error") -> np.ndarray:
    """``pixel_scores(x, pred, "standardized")`` -> float64 [N, H, W]; ``x`` [N, C, H, W], ``pred`` from
    :func:`circuitnb.modeling.mri.mc_predict` ("mean", "aleatoric", "epistemic", each [N, C, H, W])."""
    if reading not in PIXEL_READINGS:
        raise ValueError(f"parameter 'reading' = {reading!r}; choose one of {PIXEL_READINGS}")
    err = (np.asarray(images, np.float64) - np.asarray(pred["mean"], np.float64)) ** 2
    if reading == "standardized":
        var = np.asarray(pred["aleatoric"], np.float64) + np.asarray(pred["epistemic"], np.float64)
        err = err / np.maximum(var, VAR_FLOOR)
    return err.mean(axis=1)


def slice_scores(pixel: np.ndarray, mask: np.ndarray | None = None, reading: str = "mean") -> np.ndarray:
    """``slice_scores(px, brain)`` -> float64 [N]: per slice, the mean (or 99th percentile) of its pixel scores
    where ``mask`` is True (every pixel without a mask; a slice with no masked pixel scores 0)."""
    if reading not in SLICE_READINGS:
        raise ValueError(f"parameter 'reading' = {reading!r}; choose one of {SLICE_READINGS}")
    px = np.asarray(pixel, np.float64)
    m = np.ones(px.shape, bool) if mask is None else np.asarray(mask, bool)
    out = np.zeros(len(px))
    for i in range(len(px)):
        v = px[i][m[i]]
        if v.size:
            out[i] = v.mean() if reading == "mean" else np.quantile(v, 0.99)
    return out


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, y = np.asarray(scores, np.float64).ravel(), np.asarray(labels).ravel().astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in size: {s.size} vs {y.size}")
    if y.all() or not y.any():
        raise ValueError("labels need both classes (an anomaly and a normal case) for an AUC")
    return s, y


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """``roc_auc(slice_scores, lesion)``: P(score of an anomaly > score of a normal case), ties counted half;
    1 = perfect, 0.5 = chance."""
    s, y = _check(scores, labels)
    return float(roc_auc_score(y, s))


def pr_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """``pr_auc(scores, labels)``: average precision (sklearn); 1 = perfect, the positive rate = chance."""
    s, y = _check(scores, labels)
    return float(average_precision_score(y, s))


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """``dice(px > thr, masks > 0)``: 2 |A & B| / (|A| + |B|), pooled over every pixel; 1 when both are empty."""
    a, b = np.asarray(pred, bool), np.asarray(truth, bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def best_dice(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """``best_dice(px[brain], masks[brain] > 0)`` -> (Dice, threshold): the largest pooled Dice of
    ``scores >= threshold`` over every distinct score as threshold (the optimistic upper bound of the module
    docstring). Ties move together: a threshold takes every pixel with an equal score."""
    s, y = np.asarray(scores, np.float64).ravel(), np.asarray(truth, bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and truth differ in size: {s.size} vs {y.size}")
    if not y.any():
        raise ValueError("truth has no positive pixel: Dice at the best threshold is undefined")
    order = np.argsort(-s, kind="stable")
    s_sorted, tp = s[order], np.cumsum(y[order])
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]       # the last position of each distinct score
    k = np.nonzero(last)[0]
    d = 2 * tp[k] / (k + 1 + y.sum())
    i = int(np.argmax(d))
    return float(d[i]), float(s_sorted[k[i]])

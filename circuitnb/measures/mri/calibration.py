"""Is Part V's uncertainty calibrated? Do the pixels a model is unsure of err more?

    table = reliability_table(unc, err, n_bins=10)      # DataFrame, one row per equal-count uncertainty bin
    uncertainty_spearman(unc, err)                      # (rho, p): rank correlation of uncertainty and error
    ence(table)                                         # expected normalised calibration error (Levi et al. 2022)

Readings: ``unc`` is a predictive *variance* per pixel (aleatoric, epistemic or their sum from
:func:`circuitnb.modeling.mri.mc_predict`, averaged over channels like the error) and ``err`` the squared error
per pixel (:func:`~circuitnb.measures.mri.anomaly.pixel_scores`, reading "error"), both on the same pixels (e.g.
the brain pixels of held-out healthy slices). Two questions, two answers:

* *ordering* (do uncertain pixels err more): Spearman's rho of uncertainty and error, > 0 when they do; and the
  table's ``mean_error`` rising from bin to bin;
* *scale* (is a predicted variance the error's size): for a Gaussian predictive, a calibrated model has mean
  squared error = mean variance in every bin (``ratio`` = 1; Levi et al.'s reliability diagram in RMSE vs RMV);
  ENCE = mean over bins of |RMV - RMSE| / RMV, 0 when calibrated.
Bins hold equal numbers of pixels (quantiles of the uncertainty), so no bin is nearly empty; pixels of equal
uncertainty stay in one bin.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps


def _flat(unc: np.ndarray, err: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    u, e = np.asarray(unc, np.float64), np.asarray(err, np.float64)
    if u.shape != e.shape:
        raise ValueError(f"uncertainty and error differ in shape: {u.shape} vs {e.shape}")
    if mask is not None:
        m = np.asarray(mask, bool)
        u, e = u[m], e[m]
    return u.ravel(), e.ravel()


def reliability_table(unc: np.ndarray, err: np.ndarray, n_bins: int = 10, mask: np.ndarray | None = None,
                      ) -> pd.DataFrame:
    """``reliability_table(unc, err, 10)`` -> one row per uncertainty bin: ``bin``, ``n``, ``unc_low``,
    ``unc_high``, ``mean_uncertainty`` (mean variance), ``mean_error`` (mean squared error), ``ratio``
    (mean_error / mean_uncertainty; 1 = calibrated in scale). Equal-count bins by rank (ties kept together)."""
    u, e = _flat(unc, err, mask)
    if u.size < n_bins:
        raise ValueError(f"{u.size} pixels cannot fill {n_bins} bins")
    ranks = sps.rankdata(u, method="min") - 1                    # equal values share a rank, hence a bin
    b = np.minimum((ranks * n_bins) // u.size, n_bins - 1).astype(int)
    rows = []
    for k in np.unique(b):
        sel = b == k
        mu, me = u[sel].mean(), e[sel].mean()
        rows.append(dict(bin=int(k), n=int(sel.sum()), unc_low=float(u[sel].min()), unc_high=float(u[sel].max()),
                         mean_uncertainty=float(mu), mean_error=float(me),
                         ratio=float(me / mu) if mu > 0 else np.nan))
    return pd.DataFrame(rows)


def uncertainty_spearman(unc: np.ndarray, err: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """``uncertainty_spearman(unc, err)`` -> (rho, two-sided p) over pixels (scipy's ``spearmanr``). The p-value
    treats pixels as independent, which neighbouring pixels are not: read rho, compare models by their rho."""
    u, e = _flat(unc, err, mask)
    if np.ptp(u) == 0 or np.ptp(e) == 0:                 # one value (a homoscedastic model's variance): undefined
        return float("nan"), float("nan")
    res = sps.spearmanr(u, e)
    return float(res.statistic), float(res.pvalue)


def ence(table: pd.DataFrame) -> float:
    """Expected normalised calibration error of a :func:`reliability_table`: mean_bins |sqrt(mean_uncertainty) -
    sqrt(mean_error)| / sqrt(mean_uncertainty) (Levi et al. 2022, RMV vs RMSE); 0 = calibrated."""
    rmv, rmse = np.sqrt(table["mean_uncertainty"].to_numpy()), np.sqrt(table["mean_error"].to_numpy())
    return float(np.mean(np.abs(rmv - rmse) / rmv))

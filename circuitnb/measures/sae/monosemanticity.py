"""Local interpretability of each hidden unit: how much of its activation variance one factor explains.

    eta2 = eta_squared(codes, factors)              # [H, K]: correlation ratio of unit h on factor k
    per_unit = monosemanticity(codes, factors)      # DataFrame: best factor, eta2 of the best and runner-up, score
    mean_monosemanticity(codes, factors)            # mean score over the units that vary (dead ones excluded)

The abstract's "local feature interpretability" is not defined there. Our reading: a unit is monosemantic when one
ground-truth factor explains its activation. The correlation ratio (Pearson 1905; eta^2 of a one-way ANOVA)

    eta^2(h, k) = sum_v n_v (mean_v - mean)^2 / sum_i (a_i - mean)^2

is the share of unit h's variance over inputs explained by the value v of factor k, any function of it (not only
a linear one): 1 exactly when the unit is a function of the factor, about 1/2 for each of two independent
factors of equal influence. Two readings of the score (``reading``):

* ``"max"`` (default): max_k eta^2(h, k), the share the best single factor explains;
* ``"margin"``: the best factor's eta^2 minus the runner-up's, low also when a unit is well explained by two
  factors at once (polysemantic).

A unit that does not vary on the inputs (a dead one) has no variance to explain: its eta^2 is NaN and it is left
out of the mean. Sample eta^2 is biased upward by about (levels - 1) / (N - 1) for a factor with no effect;
compare scores on the same inputs only.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

READINGS = ("max", "margin")


def _inputs(codes, factors) -> tuple[np.ndarray, np.ndarray]:
    codes, factors = np.asarray(codes, float), np.asarray(factors)
    if codes.ndim == 1:
        codes = codes[:, None]
    if factors.ndim == 1:
        factors = factors[:, None]
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors) or len(codes) < 2:
        raise ValueError(f"need codes [N, H] and factors [N, K] with N >= 2; got {codes.shape}, {factors.shape}")
    return codes, factors


def eta_squared(codes, factors) -> np.ndarray:
    """``eta_squared(codes [N, H], factors int [N, K])`` -> float [H, K] correlation ratios; NaN rows for units
    that are constant over the inputs."""
    codes, factors = _inputs(codes, factors)
    centred = codes - codes.mean(0)
    total = (centred ** 2).sum(0)                                          # [H]
    out = np.empty((codes.shape[1], factors.shape[1]))
    for j, col in enumerate(factors.T):
        _, group = np.unique(col, return_inverse=True)
        n = np.bincount(group).astype(float)                               # [G]
        sums = np.zeros((len(n), codes.shape[1]))
        np.add.at(sums, group, centred)                                    # per-group sums of the centred codes
        out[:, j] = (sums ** 2 / n[:, None]).sum(0)                        # sum_v n_v (mean_v - mean)^2
    with np.errstate(invalid="ignore", divide="ignore"):
        eta2 = out / total[:, None]
    eta2[total <= 1e-12 * max(1.0, float(np.abs(codes).max(initial=0.0)) ** 2) * len(codes)] = np.nan
    return np.clip(eta2, 0.0, 1.0)


def monosemanticity(codes, factors, factor_names=None, reading: str = "max") -> pd.DataFrame:
    """One row per unit: ``unit``, ``best_factor`` (name, or index without ``factor_names``), ``eta2_best``,
    ``eta2_second``, ``score`` (by ``reading``: see the module docstring; NaN for a constant unit)."""
    if reading not in READINGS:
        raise ValueError(f"parameter 'reading' = {reading!r}; choose one of {READINGS}")
    eta2 = eta_squared(codes, factors)
    if eta2.shape[1] < 2:
        raise ValueError("need at least 2 factors (the margin reading compares the best with the runner-up)")
    names = list(factor_names) if factor_names is not None else list(range(eta2.shape[1]))
    alive = ~np.isnan(eta2).any(1)
    top = np.sort(np.where(alive[:, None], eta2, 0.0), axis=1)[:, ::-1]
    best = np.argmax(np.where(alive[:, None], eta2, -1.0), axis=1)
    score = top[:, 0] if reading == "max" else top[:, 0] - top[:, 1]
    return pd.DataFrame({"unit": np.arange(len(eta2)),
                         "best_factor": [names[b] if a else None for b, a in zip(best, alive)],
                         "eta2_best": np.where(alive, top[:, 0], np.nan),
                         "eta2_second": np.where(alive, top[:, 1], np.nan),
                         "score": np.where(alive, score, np.nan)})


def mean_monosemanticity(codes, factors, reading: str = "max") -> float:
    """Mean :func:`monosemanticity` score over the units that vary on the inputs; NaN when none does."""
    score = monosemanticity(codes, factors, reading=reading)["score"].to_numpy()
    return float(np.nanmean(score)) if np.isfinite(score).any() else float("nan")

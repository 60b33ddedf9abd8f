"""The VAE paper's three interpretability measures (arXiv:2505.03530, abstract): causal effect strength,
intervention specificity and circuit modularity, each one function over an effect matrix.

    E = effect_matrix(deltas, sd)                 # [factors, units]: standardized effect of do(factor) on unit
    causal_effect_strength(E), intervention_specificity(E), circuit_modularity(E)

Only the abstract is at hand, and later versions of the paper report CES on other scales, so each
definition below is *our reading*, stated where the paper leaves it open. All three read one matrix
E[f, u] >= 0: how strongly an intervention on factor f moves unit u (a latent or a hidden unit). Where E
comes from is the interventions layer's business (:mod:`circuitnb.interventions.vae.levels`): input
manipulation (change factor f, re-render, re-encode) or activation patching.
"""
from __future__ import annotations

import numpy as np


def _matrix(effects) -> np.ndarray:
    e = np.asarray(effects, float)
    if e.ndim != 2 or e.shape[0] < 1 or e.shape[1] < 2:
        raise ValueError(f"need an effect matrix [factors, units >= 2]; got shape {e.shape}")
    if not np.all(np.isfinite(e)) or (e < 0).any():
        raise ValueError("effects must be finite and non-negative (magnitudes)")
    return e


def effect_matrix(deltas: np.ndarray, sd: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """``effect_matrix(deltas [factors, n, units], sd [units])`` -> E [factors, units] = mean_n |delta| / sd.

    Our reading of an "effect": the mean absolute change of a unit over the n held-out images when one
    factor is changed, in units of that unit's standard deviation over the held-out images, so that
    latents and hidden units of different scales are comparable. A unit with sd < ``eps`` (dead) gets 0.
    """
    d, sd = np.asarray(deltas, float), np.asarray(sd, float)
    if d.ndim != 3 or sd.shape != (d.shape[2],):
        raise ValueError(f"need deltas [factors, n, units] and sd [units]; got {d.shape} and {sd.shape}")
    alive = sd > eps
    return np.where(alive, np.abs(d).mean(1) / np.where(alive, sd, 1.0), 0.0)


def causal_effect_strength(effects) -> float:
    """``causal_effect_strength(E)``: CES, mean over factors of the largest effect on any unit.

    Reading: the abstract's "effect strengths (mean ...)" are a mean over something of an unbounded
    quantity; we take, for each factor, the effect on the unit it moves most (in that unit's standard
    deviations, :func:`effect_matrix`) and average over factors. Unbounded above; 0 when no unit moves.
    """
    return float(_matrix(effects).max(1).mean())


def intervention_specificity(effects) -> float:
    """``intervention_specificity(E)``: how much of an intervention's effect lands on one unit, in [0, 1].

    Reading: for factor f, the share s_f = max_u E[f, u] / sum_u E[f, u] of its total effect taken by
    the unit it moves most, rescaled so that chance (equal effect on all d units, s = 1/d) is 0 and a
    single affected unit is 1: (s_f - 1/d) / (1 - 1/d); mean over factors with any effect (a factor
    that moves nothing has no specificity and is left out; all such: nan).
    """
    e = _matrix(effects)
    total = e.sum(1)
    keep = total > 0
    if not keep.any():
        return float("nan")
    d = e.shape[1]
    share = e[keep].max(1) / total[keep]
    return float(np.mean((share - 1 / d) / (1 - 1 / d)))


def circuit_modularity(effects) -> float:
    """``circuit_modularity(E)``: whether each unit answers to a single factor, in [0, 1].

    Reading (Ridgeway & Zemel 2018's modularity, on causal effects instead of mutual information):
    for unit u with largest effect theta_u = max_f E[f, u] over K factors,
    m_u = 1 - sum_{f != f*} E[f, u]^2 / (theta_u^2 (K - 1)); 1 when one factor alone moves it, 0 when
    all move it equally. Units are weighted by their share of the total effect, so dead or unused units
    do not count; nan when nothing moves. Needs K >= 2 factors.
    """
    e = _matrix(effects)
    k = e.shape[0]
    if k < 2:
        raise ValueError("modularity needs at least 2 factors")
    theta = e.max(0)
    w = e.sum(0)
    if w.sum() <= 0:
        return float("nan")
    used = theta > 0
    rest = (e[:, used] ** 2).sum(0) - theta[used] ** 2
    m = 1 - rest / (theta[used] ** 2 * (k - 1))
    return float(np.sum(m * w[used]) / w[used].sum())

"""Posterior-calibrated Causal Effect Strength (Part III abstract: "posterior-calibration of CES"), our readings.

    deltas = mu_do[None] - mu[None]              # [factors, n, latents]: posterior means after - before do(f)
    posterior_calibrated_ces(deltas, mu, logvar)                     # float, reading "weighted"
    posterior_calibrated_ces(deltas, mu, logvar, "normalised")       # float, the other reading
    calibrated_effects(deltas, mu, logvar, "weighted")               # [factors, latents], for specificity etc.
    posterior_weights(mu, logvar)                                    # [latents] in [0, 1]

Only the abstract exists; it names the technique and nothing of its definition. What it must repair is plain
from Part II's CES (:func:`circuitnb.measures.causal_effects.causal_effect_strength` over
:func:`~circuitnb.measures.causal_effects.effect_matrix`): an effect is a change in units of the latent's sd
over rows, so a collapsed latent (posterior = prior for every row, its mean nearly constant) divides a tiny
change by a tiny sd and can score as high as an informative one. Calibrating "by the posterior" means letting
the encoder's own uncertainty decide how much a latent's change counts. Two readings, computed from the same
arrays (:data:`READINGS`; STYLE.md §8, an undefined quantity gets named readings):

* ``weighted`` (the default, on Part II's scale): each latent's column of the Part II effect matrix times its
  posterior weight w_k (:func:`posterior_weights`), so an informative latent keeps its effect in row sds and an
  uninformative one (w ~ 0) loses it;
* ``normalised``: the change of the posterior mean in units of the posterior's own sd at that row,
  mean_n |delta mu_nk| / sigma_nk: how many posterior sds the intervention moves the code, i.e. whether the
  change is distinguishable from the encoder's uncertainty. A collapsed latent has sigma ~ 1 (the prior's) and
  a change ~ 0, so it scores ~ 0; a confident latent (sigma << 1) scores high. Unbounded above.

CES is then Part II's, unchanged: mean over factors of the largest calibrated effect on any latent.
"""
from __future__ import annotations

import numpy as np

from circuitnb.measures.causal_effects import causal_effect_strength, effect_matrix

READINGS = ("weighted", "normalised")


def _posterior(mu, logvar) -> tuple[np.ndarray, np.ndarray]:
    mu, logvar = np.asarray(mu, float), np.asarray(logvar, float)
    if mu.ndim != 2 or mu.shape != logvar.shape or len(mu) < 2:
        raise ValueError(f"need posterior means and log-variances [n >= 2, latents], the same shape; got "
                         f"{mu.shape} and {logvar.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(logvar))):
        raise ValueError("posterior means and log-variances must be finite")
    return mu, logvar


def posterior_weights(mu, logvar) -> np.ndarray:
    """``posterior_weights(mu [n, d], logvar [n, d])`` -> w [d] in [0, 1], how informative each latent is.

    Reading: w_k = Var_n(mu_k) / (Var_n(mu_k) + mean_n sigma_nk^2), the share of the aggregate posterior's
    variance of latent k that differs between rows (signal) rather than within a row's posterior (noise): a
    reliability, or intra-class correlation, of the code. For a Gaussian channel it is 1 - exp(-2 I_k) with
    I_k = log(1 + Var(mu_k) / mean sigma_k^2) / 2 the information (nats) the latent carries about the row.
    0 for a latent whose posterior is the same for every row (collapsed: mean constant, sigma^2 ~ 1 = prior);
    near 1 for one whose mean varies far more than its posterior sd. Var_n uses ddof = 1.
    """
    mu, logvar = _posterior(mu, logvar)
    signal = mu.var(0, ddof=1)
    noise = np.exp(logvar).mean(0)
    total = signal + noise
    return np.where(total > 0, signal / np.where(total > 0, total, 1.0), 0.0)


def calibrated_effects(deltas, mu, logvar, reading: str = "weighted") -> np.ndarray:
    """``calibrated_effects(deltas [factors, n, d], mu [n, d], logvar [n, d], reading)`` -> E [factors, d] >= 0.

    ``deltas[f, i, k]``: the change of row i's posterior mean on latent k under do(factor f); ``mu`` and
    ``logvar``: the clean rows' posteriors (the same n rows). Readings (module docstring): ``weighted``,
    E = effect_matrix(deltas, sd_n(mu)) * w with w = :func:`posterior_weights`; ``normalised``,
    E[f, k] = mean_i |deltas[f, i, k]| / sigma_ik with sigma = exp(logvar / 2) of the clean row.
    """
    if reading not in READINGS:
        raise ValueError(f"parameter 'reading' = {reading!r}; choose one of {READINGS}")
    mu, logvar = _posterior(mu, logvar)
    d = np.asarray(deltas, float)
    if d.ndim != 3 or d.shape[1:] != mu.shape:
        raise ValueError(f"need deltas [factors, n, latents] matching the posterior's [n, latents] = {mu.shape}; "
                         f"got {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("deltas must be finite")
    if reading == "weighted":
        return effect_matrix(d, mu.std(0, ddof=1)) * posterior_weights(mu, logvar)[None]
    # Per row: a row's change is judged against that row's own posterior, not an average one.
    return effect_matrix(d / np.exp(0.5 * logvar)[None], np.ones(mu.shape[1]))


def posterior_calibrated_ces(deltas, mu, logvar, reading: str = "weighted") -> float:
    """``posterior_calibrated_ces(deltas, mu, logvar)``: CES with each effect calibrated by the posterior.

    Part II's CES (mean over factors of the largest effect on any latent) of :func:`calibrated_effects`, so a
    collapsed latent's raw effect (a tiny change over a tiny sd) does not count; see the module docstring for
    the two readings. ``weighted`` is never above Part II's raw CES of the same deltas (w <= 1).
    """
    return causal_effect_strength(calibrated_effects(deltas, mu, logvar, reading))

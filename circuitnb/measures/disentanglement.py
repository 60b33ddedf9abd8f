"""Disentanglement scores of a representation against ground-truth factors: MIG, the FactorVAE
score and DCI, from their published definitions with disentanglement_lib's settings
(Locatello et al. 2019).

    mig(latents, factors)                                   # latents float [n, d], factors int [n, k]
    dci(latents, factors, test_latents, test_factors)       # {"disentanglement", "completeness", ...}
    dci_scores(importance)                                  # D and C of an importance matrix [d, k]
    to_latents = lambda codes: encode_mean(model, data.render(pd.DataFrame(codes, columns=data.factor_names)))
    factor_vae_score(to_latents, data.n_values)             # needs fresh draws with one factor fixed

The FactorVAE score cannot be computed from a fixed sample: it needs batches in which one
factor is held fixed and the others vary. Its interface is therefore a map from factor codes to
latents, ``to_latents(codes int [b, k]) -> float [b, d]`` (render and encode, or any function of
the codes), together with the number of values of each factor; the score draws the codes itself,
each factor uniform and independent as in dSprites. ``to_latents`` is called on up to
``64 x batch_size`` rows at a time.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import mutual_info_score


def _check(latents: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    latents, factors = np.asarray(latents, float), np.asarray(factors)
    if latents.ndim != 2 or factors.ndim != 2 or len(latents) != len(factors):
        raise ValueError(f"need latents [n, d] and factors [n, k]; got {latents.shape} and {factors.shape}")
    if latents.shape[1] < 2:
        raise ValueError("need at least 2 latent dimensions (a gap and a distribution over codes)")
    if factors.shape[1] < 2:
        raise ValueError("need at least 2 factors")
    const = [j for j in range(factors.shape[1]) if len(np.unique(factors[:, j])) < 2]
    if const:
        raise ValueError(f"factor columns {const} take a single value; the scores are undefined")
    return latents, factors


def discretize(latents: np.ndarray, bins: int = 20) -> np.ndarray:
    """Each latent cut into ``bins`` equal-width bins over its range, int [n, d]
    (disentanglement_lib ``_histogram_discretize``, 20 bins)."""
    return np.stack([np.digitize(c, np.histogram(c, bins)[1][:-1]) for c in np.asarray(latents, float).T], 1)


def mutual_information(latents: np.ndarray, factors: np.ndarray, bins: int = 20) -> np.ndarray:
    """Plug-in mutual information in nats between each discretised latent and each factor, [d, k]."""
    zd = discretize(latents, bins)
    return np.array([[mutual_info_score(f, z) for f in np.asarray(factors).T] for z in zd.T])


def mig_per_factor(latents: np.ndarray, factors: np.ndarray, bins: int = 20) -> np.ndarray:
    """``mig_per_factor(z, codes)`` [K]: each factor's gap between the two latents most informative about it,
    divided by the factor's entropy (Chen et al. 2018, Eq. 6, before the mean over factors), in [0, 1].

    Latents are discretised into 20 equal-width bins as in Chen et al.'s discrete estimate and
    disentanglement_lib, so a factor with more than ``bins`` values cannot reach 1 even when copied
    (40 values -> 1 - 1/log2(40) = 0.81).
    """
    latents, factors = _check(latents, factors)
    m = mutual_information(latents, factors, bins)
    entropy = np.array([mutual_info_score(f, f) for f in factors.T])   # H(v_k) = I(v_k; v_k)
    top = np.sort(m, axis=0)[::-1]
    return (top[0] - top[1]) / entropy


def mig(latents: np.ndarray, factors: np.ndarray, bins: int = 20) -> float:
    """``mig(z, codes)``: Mutual Information Gap (Chen et al. 2018, Eq. 6), in [0, 1]: the mean over factors
    of :func:`mig_per_factor`."""
    return float(np.mean(mig_per_factor(latents, factors, bins)))


def factor_vae_score(to_latents: Callable[[np.ndarray], np.ndarray], n_values: tuple[int, ...], *,
                     batch_size: int = 64, n_train: int = 10000, n_eval: int = 5000,
                     n_variance: int = 10000, min_variance: float = 0.05, seed: int = 0) -> float:
    """``factor_vae_score(to_latents, (3, 6, 40, 16, 16))``: the FactorVAE disentanglement metric
    (Kim & Mnih 2018, §4), held-out accuracy in [0, 1]; chance is 1/k.

    Protocol, with disentanglement_lib's settings: scale each latent by its std over
    ``n_variance`` random draws; dimensions with variance below ``min_variance`` (collapsed to
    the prior mean) are left out; each vote fixes a uniformly chosen factor at the value of the
    first of ``batch_size`` draws (L = 64), and votes for the latent of least scaled variance.
    The classifier is the majority vote (the factor voted most often for each latent) on
    ``n_train`` votes; the score is its accuracy on ``n_eval`` fresh votes. 0 if no latent is active.
    """
    rng = np.random.default_rng(seed)
    n_values = np.asarray(n_values)
    k = len(n_values)
    z = np.asarray(to_latents(rng.integers(0, n_values, size=(n_variance, k))), float)
    variance = np.var(z, axis=0, ddof=1)
    active = variance >= min_variance
    if not active.any():
        return 0.0
    scale = np.sqrt(variance[active])

    def votes(n: int) -> np.ndarray:                     # counts [active latent, factor]
        out = np.zeros((active.sum(), k), int)
        for a in range(0, n, 64):
            m = min(64, n - a)
            factor = rng.integers(0, k, m)
            codes = rng.integers(0, n_values, size=(m, batch_size, k))
            codes[np.arange(m), :, factor] = codes[np.arange(m), 0, factor][:, None]
            zb = np.asarray(to_latents(codes.reshape(-1, k)), float).reshape(m, batch_size, -1)
            local = np.var(zb[:, :, active] / scale, axis=1, ddof=1)
            np.add.at(out, (np.argmin(local, axis=1), factor), 1)
        return out

    classifier = np.argmax(votes(n_train), axis=1)       # majority vote per latent
    held_out = votes(n_eval)
    return float(held_out[np.arange(len(classifier)), classifier].sum() / held_out.sum())


def dci(latents: np.ndarray, factors: np.ndarray, test_latents: np.ndarray, test_factors: np.ndarray,
        *, n_estimators: int = 100, seed: int = 0) -> dict[str, float | np.ndarray]:
    """``dci(z_train, codes_train, z_test, codes_test)``: Disentanglement, Completeness and
    Informativeness (Eastwood & Williams 2018), as in disentanglement_lib.

    One gradient-boosted tree classifier per factor (sklearn's defaults: 100 trees of depth 3)
    gives the importance matrix R [d, k] (``importance``). Disentanglement: 1 - entropy (base k)
    of each latent's importances over factors, weighted by the latent's share of all importance.
    Completeness: 1 - entropy (base d) of each factor's importances over latents, weighted by
    the factor's share (both from R by :func:`dci_scores`). Informativeness: mean held-out classification
    accuracy over factors (disentanglement_lib's ``informativeness_test``; the paper reports the error, 1 minus
    it).
    """
    latents, factors = _check(latents, factors)
    test_latents, test_factors = np.asarray(test_latents, float), np.asarray(test_factors)
    d, k = latents.shape[1], factors.shape[1]
    r, accuracy = np.zeros((d, k)), []
    for j in range(k):
        gbt = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
        gbt.fit(latents, factors[:, j])
        r[:, j] = np.abs(gbt.feature_importances_)
        accuracy.append(gbt.score(test_latents, test_factors[:, j]))
    scores = dci_scores(r)
    return {"disentanglement": scores["disentanglement"], "completeness": scores["completeness"],
            "informativeness": float(np.mean(accuracy)), "importance": r}


def dci_scores(importance: np.ndarray) -> dict[str, float | np.ndarray]:
    """``dci_scores(R)``: DCI's disentanglement and completeness of an importance matrix R
    [d latents, k factors] (Eastwood & Williams 2018, §3; disentanglement_lib's ``dci``).

    With P_ij = R_ij / sum_k R_ik (latent i's importance over factors): D_i = 1 - H_k(P_i.), entropy
    base k = number of factors; D = sum_i rho_i D_i with rho_i = sum_j R_ij / sum R. With
    P~_ij = R_ij / sum_i R_ij (factor j's importance over latents): C_j = 1 - H_d(P~_.j), base d =
    number of latents; C = sum_j C_j (sum_i R_ij / sum R). Also returns the per-latent D_i
    (``per_latent``, [d]) and the per-factor C_j (``per_factor``, [k]).
    """
    r = np.abs(np.asarray(importance, float))
    if r.ndim != 2 or min(r.shape) < 2:
        raise ValueError(f"need an importance matrix [d latents >= 2, k factors >= 2]; got shape {r.shape}")
    d, k = r.shape
    # 1e-11 keeps an all-zero row finite, as in disentanglement_lib.
    per_latent = 1 - scipy.stats.entropy(r.T + 1e-11, base=k)      # over factors (axis 0 of R.T): [d]
    per_factor = 1 - scipy.stats.entropy(r + 1e-11, base=d)        # over latents (axis 0 of R): [k]
    w = r if r.sum() > 0 else np.ones_like(r)
    return {"disentanglement": float(np.sum(per_latent * w.sum(1) / w.sum())),
            "completeness": float(np.sum(per_factor * w.sum(0) / w.sum())),
            "per_latent": per_latent, "per_factor": per_factor}

"""Readings of Eq. 4 (information-flow efficiency) and their calibration on Gaussian pairs of known MI.

    ksg_mutual_information(a, b)          # Kraskov-Stoegbauer-Grassberger MI in bits (kNN, no bins)
    ife_knn(a, b)                         # 1 - exp(-2 MI): the kNN reading of IFE, rho^2 for Gaussians
    calibration([0.5, 0.9, 0.95, 0.999], n=100)   # both readings against the known answer

Why: the paper's IFE = MI / max(H) (§3.2.3, Eq. 4) leaves the estimator open.
Our default reading (:func:`circuitnb.measures.metrics.ife_from_scores`) bins
first-PC scores into k equal-frequency bins, so H = log2 k and MI <= log2 k:
with ~100 images (k = 4) a correlation of 0.95 reads about 0.5, a ceiling far
below the paper's 0.85-0.96. The kNN reading needs no bins: the KSG estimator
(Kraskov et al. 2004, algorithm 1) of MI, normalised by the information
coefficient of correlation (Linfoot 1957) squared, 1 - exp(-2 MI) in [0, 1],
which equals rho^2 for a bivariate Gaussian with correlation rho. An
estimator is believed only after this calibration against known answers.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import special, stats

from circuitnb.measures.metrics import ife_from_scores


def gaussian_mi(rho: float) -> float:
    """MI of a bivariate Gaussian with correlation ``rho``, in bits: -1/2 log2(1 - rho^2)."""
    return -0.5 * math.log2(1.0 - rho ** 2)


# Elements of one block of pairwise distances: bounds the memory of :func:`ksg_nats` at any sample size.
_BLOCK = 1 << 22


def _jittered(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    scale = np.std(x, axis=-1, keepdims=True)
    return x + 1e-10 * np.where(scale > 0, scale, 1.0) * z


def ksg_nats(a, b, k: int = 3) -> np.ndarray:
    """KSG estimate (algorithm 1, max-norm) of MI(a; b) in nats, clipped at 0, for every pair of samples
    along the last axis: ``a`` and ``b`` are ``[..., n]``, the result is ``[...]``.

    MI = psi(k) + psi(N) - < psi(n_a + 1) + psi(n_b + 1) >, n_a and n_b counting the points strictly
    within each point's distance to its k-th neighbour in the joint space (Kraskov et al. 2004, Eq. 8).
    Why batched and by brute force: chapter 5's kNN reading bootstraps every (timestep, layer pair) of a
    model 2,000 times; one tree query per pair and resample takes 34 s per model, the distances of all
    pairs at once 7.5 s. For 1-d samples the distances are exact either way, so the
    counts, and the estimate, are those of a k-d tree (tests/test_information.py checks against one).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim == 0 or a.shape[-1] <= k:
        raise ValueError(f"need paired samples longer than k = {k}, got shapes {a.shape} and {b.shape}")
    lead, n = a.shape[:-1], a.shape[-1]
    # Tiny jitter breaks ties (identical PC scores, or a bootstrap's repeated images, would make the counts
    # degenerate), scaled to each sample; the same draws for every sample of this size.
    rng = np.random.default_rng(0)
    a = _jittered(a, rng.standard_normal(n)).reshape(-1, n)
    b = _jittered(b, rng.standard_normal(n)).reshape(-1, n)
    psi = np.empty_like(a)
    rows = max(1, _BLOCK // (len(a) * n))
    for start in range(0, n, rows):
        at = slice(start, start + rows)
        da = np.abs(a[:, at, None] - a[:, None, :])                     # [pairs, rows, n]
        db = np.abs(b[:, at, None] - b[:, None, :])
        eps = np.partition(np.maximum(da, db), k, axis=-1)[..., k]       # index 0 is the point itself
        radius = np.nextafter(eps, 0)[..., None]                         # strictly closer than the k-th
        n_a, n_b = (da <= radius).sum(-1) - 1, (db <= radius).sum(-1) - 1
        psi[:, at] = special.digamma(n_a + 1) + special.digamma(n_b + 1)
    nats = special.digamma(k) + special.digamma(n) - psi.mean(-1)
    return np.maximum(nats, 0.0).reshape(lead)


def ksg_mutual_information(a, b, k: int = 3) -> float:
    """:func:`ksg_nats` of one pair of 1-d samples, in bits."""
    return float(ksg_nats(np.ravel(a), np.ravel(b), k)) / math.log(2)


def ife_knn(a, b, k: int = 3):
    """The kNN reading of Eq. 4: 1 - exp(-2 MI_KSG) (MI in nats), in [0, 1]; rho^2 for Gaussian pairs.
    A float for 1-d samples, else one value per pair along the last axis (``[..., n]`` -> ``[...]``)."""
    out = 1.0 - np.exp(-2.0 * ksg_nats(a, b, k))
    return float(out) if out.ndim == 0 else out


def binned_ife_exact(rho: float, n_bins: int) -> float:
    """The value the binned reading estimates for a Gaussian pair: MI / log2(k) of the k x k equal-frequency
    discretisation, computed exactly from the bivariate normal CDF (the binned reading's known answer)."""
    # Equal-frequency edges; +-10 SD stands in for +-inf (the mass beyond is ~1e-23).
    edges = np.clip(stats.norm.ppf(np.linspace(0, 1, n_bins + 1)), -10.0, 10.0)
    mvn = stats.multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]])
    cdf = np.array([[mvn.cdf([x, y]) for y in edges] for x in edges])
    p = np.diff(np.diff(cdf, axis=0), axis=1).clip(min=0)
    p /= p.sum()
    marg = 1.0 / n_bins
    nz = p > 0
    mi = float((p[nz] * np.log2(p[nz] / marg ** 2)).sum())
    return mi / math.log2(n_bins)


def calibration(rhos, n: int = 100, n_rep: int = 50, seed: int = 0) -> pd.DataFrame:
    """Both readings on ``n_rep`` Gaussian samples of size ``n`` per correlation, beside their known answers.

    Columns: rho, true_mi (bits), binned_truth (what the binned reading converges to at this n's k),
    binned_mean, binned_sd, knn_truth (rho^2), knn_mean, knn_sd, n, n_bins.
    """
    rng = np.random.default_rng(seed)
    k_bins = max(2, int(round(math.sqrt(n / 5))))           # the default of metrics.ife_from_scores
    rows = []
    for rho in rhos:
        cov = [[1.0, rho], [rho, 1.0]]
        binned, knn = [], []
        for _ in range(n_rep):
            a, b = rng.multivariate_normal([0.0, 0.0], cov, size=n).T
            binned.append(ife_from_scores(a, b))
            knn.append(ife_knn(a, b))
        rows.append(dict(rho=rho, true_mi=gaussian_mi(rho), binned_truth=binned_ife_exact(rho, k_bins),
                         binned_mean=np.mean(binned), binned_sd=np.std(binned, ddof=1),
                         knn_truth=rho ** 2, knn_mean=np.mean(knn), knn_sd=np.std(knn, ddof=1),
                         n=n, n_bins=k_bins))
    return pd.DataFrame(rows)

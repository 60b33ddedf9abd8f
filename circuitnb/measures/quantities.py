"""Quantities the paper names but never defines, each given one operational definition here.

    acc = prediction_accuracy(mse)                    # §4.1, % per image
    cc = circuit_complexity(head_energy)              # Tables 1 and 4, per image
    fh = feature_hierarchy(complexity_by_depth)       # Table 4, per image
    d = divergence(h_syn, h_cel)                      # §4.8, entropy / specialization divergence
    cka = linear_cka(acts_a, acts_b)                  # §4.9, representation similarity
    xfer = feature_transferability(cka_values)        # §4.9, %
    rob = circuit_robustness(impacts)                 # §4.9, %

Head importance (Table 2) and cross-dataset accuracy need forward passes and
live in :mod:`circuitnb.interventions.circuits`; they reduce to :func:`circuitnb.measures.metrics.impact_score`
and :func:`prediction_accuracy` defined here. The book cites these functions
wherever the numbers appear, and every docstring says why the definition was
chosen (the paper gives none; see the scorecard's "not comparable" notes).
"""
from __future__ import annotations

import numpy as np
import torch

ROBUSTNESS_THRESHOLD = 0.10       # an intervention "breaks" the circuit when it raises the MSE by > 10%


def prediction_accuracy(mse) -> np.ndarray:
    """§4.1 "prediction accuracy" (%): 100 x (1 - MSE(eps_hat, eps) / Var(eps)), per image.

    The noise-prediction R^2 in percent. eps ~ N(0, I) has unit variance, so
    this is 100 (1 - MSE): 100% is a perfect noise prediction, 0% is no better
    than predicting zero. It rises with t as the paper's numbers do (noise is
    easier to predict when it dominates x_t). Input: per-image MSEs.
    """
    return 100.0 * (1.0 - np.asarray(mse, float))


def circuit_complexity(head_energy) -> np.ndarray:
    """Tables 1 and 4 "circuit complexity": the share of attention heads that carry the output, per image.

    ``head_energy`` is ``[B, heads]``: each head's mean squared output (before
    the output projection) over all attention layers. The participation ratio
    (sum e)^2 / sum e^2 counts the heads that effectively contribute (1 when one
    head carries everything, n when all carry equally); dividing by n puts it
    in [1/n, 1]. A more complex circuit spreads its computation over more heads.
    """
    e = np.asarray(head_energy, float)
    n = e.shape[-1]
    total = e.sum(-1)
    return np.where(total > 0, total ** 2 / np.maximum((e ** 2).sum(-1), 1e-300) / n, 0.0)


def feature_hierarchy(complexity_by_depth, depth=None) -> np.ndarray:
    """Table 4 "feature hierarchy": the slope of feature complexity (Eq. 3) over normalised depth, per image.

    ``complexity_by_depth`` is ``[B, L]``: Eq. 3 at L blocks in forward order
    (encoder, middle, decoder). ``depth`` defaults to L points evenly in [0, 1].
    The least-squares slope is the change in complexity from input to output:
    > 0 when later blocks carry more complex features (a hierarchy that builds
    up), 0 for a flat profile.
    """
    c = np.asarray(complexity_by_depth, float)
    x = np.linspace(0.0, 1.0, c.shape[-1]) if depth is None else np.asarray(depth, float)
    xc = x - x.mean()
    return (c - c.mean(-1, keepdims=True)) @ xc / (xc @ xc)


def divergence(a_by_head, b_by_head) -> float:
    """§4.8 "entropy divergence" / "specialization divergence" between datasets at one t.

    Mean over heads of |mean_a(h) - mean_b(h)|, where ``a_by_head`` and
    ``b_by_head`` are ``[n_images, heads]`` per-head values (entropy in bits, or
    specialization) of the two models on their own data. In the quantity's units;
    0 when every head behaves the same on average in both.
    """
    a, b = np.asarray(a_by_head, float), np.asarray(b_by_head, float)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"need the same heads in both, got {a.shape[1:]} and {b.shape[1:]}")
    return float(np.abs(a.mean(0) - b.mean(0)).mean())


def match_heads(maps_a, maps_b) -> np.ndarray:
    """§4.8 head correspondence by optimal assignment: ``perm`` with head i of a matched to head perm[i] of b.

    ``maps_a`` and ``maps_b`` are ``[heads, K]`` (e.g. the attention each key receives, mean over images) of
    one layer of two models. The similarity is the Pearson correlation of two heads' maps; the matching
    maximises its sum (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``). Index matching
    (head k to head k) is arbitrary: two models trained apart have no reason to number their heads alike.
    """
    from scipy.optimize import linear_sum_assignment
    a, b = np.asarray(maps_a, float), np.asarray(maps_b, float)
    if a.shape != b.shape:
        raise ValueError(f"need the same heads and keys in both, got {a.shape} and {b.shape}")
    za = (a - a.mean(1, keepdims=True)) / np.maximum(a.std(1, keepdims=True), 1e-12)
    zb = (b - b.mean(1, keepdims=True)) / np.maximum(b.std(1, keepdims=True), 1e-12)
    rows, cols = linear_sum_assignment(-(za @ zb.T) / a.shape[1])
    return cols[np.argsort(rows)]


def linear_cka(x, y) -> float:
    """Linear centred kernel alignment (Kornblith et al., 2019) of ``[N, ...]`` and ``[N, ...]``.

    Compares two representations of the same N inputs whatever their widths; 1
    for representations equal up to rotation and isotropic scaling, ~0 for
    unrelated ones. Computed through the N x N Gram matrices (N is small).
    """
    x = torch.as_tensor(x).double().flatten(1)
    y = torch.as_tensor(y).double().flatten(1)
    if len(x) != len(y):
        raise ValueError(f"need the same inputs for both, got {len(x)} and {len(y)} rows")
    x, y = x - x.mean(0), y - y.mean(0)
    kx, ky = x @ x.T, y @ y.T
    hsic = (kx * ky).sum()
    denom = kx.norm() * ky.norm()
    return float(hsic / denom) if denom > 0 else 0.0


def feature_transferability(cka_values) -> float:
    """§4.9 "feature transferability" (%): 100 x the mean linear CKA (:func:`linear_cka`) between the two
    models' activations at the same block on the same noisy inputs, over blocks (and timesteps).

    100% means the two models compute the same features (up to rotation and scale) everywhere.
    """
    v = np.asarray(cka_values, float)
    if v.size == 0:
        raise ValueError("need at least one CKA value")
    return 100.0 * float(v.mean())


def circuit_robustness(impacts, threshold: float = ROBUSTNESS_THRESHOLD) -> float:
    """§4.9 "circuit robustness" (%): share of interventions the model tolerates.

    ``impacts`` are impact scores (Eq. 5) of a family of interventions (e.g. the
    single-head ablations and attention perturbations of chapter 6). An
    intervention is tolerated when it raises the noise-prediction MSE by at
    most ``threshold`` (default 10%).
    """
    i = np.asarray(impacts, float)
    if i.size == 0:
        raise ValueError("need at least one impact score")
    return 100.0 * float((i <= threshold).mean())

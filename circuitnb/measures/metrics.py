"""The paper's equations (§3.2), each defined once.

    H = attention_entropy(probs)          # Eq. 1, bits, [B, heads]
    S = specialization(probs)             # Eq. 2, in [0, 1]
    C = feature_complexity(features)      # Eq. 3, [B]
    e = information_flow_efficiency(f_l, f_next)   # Eq. 4, scalar in [0, 1]
    I = impact_score(mse_int, mse_base)   # Eq. 5

Choices the paper leaves open are stated in each docstring.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def attention_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Eq. 1: entropy in bits of each head's attention, ``[B, heads, Q, K]`` -> ``[B, heads]``.

    Eq. 1 writes a double sum over queries and keys. We normalise it as the
    *mean over query rows* of each row's Shannon entropy, so H is in
    [0, log2 K] whatever the number of queries, and Hmax = log2 K (uniform
    attention over the K keys). The paper's own values (Table 2: a few bits) fit a
    per-row normalisation; a total over rows would scale with Q.
    """
    # torch.special.entr(p) = -p ln p with entr(0) = 0 exactly; float32 keeps sweeps fast.
    return torch.special.entr(probs.float()).sum(-1).mean(-1) / math.log(2)


def max_entropy(n_keys: int) -> float:
    """Hmax of Eq. 2 for a per-row entropy: log2 of the number of keys."""
    return math.log2(n_keys)


def normalised_entropy(bits, n_keys):
    """Eq. 1 as a share of its maximum, H / Hmax = H / log2 K, in [0, 1] whatever the resolution.

        normalised_entropy(sw.head_matrix(t, "entropy"), 64)     # [N, heads]; 1 = uniform attention

    ``n_keys`` is one K for all of ``bits`` or one K per entry (layers at different resolutions); Hmax is
    :func:`max_entropy` either way. ``bits`` keeps its type (array, Series), and with one K its float width.
    """
    if np.ndim(n_keys) == 0:
        return bits / max_entropy(int(n_keys))
    return bits / np.vectorize(max_entropy, otypes=[float])(np.asarray(n_keys))


def specialization(probs: torch.Tensor, entropy: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 2: S_h = (Hmax - H) / Hmax, Hmax = log2 K; ``[B, heads, Q, K]`` -> ``[B, heads]``; 0 = uniform, 1 = one-hot.

        S = specialization(probs)
        S = specialization(probs, entropy=H)     # H = attention_entropy(probs), already computed

    ``entropy`` saves a second pass over ``probs`` where the caller has Eq. 1 already (the sweep's hook).
    """
    hmax = max_entropy(probs.shape[-1])
    return (hmax - (attention_entropy(probs) if entropy is None else entropy)) / hmax


def hoyer_sparsity(x: torch.Tensor) -> torch.Tensor:
    """Hoyer (2004) sparsity per example of ``[B, ...]``: (sqrt(n) - L1/L2) / (sqrt(n) - 1), in [0, 1].

    1 for a single non-zero entry, 0 for equal magnitudes; independent of n, so
    layers of different widths are comparable. All-zero examples get 0.
    """
    f = x.double().flatten(1)
    n = f.shape[1]
    l1, l2 = f.abs().sum(1), f.pow(2).sum(1).sqrt()
    ratio = torch.where(l2 > 0, l1 / l2.clamp_min(1e-300), torch.full_like(l1, math.sqrt(n)))
    return ((math.sqrt(n) - ratio) / (math.sqrt(n) - 1)).float()


def feature_complexity(features: torch.Tensor) -> torch.Tensor:
    """Eq. 3: C_l = sigma(F) * range(F) * sparsity(F), per example of ``[B, C, H, W]`` -> ``[B]``.

    Normalisation (ours; the paper gives none): each example's activations are
    divided by their largest magnitude, so sigma is in [0, 1] and range in
    [0, 2] (we halve it to [0, 1]); sparsity is Hoyer's measure
    (:func:`hoyer_sparsity`). C is then in [0, 1], dimensionless and
    independent of layer width and activation scale; constant activations give 0.
    """
    f = features.double().flatten(1)
    scale = f.abs().amax(1, keepdim=True)
    g = f / scale.clamp_min(1e-300)
    sigma = g.std(1, unbiased=False)
    rng = (g.amax(1) - g.amin(1)) / 2
    return (sigma * rng).float() * hoyer_sparsity(f)


def first_pc_scores(x: np.ndarray, iters: int = 200, tol: float = 1e-10) -> np.ndarray:
    """Per-example score on the first principal component of ``[N, D]``.

    Power iteration on the N x N Gram matrix from a fixed start (deterministic;
    a full SVD of 2,000 x 8,192 activations takes minutes). The sign is fixed so
    that the scores correlate positively with the row sums.
    """
    x = x - x.mean(0)
    if not np.any(x):
        return np.zeros(len(x))
    gram = x @ x.T
    v = np.linspace(1.0, 2.0, len(x))
    v /= np.linalg.norm(v)
    for _ in range(iters):
        w = gram @ v
        w /= np.linalg.norm(w)
        done = np.linalg.norm(w - v) < tol
        v = w
        if done:
            break
    return v * np.sign(v @ x.sum(1) or 1.0)


def _quantile_bins(v: np.ndarray, k: int) -> np.ndarray:
    ranks = np.argsort(np.argsort(v, kind="stable"), kind="stable")
    return (ranks * k // len(v)).astype(int)


def _entropy_mm(counts: np.ndarray, n: int) -> float:
    """Plug-in entropy in bits with the Miller-Madow bias correction (m - 1) / (2 n ln 2)."""
    p = counts[counts > 0] / n
    return float(-(p * np.log2(p)).sum() + (len(p) - 1) / (2 * n * math.log(2)))


def information_flow_efficiency(f_l: torch.Tensor, f_next: torch.Tensor, n_bins: int | None = None) -> float:
    """Eq. 4: IFE = MI(F_l, F_l+1) / max(H(F_l), H(F_l+1)), over a batch of examples.

    Estimator (ours): each layer's ``[B, C, H, W]`` output is reduced to one
    score per example, its projection on the layer's first principal component
    across the batch (so layers of any shape compare); scores are binned into
    ``n_bins`` equal-frequency bins (default ~ sqrt(B / 5), at least 2);
    entropies and MI = H(X) + H(Y) - H(X, Y) are plug-in estimates with the
    Miller-Madow correction, which removes the first-order small-sample bias.
    1 for a layer against itself; ~0 for independent layers. Clipped to [0, 1].
    """
    a = first_pc_scores(f_l.double().flatten(1).cpu().numpy())
    b = first_pc_scores(f_next.double().flatten(1).cpu().numpy())
    return ife_from_scores(a, b, n_bins)


def ife_from_scores(a: np.ndarray, b: np.ndarray, n_bins: int | None = None) -> float:
    """Eq. 4 from per-example first-PC scores of two layers (see :func:`information_flow_efficiency`)."""
    n = len(a)
    if n != len(b) or n < 4:
        raise ValueError(f"need the same batch of >= 4 examples for both layers, got {len(a)} and {len(b)}")
    k = n_bins or max(2, int(round(math.sqrt(n / 5))))
    x, y = _quantile_bins(np.asarray(a), k), _quantile_bins(np.asarray(b), k)
    hx = _entropy_mm(np.bincount(x, minlength=k), n)
    hy = _entropy_mm(np.bincount(y, minlength=k), n)
    hxy = _entropy_mm(np.bincount(x * k + y, minlength=k * k), n)
    mi = hx + hy - hxy
    return float(np.clip(mi / max(hx, hy), 0.0, 1.0))


def impact_score(mse_int, mse_base):
    """Eq. 5: I = (MSE_int - MSE_base) / MSE_base; 0 for a no-op, > 0 when the intervention hurts.

    Floats give a float; arrays (e.g. per-image MSEs) give the per-element impacts.
    """
    base = np.asarray(mse_base, float)
    if np.any(base <= 0):
        raise ValueError(f"MSE_base must be > 0, got {mse_base}")
    out = (np.asarray(mse_int, float) - base) / base
    return float(out) if out.ndim == 0 else out

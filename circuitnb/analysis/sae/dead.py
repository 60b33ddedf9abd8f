"""Part IV's dead-unit statistics over replicate models: revival after the schedule, the Shapes3D / dSprites ratio
with its interval over replicate pairs, and Top-k with AuxK against plain Top-k.

    revival(codes_end, codes_last, 0.0)                  # dead at the schedule's end, and how many fire again
    pair_ratio(dead_dsprites, dead_shapes3d)             # geometric mean of per-pair ratios, CIs, same-data null
    auxk_vs_topk(dead_topk, dead_auxk, nelbo_topk, nelbo_auxk, active_topk, active_auxk)

The model is the unit (STYLE §8). Replicate r of every (method, set) trains from the same seed on the same draw
(:func:`circuitnb.modeling.sae.sae_seed` does not read the method), so Top-k and Top-k + AuxK replicate r differ in
the auxiliary loss only: their comparison is paired. dSprites replicate r and Shapes3D replicate r form the
ratio's pair r (as Parts I-III pair datasets).
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

from circuitnb.measures.sae import dead_units
from circuitnb.measures.verdicts import Estimate, replicate_ci

# AuxK against Top-k (our reading of "intrinsic ... rather than an artifact of any particular algorithm"):
RECON_TOL = 0.02         # "equal reconstruction": held-out -ELBO of AuxK within 2% of Top-k's (the convergence tol)
SPARSITY_TOL = 0.05      # "equal sparsity": active units per input within 5% (both are Top-k at the same k)
SAME_DEAD = 0.05         # "AuxK changes nothing": the paired difference's 90% CI inside +-5 points of dead rate
AUXK_OUTCOMES = ("contradicts intrinsic", "consistent with intrinsic", "not at equal reconstruction",
                 "not at equal sparsity", "inconclusive")


def revival(codes_end, codes_last, threshold: float = 0.0, later: Sequence = ()) -> dict:
    """``revival(codes_end [N, H], codes_last [N, H], 0.0)``: units dead at the schedule's end (by
    :func:`circuitnb.measures.sae.dead_units` at ``threshold``) that are not dead at the last snapshot.

    Returns ``n_units``, ``n_dead_end``, ``n_dead_last``, ``n_revived`` (dead at the end, alive at the last),
    ``revived_share`` (n_revived / n_dead_end; nan when none was dead), ``n_died`` (alive at the end, dead at the
    last) and, with ``later`` (codes at every snapshot after the end, the last included), ``n_ever_revived``: dead
    at the end and alive at any later snapshot."""
    d_end, d_last = dead_units(codes_end, threshold), dead_units(codes_last, threshold)
    if d_end.shape != d_last.shape:
        raise ValueError(f"codes at the end and at the last snapshot have {d_end.size} and {d_last.size} units")
    ever = d_end & ~d_last
    for c in later:
        ever |= d_end & ~dead_units(c, threshold)
    n_dead = int(d_end.sum())
    revived = int((d_end & ~d_last).sum())
    return dict(n_units=int(d_end.size), n_dead_end=n_dead, n_dead_last=int(d_last.sum()), n_revived=revived,
                revived_share=revived / n_dead if n_dead else float("nan"), n_died=int((~d_end & d_last).sum()),
                n_ever_revived=int(ever.sum()))


def _log_interval(logs: np.ndarray, level: float) -> Estimate:
    est = replicate_ci(logs, level)
    tight = est.ci(2 * level - 1)
    return Estimate(float(np.exp(est.mean)), float(np.exp(est.low)), float(np.exp(est.high)), est.n, level,
                    more=((2 * level - 1, float(np.exp(tight[0])), float(np.exp(tight[1]))),))


def pair_ratio(a: ArrayLike, b: ArrayLike, level: float = 0.95) -> dict:
    """``pair_ratio(dead_a, dead_b)``: b / a over replicate pairs (pair r = a[r], b[r]), the model as the unit.

    * ``estimate``: geometric mean of the per-pair ratios with a t-interval over pairs on the log scale (its
      1 - 2 alpha interval in ``more``, for an equivalence verdict); ``per_pair`` the ratios;
    * ``null_low``, ``null_high``: the range of the same ratio between two replicates of one set (every ordered
      pair i != j, both sets): what seed alone moves it; ``beyond_null``: the whole CI outside that range;
    * ``reason``: why the estimate is nan (a pair with a dead rate of 0 has no finite log ratio).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need one value per replicate on both sides; got {a.shape} and {b.shape}")
    nan = float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = b / a
    null = [x[j] / x[i] for x in (a, b) for i, j in itertools.permutations(range(len(x)), 2) if x[i] > 0]
    nlo, nhi = (min(null), max(null)) if null else (nan, nan)
    bad = [r for r in range(len(a)) if not (a[r] > 0 and b[r] > 0)]
    if bad:
        return dict(estimate=Estimate(nan, nan, nan, len(a), level), per_pair=ratios, null_low=nlo, null_high=nhi,
                    beyond_null=False, reason=f"a dead rate of 0 in pair(s) {bad}: no finite log ratio")
    est = _log_interval(np.log(ratios), level)
    beyond = bool(np.isfinite(est.low) and np.isfinite(nlo) and (est.low > nhi or est.high < nlo))
    return dict(estimate=est, per_pair=ratios, null_low=nlo, null_high=nhi, beyond_null=beyond, reason="")


def paired_difference(x: ArrayLike, y: ArrayLike, level: float = 0.95) -> Estimate:
    """Mean of x[r] - y[r] over replicate pairs with a t-interval (nan for one pair)."""
    return replicate_ci(np.asarray(x, float) - np.asarray(y, float), level)


def auxk_vs_topk(dead_topk, dead_auxk, nelbo_topk, nelbo_auxk, active_topk, active_auxk,
                 level: float = 0.95) -> dict:
    """Top-k + AuxK against plain Top-k on one set, replicate r paired with replicate r (the same seed and data).

    ``dead_*``: dead rates; ``nelbo_*``: held-out negative ELBO (nats per image); ``active_*``: active units per
    input (the sparsity). Returns the paired estimates ``dead_saved`` (Top-k's dead rate minus AuxK's: the share
    of units AuxK keeps alive), ``recon_change`` ((AuxK - Top-k) / Top-k negative ELBO: > 0 is worse),
    ``sparsity_change`` (relative), and ``outcome``, one of :data:`AUXK_OUTCOMES`, with ``reason``:

    1. sparsity differs by more than :data:`SPARSITY_TOL` (relative, any pair): "not at equal sparsity";
    2. AuxK keeps units alive (``dead_saved``'s 95% CI above 0) and its reconstruction is no worse (the 95% CI of
       ``recon_change`` below :data:`RECON_TOL`): "contradicts intrinsic": at equal sparsity and reconstruction,
       an algorithm keeps the units the schedule kills, so their death is not intrinsic to the compression;
    3. AuxK keeps units alive but reconstructs worse (CI not below the tolerance): "not at equal reconstruction";
    4. ``dead_saved``'s 90% CI inside +-:data:`SAME_DEAD`: "consistent with intrinsic" (AuxK changes nothing);
    5. otherwise "inconclusive".
    """
    dt, da = np.asarray(dead_topk, float), np.asarray(dead_auxk, float)
    nt, na = np.asarray(nelbo_topk, float), np.asarray(nelbo_auxk, float)
    at, aa = np.asarray(active_topk, float), np.asarray(active_auxk, float)
    saved = paired_difference(dt, da, level)
    recon = replicate_ci((na - nt) / nt, level)
    with np.errstate(divide="ignore", invalid="ignore"):
        sparsity = np.abs(aa - at) / at
    tight = saved.ci(2 * level - 1)
    if not np.all(sparsity <= SPARSITY_TOL):
        outcome, why = "not at equal sparsity", f"active units per input differ by up to {np.nanmax(sparsity):.1%}"
    elif saved.low > 0 and recon.high < RECON_TOL:
        outcome, why = "contradicts intrinsic", (
            f"AuxK keeps {saved.mean:.1%} of units alive (95% CI [{saved.low:.1%}, {saved.high:.1%}]) at the same "
            f"k, held-out -ELBO change {recon.mean:+.1%} (95% CI upper {recon.high:+.1%} < {RECON_TOL:.0%})")
    elif saved.low > 0:
        outcome, why = "not at equal reconstruction", (
            f"AuxK keeps {saved.mean:.1%} of units alive but its held-out -ELBO changes by {recon.mean:+.1%} "
            f"(95% CI upper {recon.high:+.1%}, not below {RECON_TOL:.0%})")
    elif np.isfinite(tight[0]) and -SAME_DEAD <= tight[0] and tight[1] <= SAME_DEAD:
        outcome, why = "consistent with intrinsic", (
            f"AuxK changes the dead rate by {-saved.mean:+.1%} (90% CI of the saving [{tight[0]:.1%}, "
            f"{tight[1]:.1%}] inside +-{SAME_DEAD:.0%})")
    else:
        outcome, why = "inconclusive", (
            f"saving {saved.mean:.1%} (95% CI [{saved.low:.1%}, {saved.high:.1%}]) neither above 0 nor "
            f"within +-{SAME_DEAD:.0%}" + ("" if saved.n > 1 else f" (n = {saved.n} pair)"))
    return dict(dead_saved=saved, recon_change=recon, sparsity_change=float(np.nanmax(sparsity)),
                outcome=outcome, reason=why, n_pairs=saved.n)

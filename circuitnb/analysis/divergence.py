"""§4.8: how far the two datasets' models' heads diverge, per replicate pair, beside the same-data null.

    pairs = divergence_pairs(sweeps, cfg.analysis.n_bootstrap, cfg.run.seed)   # every model pair, per t
    table = divergence_table(pairs)            # mean over replicate pairs, t-interval, same-data null beside
    rows = divergence_claims(table, pairs)     # ent_div_<t>, spec_div_<t>

The paper gives "entropy divergence" and "specialization divergence" per timestep without a definition.
Ours (:func:`circuitnb.measures.quantities.divergence`): the mean over heads of the absolute difference
between two models' mean per-head entropy (bits) or specialization, each model on its own held-out
images. The model is the unit: the divergence is computed for each replicate pair (synthetic model r vs
CelebA model r), averaged over pairs with a t-interval, and set beside the **same-data null**: the same
divergence between two models trained on the same dataset (every pair of models of each dataset, on the
same images). A dataset divergence counts only where its whole interval lies above that null range.
Each pair's own divergence carries a percentile-bootstrap CI over images (each model's images resampled).
Chapters 8 and 12 (heads matched by index or by optimal assignment) read them.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from circuitnb import data
from circuitnb.analysis import replicates
from circuitnb.analysis.claim_rows import claim_row
from circuitnb.measures import quantities
from circuitnb.measures.verdicts import Estimate, replicate_ci

A, B = data.DATASETS
QUANTITIES = {"entropy": ("ent_div", "bits"), "specialization": ("spec_div", "fraction 0-1")}


def divergence_estimate(a: np.ndarray, b: np.ndarray, n_bootstrap: int, seed: int = 0) -> Estimate:
    """Divergence of two models' ``[n_images, heads]`` values, with percentile-bootstrap 95% and 90% CIs
    (the images of each model resampled independently)."""
    point = quantities.divergence(a, b)
    rng = np.random.default_rng(seed)
    ia, ib = rng.integers(0, len(a), (n_bootstrap, len(a))), rng.integers(0, len(b), (n_bootstrap, len(b)))
    boots = np.abs(a[ia].mean(1) - b[ib].mean(1)).mean(1)     # quantities.divergence, vectorised over resamples
    lo, hi, eq_lo, eq_hi = np.percentile(boots, [2.5, 97.5, 5, 95])
    return Estimate(point, float(lo), float(hi), min(len(a), len(b)), 0.95, more=((0.90, float(eq_lo), float(eq_hi)),))


def matched_columns(sw_a, sw_b, t: int) -> np.ndarray:
    """Column order of ``sw_b``'s heads matched to ``sw_a``'s by optimal assignment within each layer
    (:func:`circuitnb.measures.quantities.match_heads` on the mean attention each key receives at t)."""
    order, h = [], sw_a.n_heads
    for i, layer in enumerate(sw_a.layers):
        perm = quantities.match_heads(sw_a.received[(t, layer)].mean(0), sw_b.received[(t, layer)].mean(0))
        order += list(i * h + perm)
    return np.asarray(order)


def divergence_pairs(sweeps: dict, n_bootstrap: int, seed: int = 0, matching: str = "index") -> pd.DataFrame:
    """Every model pair's divergence per quantity and t: ``between`` pairs (synthetic r vs CelebA r) and
    ``same data`` pairs (models i < j of one dataset). Heads correspond by ``matching``
    (READINGS["head_matching"]: "index", or "hungarian" via :func:`matched_columns`). Columns: quantity, t,
    kind, a, b, divergence, ci_low, ci_high, estimate (the :class:`Estimate`)."""
    pairs = [("between", (A, r), (B, r)) for r in range(min(len(sweeps[A]), len(sweeps[B])))]
    pairs += [("same data", (d, i), (d, j))
              for d in (A, B) for i, j in itertools.combinations(range(len(sweeps[d])), 2)]
    rows = []
    for quantity in QUANTITIES:
        for t in sweeps[A][0].timesteps:
            mats = {(d, r): sw.head_matrix(t, quantity) for d in (A, B) for r, sw in enumerate(sweeps[d])}
            for kind, x, y in pairs:
                b = mats[y]
                if matching == "hungarian":
                    b = b[:, matched_columns(sweeps[x[0]][x[1]], sweeps[y[0]][y[1]], t)]
                est = divergence_estimate(mats[x], b, n_bootstrap, seed)
                rows.append(dict(quantity=quantity, t=t, kind=kind, a=f"{x[0]} r{x[1]}", b=f"{y[0]} r{y[1]}",
                                 divergence=est.mean, ci_low=est.low, ci_high=est.high, estimate=est))
    return pd.DataFrame(rows)


def divergence_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per quantity and t: the mean divergence over replicate pairs with a 95% t-interval over pairs (and the
    90% one an equivalence test uses), beside the same-data null (mean and range over same-data pairs)."""
    rows = []
    for (quantity, t), g in pairs.groupby(["quantity", "t"], sort=False):
        between, null = g[g.kind == "between"].divergence, g[g.kind == "same data"].divergence
        est = replicate_ci(between)
        eq = est.ci(0.90)
        nlo, nhi = (null.min(), null.max()) if len(null) else (np.nan, np.nan)
        rows.append(dict(quantity=quantity, t=t, divergence=est.mean, ci_low=est.low, ci_high=est.high,
                         eq_low=eq[0], eq_high=eq[1], null_mean=null.mean(), null_low=nlo, null_high=nhi,
                         beyond_null=bool(np.isfinite(est.low) and est.low > nhi),
                         per_pair=replicates.listed(between), n_pairs=len(between), n_null=len(null)))
    return pd.DataFrame(rows)


def divergence_claims(table: pd.DataFrame, pairs: pd.DataFrame) -> list[dict]:
    """ent_div_t, spec_div_t: the mean over replicate pairs, each pair judged alone on its bootstrap CI."""
    rows = []
    for r in table.itertuples():
        prefix, unit = QUANTITIES[r.quantity]
        est = Estimate(r.divergence, r.ci_low, r.ci_high, r.n_pairs, more=((0.90, r.eq_low, r.eq_high),))
        g = pairs[(pairs.quantity == r.quantity) & (pairs.t == r.t) & (pairs.kind == "between")]
        where = "above" if r.beyond_null else "not above"
        rows.append(claim_row(f"{prefix}_{r.t}", est, list(g.estimate), unit=unit,
                              reason=f"{where} the same-data null ({r.null_low:.3g} to {r.null_high:.3g}, "
                                     f"{r.n_null} pairs of models trained on the same data)"))
    return rows

"""§4.4, Eq. 4: information-flow efficiency (IFE) between adjacent blocks, per replicate model, and its claims.

    ife = ife_models(cfg, models, sweeps)      # values (t, pair, depth, group, ife) and ranges per depth group
    rows = ife_claims(ife["ranges"])           # ife_{early,middle,late}_{lo,hi}

IFE (Eq. 4) is a property of a model on a set of images (mutual information across the images), so each
model gives one IFE per block pair and timestep. The paper's "ranges" per depth group become, per model,
the lowest and highest IFE over the group's block pairs and the timesteps; the claim is judged on their
mean over every model of both datasets (a t-interval over models), and each model's own value carries a
percentile-bootstrap CI over its held-out images (images resampled jointly for all pairs and timesteps).
Two readings of Eq. 4 (``READINGS["ife"]``): binned, or the kNN estimator. Chapters 5 and 12 read them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis import replicates
from circuitnb.analysis.claim_rows import claim_row
from circuitnb.analysis.convergence import heldout_images
from circuitnb.core import results
from circuitnb.core.config import Config
from circuitnb.measures import information, metrics
from circuitnb.measures.verdicts import Estimate, replicate_ci

DEPTH_GROUPS = ("early", "middle", "late")
ENDS = {"lo": ("low", np.min), "hi": ("high", np.max)}      # claim suffix -> column, reduction


def depth_group(depth: float) -> str:
    """Thirds of the normalised depth 0..1 (encoder input to decoder output)."""
    return DEPTH_GROUPS[min(int(depth * 3), 2)]


def _pairs(sw) -> pd.DataFrame:
    depth = np.linspace(0.0, 1.0, len(sw.block_names))
    mid = (depth[:-1] + depth[1:]) / 2                        # a pair's depth: its blocks' midpoint
    return pd.DataFrame(dict(pair=[f"{a}->{b}" for a, b in zip(sw.block_names[:-1], sw.block_names[1:])],
                             source=sw.block_names[:-1], target=sw.block_names[1:], depth=mid,
                             group=[depth_group(d) for d in mid]))


def _each_pair(ife):
    """A reading of Eq. 4 on one pair of samples, applied to every pair of ``[..., n]`` arrays."""
    return lambda a, b: np.array([ife(x, y) for x, y in zip(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]))]
                                 ).reshape(a.shape[:-1])


# READINGS["ife"]: reading -> fn(a, b) with a, b [..., n] first-PC scores, giving IFE [...]
IFE_READINGS = {"binned": _each_pair(metrics.ife_from_scores), "knn": information.ife_knn}


def _ife_grid(sw, idx: np.ndarray, reading: str = "binned") -> np.ndarray:
    """IFE ``[timesteps, pairs]`` of one model on the images ``idx`` (Eq. 4 from first-PC scores), by one
    reading of Eq. 4 (``READINGS["ife"]``: binned, or the kNN estimator); the pairs are adjacent blocks."""
    scores = np.stack([[sw.pc[(t, block)][idx] for block in sw.block_names] for t in sw.timesteps])  # [T, blocks, n]
    return IFE_READINGS[reading](scores[:, :-1], scores[:, 1:])


def ife_model(sw, n_bootstrap: int, seed: int = 0, reading: str = "binned") -> dict[str, pd.DataFrame]:
    """One model's IFE: ``values`` (t, pair, depth, group, ife) and ``ranges`` (per group: low and high end
    over its pairs and timesteps, each with percentile-bootstrap 95% and 90% CIs over images)."""
    n = len(sw.pc[(sw.timesteps[0], sw.block_names[0])])
    pairs = _pairs(sw)
    grid = _ife_grid(sw, np.arange(n), reading)
    rng = np.random.default_rng(seed)
    boots = np.stack([_ife_grid(sw, rng.integers(0, n, n), reading) for _ in range(n_bootstrap)])   # [B, T, P]
    values = pd.concat([pairs.assign(t=t, ife=grid[i]) for i, t in enumerate(sw.timesteps)], ignore_index=True)
    rows = []
    for group in DEPTH_GROUPS:
        cols = (pairs.group == group).to_numpy()
        if not cols.any():
            continue
        row = dict(group=group, n_images=n)
        for name, reduce in ENDS.values():
            b = reduce(boots[:, :, cols], axis=(1, 2))
            row.update({name: float(reduce(grid[:, cols])),
                        **{f"{name}_{k}": float(np.percentile(b, q)) for k, q in
                           (("ci_low", 2.5), ("ci_high", 97.5), ("eq_low", 5), ("eq_high", 95))}})
        rows.append(row)
    return dict(values=values, ranges=pd.DataFrame(rows))


def ife_models(cfg: Config, models: dict, sweeps: dict, reading: str = "binned") -> dict[str, pd.DataFrame]:
    """:func:`ife_model` of every replicate model (cached), concatenated with dataset and replicate."""
    nb, seed = cfg.analysis.n_bootstrap, cfg.run.seed
    def one(name, model_and_sweep, wait=True):
        m, sw = model_and_sweep
        return results.cached(cfg, "ife_model", m, lambda: ife_model(sw, nb, seed, reading),
                              dataset=sw.dataset, reading=reading, data=heldout_images(cfg, name), wait=wait)
    out = replicates.each_of({name: list(zip(models[name], sweeps[name])) for name in models}, one)
    frames = {part: replicates.per_replicate(out, lambda d, part=part: d[part]) for part in ("values", "ranges")}
    return {part: f[["dataset", "replicate", *f.columns[:-2]]] for part, f in frames.items()}


def _model_estimate(r, name: str) -> Estimate:
    return Estimate(r[name], r[f"{name}_ci_low"], r[f"{name}_ci_high"], int(r["n_images"]),
                    more=((0.90, r[f"{name}_eq_low"], r[f"{name}_eq_high"]),))


def ife_claims(per_model: pd.DataFrame) -> list[dict]:
    """ife_{group}_{lo,hi}: the mean over all models of both datasets, each model judged on its bootstrap CI."""
    rows = []
    for group, g in per_model.groupby("group", sort=False):
        for suffix, (name, _) in ENDS.items():
            per = [_model_estimate(r, name) for _, r in g.iterrows()]
            rows.append(claim_row(f"ife_{group}_{suffix}", replicate_ci(g[name]), per, unit="fraction 0-1",
                                  reason=f"per model the {name} end over the {group} block pairs and "
                                         f"timesteps; mean over {len(g)} models of both datasets"))
    return rows

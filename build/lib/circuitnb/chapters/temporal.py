"""Chapter 5 (§4.4-4.5, Figs. 5-6): information flow by depth, and denoising phases found from the data."""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.measures import claims
from circuitnb.chapters.sweep import ife_table

DEPTH_GROUPS = ("early", "middle", "late")


def depth_group(depth: float) -> str:
    """Thirds of the normalised depth 0..1 (encoder input to decoder output)."""
    return DEPTH_GROUPS[min(int(depth * 3), 2)]


def ife_by_depth(sweeps: dict, n_bootstrap: int = 200, seed: int = 0) -> pd.DataFrame:
    """IFE (Eq. 4) of each consecutive block pair at each t, both datasets, with its depth group."""
    frame = pd.concat([ife_table(sw, n_bootstrap, seed) for sw in sweeps.values()], ignore_index=True)
    frame["group"] = frame.depth.map(depth_group)
    return frame


def ife_ranges(ife: pd.DataFrame) -> pd.DataFrame:
    """Low and high end of IFE per depth group, over pairs, timesteps and datasets (the paper's ranges)."""
    return ife.groupby("group").ife.agg(low="min", high="max").reindex(list(DEPTH_GROUPS)).reset_index()


def ife_claims(ranges: pd.DataFrame) -> list[dict]:
    rows = []
    for r in ranges.itertuples():
        rows.append(claims.row(f"ife_{r.group}_lo", r.low, definition="metrics.information_flow_efficiency (min)"))
        rows.append(claims.row(f"ife_{r.group}_hi", r.high, definition="metrics.information_flow_efficiency (max)"))
    return rows


def profile(sw) -> pd.DataFrame:
    """One row per t: mean feature complexity of each block, mean entropy of each layer, accuracy."""
    fc = sw.blocks.pivot_table(index="t", columns="block", values="complexity")[sw.block_names]
    ent = sw.heads.pivot_table(index="t", columns="layer", values="entropy")[sw.layers]
    acc = sw.mse.groupby("t").accuracy.mean()
    return pd.concat([fc.add_prefix("complexity "), ent.add_prefix("entropy "), acc.rename("accuracy")], axis=1)


def segment(features: np.ndarray, k: int) -> tuple[list[int], float]:
    """Optimal split of the rows of ``features`` [T, F] into ``k`` contiguous segments (least squares).

    Dynamic programming over segment ends (exact, O(k T^2)). Returns the start
    index of each segment after the first, and the total within-segment SSE.
    """
    x = np.asarray(features, float)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"parameter 'k' = {k} must be in [1, {n}]")
    csum = np.vstack([np.zeros(x.shape[1]), np.cumsum(x, 0)])
    csq = np.concatenate([[0.0], np.cumsum((x ** 2).sum(1))])

    def sse(i, j):                      # rows i..j-1
        s = csum[j] - csum[i]
        return csq[j] - csq[i] - (s ** 2).sum() / (j - i)
    cost = np.full((k + 1, n + 1), np.inf)
    arg = np.zeros((k + 1, n + 1), int)
    cost[0, 0] = 0.0
    for m in range(1, k + 1):
        for j in range(m, n + 1):
            options = [cost[m - 1, i] + sse(i, j) for i in range(m - 1, j)]
            best = int(np.argmin(options))
            cost[m, j], arg[m, j] = options[best], best + m - 1
    starts, j = [], n
    for m in range(k, 0, -1):
        i = arg[m, j]
        if m > 1:
            starts.append(int(i))
        j = i
    return sorted(starts), float(cost[k, n])


def phases(prof: pd.DataFrame, max_k: int = 6) -> pd.DataFrame:
    """Phase boundaries from the data: segment the standardised profile for k = 1..max_k.

    Each column is z-scored over t, so every feature weighs the same. The
    number of phases is chosen by BIC (Gaussian segments); the paper's four
    phases are not assumed. Rows are ordered by *denoising* order (high t first).
    Columns: k, sse, bic, chosen, boundaries (t values where a new phase starts).
    """
    prof = prof.sort_index(ascending=False)                 # denoising runs from t = T to 0
    z = ((prof - prof.mean()) / prof.std(ddof=0).replace(0, 1)).to_numpy()
    n, f = z.shape
    rows = []
    for k in range(1, min(max_k, n) + 1):
        starts, sse = segment(z, k)
        params = k * f + (k - 1)
        bic = n * f * np.log(max(sse, 1e-12) / (n * f)) + params * np.log(n * f)
        rows.append(dict(k=k, sse=sse, bic=bic, boundaries=[int(prof.index[s]) for s in starts]))
    out = pd.DataFrame(rows)
    out["chosen"] = out.bic == out.bic.min()
    return out

"""§4.5: denoising phases found from the data, or a smooth profile over t; per replicate model.

    prof = profile(sweep)                       # one row per t: block complexity, layer entropy, accuracy
    phase_test(prof)                            # BIC-best segmentation against a cubic fit: "no phases" or "k phases"
    phase_bootstrap(sweep, 100)                 # the same test on image-bootstrap profiles

Phases are found per model by segmenting a dense profile over ``cfg.analysis.n_phase_timesteps`` timesteps
(:func:`dense_timesteps`; exact least squares, number of phases by BIC); the paper's four phases are not
assumed. Chapters 5 and 12 read them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from circuitnb.analysis.images import train_timesteps
from circuitnb.core.config import Config

SMOOTH_DEGREE = 3                # the smooth alternative to phases: a cubic in t per feature


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
    z = _z(prof).to_numpy()
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


def _z(prof: pd.DataFrame) -> pd.DataFrame:
    prof = prof.sort_index(ascending=False)                 # denoising runs from t = T to 0
    return (prof - prof.mean()) / prof.std(ddof=0).replace(0, 1)


def smooth_fit(prof: pd.DataFrame, degree: int = SMOOTH_DEGREE) -> dict:
    """The smooth alternative to phases: each z-scored column of the profile fitted by a polynomial of
    ``degree`` in t (least squares). Returns sse and bic on the same scale as :func:`phases`."""
    z = _z(prof)
    n, f = z.shape
    t = np.asarray(z.index, float)
    x = np.vander((t - t.mean()) / (np.ptp(t) or 1.0), degree + 1)
    coef = np.linalg.lstsq(x, z.to_numpy(), rcond=None)[0]
    sse = float(((z.to_numpy() - x @ coef) ** 2).sum())
    return dict(sse=sse, bic=n * f * np.log(max(sse, 1e-12) / (n * f)) + (degree + 1) * f * np.log(n * f))


def phase_test(prof: pd.DataFrame, max_k: int = 6, degree: int = SMOOTH_DEGREE) -> dict:
    """Phases or a smooth profile: the BIC-best segmentation (:func:`phases`) against :func:`smooth_fit`.

    "no phases" when the smooth fit's BIC is lower or one segment wins; else the segmentation's k. Keys:
    k_segments, bic_segments, bic_smooth, smooth_wins, phases (0 = no phases), boundaries, verdict.
    """
    seg = phases(prof, max_k)
    best = seg[seg.chosen].iloc[0]
    smooth = smooth_fit(prof, degree)
    none = bool(smooth["bic"] <= best.bic or best.k == 1)
    return dict(k_segments=int(best.k), bic_segments=float(best.bic), bic_smooth=smooth["bic"],
                smooth_wins=bool(smooth["bic"] <= best.bic), phases=0 if none else int(best.k),
                boundaries="none" if none else ", ".join(map(str, best.boundaries)),
                verdict="no phases" if none else f"{int(best.k)} phases")


def _profile_arrays(sw) -> tuple[list[int], dict[str, np.ndarray]]:
    """Per profile column (as :func:`profile`), its ``[t, image]`` values; heads averaged per layer first."""
    ent = sw.heads.groupby(["t", "layer", "image"], as_index=False).entropy.mean()
    cols = {**{f"complexity {b}": g.pivot_table(index="t", columns="image", values="complexity")
               for b, g in sw.blocks.groupby("block", sort=False)},
            **{f"entropy {a}": g.pivot_table(index="t", columns="image", values="entropy")
               for a, g in ent.groupby("layer", sort=False)},
            "accuracy": sw.mse.pivot_table(index="t", columns="image", values="accuracy")}
    t = list(next(iter(cols.values())).index)
    return t, {k: v.to_numpy() for k, v in cols.items()}


def phase_bootstrap(sw, n_bootstrap: int, seed: int = 0) -> pd.DataFrame:
    """:func:`phase_test` on ``n_bootstrap`` profiles from resampled images (one row each): how stable
    "no phases" / "k phases" is to which images were analysed."""
    t, arrays = _profile_arrays(sw)
    n = next(iter(arrays.values())).shape[1]
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(n_bootstrap):
        w = np.bincount(rng.integers(0, n, n), minlength=n) / n
        prof = pd.DataFrame({k: v @ w for k, v in arrays.items()}, index=pd.Index(t, name="t"))
        rows.append(dict(resample=b, **phase_test(prof)))
    return pd.DataFrame(rows)


def dense_timesteps(cfg: Config) -> tuple[int, ...]:
    """``n_phase_timesteps`` timesteps spread evenly over the whole schedule (the profile that is segmented)."""
    t = np.linspace(0, train_timesteps(cfg) - 1, cfg.analysis.n_phase_timesteps).round()
    return tuple(int(v) for v in np.unique(t))

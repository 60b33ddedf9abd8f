"""Head "functions" (§4.3, Table 2) as tested claims rather than names.

    targets = function_targets(x0, labels, grid=8)          # per-image target maps at the heads' grid
    table = score_heads(received, targets, uniformity)      # one row per head and function
    labels = assign_functions(table)                        # one tested label per head (or "unassigned")

The paper names four head functions without saying how they were assigned. We
score every head against a measurable target for each:

================  ==============================================================
edge detection    Sobel gradient magnitude of the clean image
texture analysis  local standard deviation (3 x 3) of the clean image
semantic          share of the cell covered by facial features (eyes, brows, nose,
integration       mouth) in the synthetic generator's part labels
global structure  closeness to uniform attention: H / Hmax (Eq. 1)
================  ==============================================================

A head's map score is the mean over images of the Pearson correlation between
the attention each key position receives (averaged over queries) and the
target pooled to the attention grid. Its p-value is a permutation test that
re-pairs attention maps with other images' targets: a head "detects edges" only
if it follows *this* image's edges better than another image's. The global
score is tested one-sided against ``GLOBAL_UNIFORMITY``. p-values are
Bonferroni-corrected over all heads x functions, and a map function counts only
with a positive mean correlation.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import ndimage

from circuitnb.core.readings import READINGS
from circuitnb.data.synthetic import PART_ID

FUNCTIONS = ("edge detection", "texture analysis", "semantic integration", "global structure")
SEMANTIC_PARTS = ("eyes", "brows", "nose", "mouth")
# H / Hmax above which attention counts as global (near uniform): the default reading of "global_rule"
# (circuitnb.core.readings); Table 2's own global head (H / Hmax = 1 - S of Eq. 2) must pass it.
GLOBAL_THRESHOLDS = {"h090": 0.9, "h080": 0.8}
GLOBAL_UNIFORMITY = GLOBAL_THRESHOLDS[READINGS["global_rule"].default]


def pool(maps: np.ndarray, grid: int) -> np.ndarray:
    """Average-pool ``[N, H, W]`` maps to ``[N, grid * grid]`` (row-major, as attention keys are ordered)."""
    n, h, w = maps.shape
    if h % grid or w % grid:
        raise ValueError(f"image size {h}x{w} is not a multiple of the attention grid {grid}")
    return maps.reshape(n, grid, h // grid, grid, w // grid).mean((2, 4)).reshape(n, grid * grid)


def function_targets(x0: np.ndarray, labels: np.ndarray | None, grid: int) -> dict[str, np.ndarray]:
    """Target maps ``[N, grid * grid]`` for each map-based function; ``labels`` None drops "semantic"."""
    gray = np.asarray(x0, float).mean(1)                           # [N, H, W]
    edge = np.hypot(ndimage.sobel(gray, axis=1), ndimage.sobel(gray, axis=2))
    mean = ndimage.uniform_filter(gray, size=(1, 3, 3))
    sq = ndimage.uniform_filter(gray ** 2, size=(1, 3, 3))
    texture = np.sqrt(np.clip(sq - mean ** 2, 0, None))
    out = {"edge detection": pool(edge, grid), "texture analysis": pool(texture, grid)}
    if labels is not None:
        semantic = np.isin(labels, [PART_ID[p] for p in SEMANTIC_PARTS]).astype(float)
        out["semantic integration"] = pool(semantic, grid)
    return out


def _standardise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(-1, keepdims=True)
    sd = x.std(-1, keepdims=True)
    return np.divide(x, sd, out=np.zeros_like(x), where=sd > 1e-12)


def map_score(received: np.ndarray, target: np.ndarray, n_permutations: int = 1000,
              seed: int = 0) -> tuple[float, float]:
    """Mean per-image Pearson r of ``received`` [N, K] with ``target`` [N, K], and its permutation p-value.

    The null re-pairs maps with other images' targets (a random permutation of
    the images); p = (1 + #null >= observed) / (1 + n_permutations), one-sided.
    """
    a, b = _standardise(np.asarray(received, float)), _standardise(np.asarray(target, float))
    r = a @ b.T / a.shape[1]                                       # r[i, j]: map of i vs target of j
    observed = float(np.diag(r).mean())
    rng = np.random.default_rng(seed)
    n = len(r)
    perms = np.argsort(rng.random((n_permutations, n)), axis=1)
    null = r[np.arange(n), perms].mean(1)
    return observed, float((1 + (null >= observed).sum()) / (1 + n_permutations))


def global_p(uniformity, threshold: float = GLOBAL_UNIFORMITY) -> float:
    """One-sided p of "mean H / Hmax > threshold" over images (t-test; 0 or 1 when H / Hmax is constant)."""
    u = np.asarray(uniformity, float)
    if np.ptp(u) < 1e-12:                                          # constant: the t-test is undefined
        return 0.0 if u[0] > threshold else 1.0
    return float(pg.ttest(u, threshold, alternative="greater")["p_val"].iloc[0])


def with_global_threshold(table: pd.DataFrame, uniformity: np.ndarray, threshold: float,
                          alpha: float = 0.05) -> pd.DataFrame:
    """:func:`score_heads`' table with the global test redone at another ``threshold`` (the map tests kept):
    ``uniformity`` ``[N, heads]`` in the table's head order. Bonferroni and ``significant`` recomputed."""
    out = table.copy()
    glob = (out.function == "global structure").to_numpy()
    out.loc[glob, "p"] = [global_p(uniformity[:, h], threshold) for h in range(int(glob.sum()))]
    out["p_bonferroni"] = np.minimum(out["p"] * len(out), 1.0)
    out["significant"] = (out["p_bonferroni"] < alpha) & (glob | (out["score"] > 0))
    return out


def score_heads(received: np.ndarray, targets: dict[str, np.ndarray], uniformity: np.ndarray,
                head_names, n_permutations: int = 1000, seed: int = 0, alpha: float = 0.05,
                threshold: float = GLOBAL_UNIFORMITY, family_size: int | None = None) -> pd.DataFrame:
    """Score every head against every function; one row per (head, function).

    ``received`` ``[N, heads, K]``; ``uniformity`` ``[N, heads]`` = H / Hmax per
    image. ``n_permutations`` is raised where needed so that the smallest
    attainable p survives the Bonferroni correction over all heads x functions.
    Columns: head, function, score, p, p_bonferroni, significant. ``family_size``: the number of tests
    Bonferroni counts when these heads are one part of a model scored in parts (its layers at other
    resolutions, each against targets at its own grid); default, this call's tests.
    """
    # A permutation p is at least 1 / (n + 1); with m tests Bonferroni needs it below alpha / m, so the
    # number of permutations is raised to give ten times that resolution (else nothing could ever pass).
    n_tests = family_size or len(head_names) * (len(targets) + 1)
    n_permutations = max(n_permutations, int(np.ceil(10 * n_tests / alpha)))
    rows = []
    for h, name in enumerate(head_names):
        for func, target in targets.items():
            score, p = map_score(received[:, h], target, n_permutations, seed + h)
            rows.append(dict(head=name, function=func, score=score, p=p))
        u = np.asarray(uniformity[:, h], float)
        rows.append(dict(head=name, function="global structure", score=float(u.mean()), p=global_p(u, threshold)))
    table = pd.DataFrame(rows)
    table["p_bonferroni"] = np.minimum(table["p"] * n_tests, 1.0)
    # A map function also needs a positive correlation: a head can follow *this* image's edges less
    # negatively than another image's (a small permutation p) while attending away from edges.
    positive = (table["function"] == "global structure") | (table["score"] > 0)
    table["significant"] = (table["p_bonferroni"] < alpha) & positive
    return table


def assign_functions(table: pd.DataFrame) -> pd.DataFrame:
    """One label per head: global structure if that test holds, else the significant map function
    with the highest score, else ``"unassigned"``. Columns: head, function, score, p_bonferroni."""
    rows = []
    for head, g in table.groupby("head", sort=False):
        glob = g[(g.function == "global structure") & g.significant]
        maps = g[(g.function != "global structure") & g.significant & (g.score > 0)]
        if len(glob):
            best = glob.iloc[0]
        elif len(maps):
            best = maps.loc[maps.score.idxmax()]
        else:
            rows.append(dict(head=head, function="unassigned", score=np.nan, p_bonferroni=np.nan))
            continue
        rows.append(dict(head=head, function=best.function, score=best.score, p_bonferroni=best.p_bonferroni))
    return pd.DataFrame(rows)

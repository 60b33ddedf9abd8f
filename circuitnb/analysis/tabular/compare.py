"""Part III's comparison (the tabular-VAE abstract's claims (i)-(iv)) as statistics over per-model frames.

    c = domain_contrast(tab, img, by=["kind", "measure"])  # tabular / image per architecture, same-data null beside
    correlation(x, y)                                      # Pearson r over models: 95% and 90% CIs (Fisher z), p
    p = pairwise(per, "ces")                               # every architecture pair per table: Welch p, Holm-Sidak
    detected(p, pairwise(per, "nelbo"))                    # how many reference differences CES also finds

The model is the unit throughout (STYLE §8): a frame has one row per model and measure (kind, dataset,
replicate, measure, value), as :func:`circuitnb.analysis.tabular.common.measures_frame` makes it.

* :func:`domain_contrast` is :func:`circuitnb.analysis.replicates.dataset_contrast` (Parts I and II's rule) with
  the image models in the place of dataset A and the tabular ones in the place of B: tabular "model r" is the
  r-th seed of the architecture on every table (its per-table values are its observations), image model r the
  r-th shapes VAE. The effect (default: the ratio tabular / image, geometric mean over seed pairs, t-interval)
  is set beside the same-data null: the same ratio between two seeds on the same data (tables, or images).
* :func:`correlation`: scipy's Pearson r with its Fisher-z intervals, the model as the unit.
* :func:`pairwise`: Welch's t over the replicate values of two architectures on one table, every pair of every
  table one family, Holm-Sidak adjusted (statsmodels' ``multipletests``, ``holm-sidak``).
* :func:`detected`: a reference difference is detected when the test measure's difference on the same table
  and pair is significant too, in the same direction as the reference's.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from circuitnb.analysis.replicates import A, B, dataset_contrast
from circuitnb.measures.verdicts import Estimate

DOMAINS = {"image": A, "tabular": B}         # dataset_contrast's B vs A: tabular vs image


def domain_contrast(tab: pd.DataFrame, img: pd.DataFrame, by: list[str], measure: str = "ratio",
                    level: float = 0.95) -> pd.DataFrame:
    """Tabular vs image per group ``by`` (e.g. ["kind", "measure"]; ["measure"] pools the architectures), with
    the same-data null: :func:`~circuitnb.analysis.replicates.dataset_contrast`'s columns (``effect``, ``ci_low``,
    ``ci_high``, ``eq_low``, ``eq_high``, ``null_low``, ``null_high``, ``beyond_null``, ``p_models``, ``n_pairs``,
    ``per_pair``), ``n_tab`` and ``n_img`` (models behind each side) added, the pair estimates dropped.

    Only groups present on both sides are compared; NaN values (a measure undefined on a model) are left out.
    """
    # dataset_contrast names its own effect kind "measure": ours travels as "quantity" meanwhile.
    keep = ["quantity" if c == "measure" else c for c in by if c != "dataset"]
    t = tab.dropna(subset=["value"]).rename(columns={"measure": "quantity"}).assign(dataset=DOMAINS["tabular"])
    i = img.dropna(subset=["value"]).rename(columns={"measure": "quantity"}).assign(dataset=DOMAINS["image"])
    both = set(map(tuple, t[keep].drop_duplicates().to_numpy())) & set(map(tuple, i[keep].drop_duplicates().to_numpy()))
    frame = pd.concat([t, i], ignore_index=True)
    frame = frame[[tuple(r) in both for r in frame[keep].to_numpy()]]
    if frame.empty:
        return pd.DataFrame()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # One image value per model: its image-level pair CI is undefined (variance of one value), by design.
        warnings.simplefilter("ignore", RuntimeWarning)
        out = dataset_contrast(frame, by=keep, measure=measure, level=level)
    n = frame.groupby([*keep, "dataset"]).replicate.nunique()
    out["n_tab"] = [int(n.get((*k, B), 0)) if keep else 0 for k in out[keep].itertuples(index=False)]
    out["n_img"] = [int(n.get((*k, A), 0)) if keep else 0 for k in out[keep].itertuples(index=False)]
    return out.drop(columns=["pair_estimates"]).rename(columns={"measure": "contrast", "quantity": "measure"})


def correlation(x, y, level: float = 0.95) -> dict:
    """``correlation(x, y)``: Pearson r over paired values (models) with CIs at ``level`` and 2 level - 1 (Fisher
    z, scipy), its two-sided p and n; ``estimate`` is the verdict-ready :class:`Estimate`. Pairs with a NaN are
    dropped; fewer than 4 pairs (or a constant side): r, CIs and p are nan."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    if n < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        nan = float("nan")
        return dict(r=nan, ci_low=nan, ci_high=nan, eq_low=nan, eq_high=nan, p=nan, n=n,
                    estimate=Estimate(nan, nan, nan, n, level))
    res = sps.pearsonr(x, y)
    wide, tight = (res.confidence_interval(lv) for lv in (level, 2 * level - 1))
    r = float(res.statistic)
    est = Estimate(r, float(wide.low), float(wide.high), n, level,
                   more=((2 * level - 1, float(tight.low), float(tight.high)),))
    return dict(r=r, ci_low=est.low, ci_high=est.high, eq_low=float(tight.low), eq_high=float(tight.high),
                p=float(res.pvalue), n=n, estimate=est)


def pairwise(per: pd.DataFrame, measure: str, by: str = "dataset", alpha: float = 0.05,
             kinds: list[str] | None = None) -> pd.DataFrame:
    """Every pair of architectures within each ``by`` group (a table) on ``measure``: Welch's t over their replicate
    values, the family (all pairs of all groups with a defined p) Holm-Sidak adjusted at ``alpha``.

    Columns: ``by``, a, b, mean_a, mean_b, diff (a - b), p, p_holm_sidak, reject. A pair whose p is undefined
    (fewer than 2 values on a side, or no spread on both) is kept with p nan and reject False.
    """
    sub = per[per.measure == measure]
    rows = []
    for g, grp in sub.groupby(by, sort=False):
        vals = {k: v.value.dropna().to_numpy() for k, v in grp.groupby("kind", sort=False)}
        order = [k for k in (kinds or list(vals)) if k in vals]
        for a, b in itertools.combinations(order, 2):
            x, y = vals[a], vals[b]
            p = np.nan
            if min(len(x), len(y)) >= 2 and (np.ptp(x) > 0 or np.ptp(y) > 0):
                p = float(sps.ttest_ind(x, y, equal_var=False).pvalue)
            rows.append({by: g, "a": a, "b": b, "mean_a": float(np.mean(x)) if len(x) else np.nan,
                         "mean_b": float(np.mean(y)) if len(y) else np.nan, "p": p})
    out = pd.DataFrame(rows, columns=[by, "a", "b", "mean_a", "mean_b", "p"])
    out["diff"] = out.mean_a - out.mean_b
    out["p_holm_sidak"], out["reject"] = np.nan, False
    ok = out.p.notna()
    if ok.any():
        reject, p_adj, _, _ = multipletests(out.loc[ok, "p"].to_numpy(), alpha=alpha, method="holm-sidak")
        out.loc[ok, "p_holm_sidak"], out.loc[ok, "reject"] = p_adj, reject
    out["reject"] = out.reject.astype(bool)
    return out


def detected(test: pd.DataFrame, reference: pd.DataFrame, by: str = "dataset") -> dict:
    """How many of the reference's significant differences (:func:`pairwise`) the test measure also finds on the
    same table and pair, in the same direction: ``n_reference``, ``n_detected``, ``n_test`` (the test's own
    significant differences) and ``table`` (the reference pairs with both verdicts)."""
    keys = [by, "a", "b"]
    both = reference.merge(test, on=keys, suffixes=("_ref", "_test"))
    hit = both.reject_ref & both.reject_test & (np.sign(both.diff_ref) == np.sign(both.diff_test))
    table = both.assign(detected=hit)[[*keys, "diff_ref", "p_holm_sidak_ref", "reject_ref", "diff_test",
                                       "p_holm_sidak_test", "reject_test", "detected"]]
    return dict(n_reference=int(both.reject_ref.sum()), n_detected=int(hit.sum()), n_test=int(test.reject.sum()),
                n_pairs=len(both), table=table)

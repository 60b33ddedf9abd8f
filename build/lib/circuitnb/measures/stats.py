"""The statistics framework of §3.3 through pingouin and scipy, as tidy frames.

    row = compare(a, b, label="entropy t=100")      # one comparison -> dict
    table = compare_table({"t=100": (a1, b1), "t=300": (a2, b2)})   # + Bonferroni and Holm

Every comparison: Welch's t-test, Cohen's d with its 95% CI, a bootstrap 95%
CI of the difference of means, the achieved power and the n per group needed
for 0.95 power at the observed d, and a two-sample Kolmogorov-Smirnov test.
A table's rows form one family for the multiple-comparison corrections.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats as sps


def _power(d: float, nx: int, ny: int, alpha: float) -> float:
    if not np.isfinite(d) or d == 0:
        return float(alpha)
    return float(pg.power_ttest2n(nx=nx, ny=ny, d=abs(d), alpha=alpha))


def _n_for_power(d: float, power: float, alpha: float) -> float:
    """Per-group n for ``power`` at effect size ``d`` (two-sided, equal groups); inf when d = 0."""
    if not np.isfinite(d) or abs(d) < 1e-6:
        return float("inf")
    try:
        return float(np.ceil(pg.power_ttest(d=abs(d), power=power, alpha=alpha)))
    except (ValueError, RuntimeError):     # solver fails for huge d: two per group already suffice
        return 2.0


def compare(a, b, label: str = "", alpha: float = 0.05, n_bootstrap: int = 2000, seed: int = 0) -> dict:
    """Compare samples ``a`` and ``b`` (e.g. synthetic vs CelebA); returns one tidy row."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"{label}: need >= 2 values per group, got {len(a)} and {len(b)}")
    welch = pg.ttest(a, b, correction=True)
    d = float(pg.compute_effsize(a, b, eftype="cohen"))
    d_ci = pg.compute_esci(stat=d, nx=len(a), ny=len(b), eftype="cohen", confidence=0.95, decimals=6)
    boot = sps.bootstrap((a, b), lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                         n_resamples=n_bootstrap, confidence_level=0.95, method="percentile",
                         rng=np.random.default_rng(seed), vectorized=True)
    ks = sps.ks_2samp(a, b)
    return dict(
        comparison=label, n_a=len(a), n_b=len(b), mean_a=a.mean(), sd_a=a.std(ddof=1), mean_b=b.mean(),
        sd_b=b.std(ddof=1), diff=a.mean() - b.mean(),
        diff_ci_low=float(boot.confidence_interval.low), diff_ci_high=float(boot.confidence_interval.high),
        t=float(welch["T"].iloc[0]), dof=float(welch["dof"].iloc[0]), p=float(welch["p_val"].iloc[0]),
        cohen_d=d, d_ci_low=float(d_ci[0]), d_ci_high=float(d_ci[1]),
        power=_power(d, len(a), len(b), alpha), n_for_095_power=_n_for_power(d, 0.95, alpha),
        ks_stat=float(ks.statistic), ks_p=float(ks.pvalue),
    )


def correct(pvals, alpha: float = 0.05) -> pd.DataFrame:
    """Bonferroni and Holm adjusted p-values and rejections for one family of tests."""
    pvals = np.asarray(pvals, float)
    rej_b, p_b = pg.multicomp(pvals, alpha=alpha, method="bonf")
    rej_h, p_h = pg.multicomp(pvals, alpha=alpha, method="holm")
    return pd.DataFrame({"p_bonferroni": p_b, "reject_bonferroni": rej_b, "p_holm": p_h, "reject_holm": rej_h})


def compare_table(groups: dict, alpha: float = 0.05, n_bootstrap: int = 2000, seed: int = 0) -> pd.DataFrame:
    """:func:`compare` for each ``label -> (a, b)``, with the family's corrections; one row each."""
    rows = [compare(a, b, label, alpha, n_bootstrap, seed) for label, (a, b) in groups.items()]
    frame = pd.DataFrame(rows)
    return pd.concat([frame, correct(frame["p"], alpha)], axis=1)

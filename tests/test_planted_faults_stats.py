"""Hand-worked cases that catch the statistics faults a review planted and the suite missed.

Each test states its expected numbers by hand (literal t quantiles, explicit logs), never by calling the
code or library under test a second time:
* the same-data null of :func:`circuitnb.analysis.replicates.dataset_contrast` on 3 + 3 models: its range
  (both datasets, both orientations, both edges), the geometric mean over pairs, and a point estimate
  beyond the null whose CI is not (not claimed);
* DCI (Eastwood & Williams 2018) on 6 latents for 3 factors with a lopsided importance matrix;
* the readings table's ``flips``: grouped by claim and undefined quantity, not by claim alone;
* verdicts at alpha = 0.10, where alpha = 0.05 gives another verdict;
* Holm's step-down adjustment on literal p-values.
"""
import math

import numpy as np
import pandas as pd
import pytest

from circuitnb.analysis import readings
from circuitnb.analysis import replicates as R
from circuitnb.measures import disentanglement, stats, verdicts
from circuitnb.measures.verdicts import Estimate, equivalence_verdict, measured_row, replicate_ci

T_975_DF2 = 4.302652729749462        # scipy.stats.t.ppf(0.975, 2), as in a t table: 4.303
T_95_DF2 = 2.9199855803537242        # t.ppf(0.95, 2): 2.920
T_90_DF2 = 1.8856180831641272        # t.ppf(0.90, 2): 1.886


# --- the same-data null --------------------------------------------------------------------------------
def models(synthetic: list[float], celeba: list[float]) -> pd.DataFrame:
    """Three images per model at m - 0.01, m, m + 0.01: each model's image mean is m."""
    rows = [dict(dataset=ds, replicate=r, t=100, image=i, value=m + dv)
            for ds, means in (("synthetic", synthetic), ("celeba", celeba))
            for r, m in enumerate(means) for i, dv in enumerate((-0.01, 0.0, 0.01))]
    return pd.DataFrame(rows)


def log_t_interval(ratios: list[float]) -> tuple[float, float, float]:
    """Geometric mean of the pair ratios and its 95% t-interval on the log scale (n = 3, df = 2), by hand."""
    logs = [math.log(x) for x in ratios]
    mean = sum(logs) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in logs) / 2)
    half = T_975_DF2 * sd / math.sqrt(3)
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def test_null_range_spans_both_datasets_both_orientations_and_the_ratio_is_geometric():
    # Within-dataset ratios m_j / m_i, i != j: synthetic 1.1, 1.2, 1.2/1.1 and their inverses; CelebA 3.9/3.0 = 1.3
    # (the largest), 3.3/3.0 = 1.1, 3.9/3.3 and their inverses. So the null is [1/1.3, 1.3]: its low edge is an
    # inverse (celeba 3.0 / 3.9), which neither the one-orientation ratios (lowest 3.3/3.9 = 0.846) nor the
    # synthetic models alone (lowest 1/1.2 = 0.833) reach.
    row = R.dataset_contrast(models([1.0, 1.1, 1.2], [3.0, 3.9, 3.3]), ["t"], "ratio").iloc[0]
    assert (row.null_low, row.null_high) == pytest.approx((1 / 1.3, 1.3), rel=1e-9)
    pairs = [3.0 / 1.0, 3.9 / 1.1, 3.3 / 1.2]                    # 3, 3.545, 2.75
    geo, lo, hi = log_t_interval(pairs)                          # 3.0743 [2.2323, 4.2339]
    assert geo == pytest.approx((3.0 * 3.9 / 1.1 * 2.75) ** (1 / 3), rel=1e-12)
    assert row.effect == pytest.approx(geo, rel=1e-9)
    assert row.effect != pytest.approx(sum(pairs) / 3, rel=1e-4)   # the arithmetic mean, 3.0985, is not it
    assert (row.ci_low, row.ci_high) == pytest.approx((lo, hi), rel=1e-9)
    assert row.ci_low > row.null_high and row.beyond_null and row.n_pairs == 3


def test_an_effect_below_the_null_is_beyond_it_too():
    # The same models with the datasets swapped: pair ratios 1/3, 1.1/3.9, 1.2/3.3, all far below the null.
    row = R.dataset_contrast(models([3.0, 3.9, 3.3], [1.0, 1.1, 1.2]), ["t"], "ratio").iloc[0]
    assert (row.null_low, row.null_high) == pytest.approx((1 / 1.3, 1.3), rel=1e-9)
    geo, lo, hi = log_t_interval([1 / 3.0, 1.1 / 3.9, 1.2 / 3.3])  # 0.3253 [0.2362, 0.4480]
    assert (row.effect, row.ci_low, row.ci_high) == pytest.approx((geo, lo, hi), rel=1e-9)
    assert row.ci_high < row.null_low and row.beyond_null


def test_a_point_estimate_beyond_the_null_is_not_claimed_when_its_ci_is_not():
    # Synthetic 1.0, 1.25, 1.1 and CelebA 1.5, 1.5, 1.65: null [1/1.25, 1.25] (synthetic 1.25/1.0 is the widest;
    # CelebA's is 1.1). Pair ratios 1.5, 1.2, 1.5: geometric mean 2.7^(1/3) = 1.3925 > 1.25, but with 3 pairs the
    # 95% interval [1.0111, 1.9178] reaches below 1.25: not a dataset effect.
    row = R.dataset_contrast(models([1.0, 1.25, 1.1], [1.5, 1.5, 1.65]), ["t"], "ratio").iloc[0]
    assert (row.null_low, row.null_high) == pytest.approx((0.8, 1.25), rel=1e-9)
    geo, lo, hi = log_t_interval([1.5, 1.2, 1.5])
    assert geo == pytest.approx(2.7 ** (1 / 3), rel=1e-12) and lo == pytest.approx(1.0111, abs=1e-4)
    assert (row.effect, row.ci_low, row.ci_high) == pytest.approx((geo, lo, hi), rel=1e-9)
    assert row.effect > row.null_high and row.ci_low < row.null_high
    assert not row.beyond_null


# --- DCI on 6 latents for 3 factors ----------------------------------------------------------------------
# R[i, j]: importance of latent i for factor j. Lopsided on purpose: latents 0, 2, 4 serve one factor each,
# latent 1 two factors, latent 3 all three evenly, latent 5 none.
IMPORTANCE = np.array([[0.30, 0.00, 0.00],
                       [0.10, 0.10, 0.00],
                       [0.00, 0.20, 0.00],
                       [0.05, 0.05, 0.05],
                       [0.00, 0.00, 0.10],
                       [0.00, 0.00, 0.00]])


def entropy(p, base):
    return -sum(x * math.log(x) for x in p if x > 0) / math.log(base)


# Eastwood & Williams 2018: D_i = 1 - H_3(P_i.), P_ij = R_ij / sum_j R_ij, base K = 3 factors.
D_PER_LATENT = [1.0, 1 - entropy([0.5, 0.5], 3), 1.0, 1 - entropy([1 / 3] * 3, 3), 1.0, 0.0]   # 1 - log_3 2 = 0.369
RHO = [0.30 / 0.95, 0.20 / 0.95, 0.20 / 0.95, 0.15 / 0.95, 0.10 / 0.95, 0.0]          # row sums / sum R
D_OVERALL = sum(d * w for d, w in zip(D_PER_LATENT, RHO))                              # 0.709278
# C_j = 1 - H_6(P~_.j), P~_ij = R_ij / sum_i R_ij, base L = 6 latents; weights: column sums / sum R.
C_PER_FACTOR = [1 - entropy([0.30 / 0.45, 0.10 / 0.45, 0.05 / 0.45], 6),             # 0.526340
                1 - entropy([0.10 / 0.35, 0.20 / 0.35, 0.05 / 0.35], 6),             # 0.466614
                1 - entropy([0.05 / 0.15, 0.10 / 0.15], 6)]                          # 0.644755
C_OVERALL = sum(c * w for c, w in zip(C_PER_FACTOR, [0.45 / 0.95, 0.35 / 0.95, 0.15 / 0.95]))   # 0.523032


def test_dci_of_a_lopsided_six_by_three_importance_matrix():
    assert D_OVERALL == pytest.approx(0.709278, abs=1e-6) and C_OVERALL == pytest.approx(0.523032, abs=1e-6)
    s = disentanglement.dci_scores(IMPORTANCE)
    # 1e-11 added to every importance (as disentanglement_lib does) moves the scores by ~1e-9
    assert np.allclose(s["per_latent"], D_PER_LATENT, atol=1e-7)
    assert np.allclose(s["per_factor"], C_PER_FACTOR, atol=1e-7)
    assert s["disentanglement"] == pytest.approx(D_OVERALL, abs=1e-7)
    assert s["completeness"] == pytest.approx(C_OVERALL, abs=1e-7)


def test_dci_reads_the_importance_of_latent_i_for_factor_j_at_row_i_column_j(monkeypatch):
    # A stand-in classifier hands dci() column j of IMPORTANCE when fitted on factor j.
    fits = iter(range(3))

    class Fixed:
        def __init__(self, **_):
            pass

        def fit(self, x, y):
            assert x.shape[1] == 6
            self.feature_importances_ = IMPORTANCE[:, next(fits)]
            return self

        def score(self, x, y):
            return 1.0

    monkeypatch.setattr(disentanglement, "GradientBoostingClassifier", Fixed)
    rng = np.random.default_rng(0)
    z, codes = rng.standard_normal((30, 6)), rng.integers(0, 3, (30, 3))
    out = disentanglement.dci(z, codes, z, codes)
    assert np.array_equal(out["importance"], IMPORTANCE)
    assert out["disentanglement"] == pytest.approx(D_OVERALL, abs=1e-7)
    assert out["completeness"] == pytest.approx(C_OVERALL, abs=1e-7)


# --- readings: which verdicts flip ------------------------------------------------------------------------
def test_flips_are_judged_within_one_undefined_quantity_not_across_quantities():
    # Claim "shared" has two undefined quantities. Within each, its verdict is the same under every reading
    # (reproduced under both ablations; contradicted under both entropy readings): nothing flips, although
    # the claim has two verdicts overall. Claim "moves" flips between its two ablation readings.
    def row(cid, undefined, reading, verdict):
        return {c: np.nan for c in readings.COLUMNS if c != "flips"} | dict(
            id=cid, undefined=undefined, reading=reading, verdict=verdict, default=reading in ("zero", "bits"))
    table = pd.DataFrame([row("shared", "ablation", "zero", "reproduced"),
                          row("shared", "ablation", "mean", "reproduced"),
                          row("shared", "entropy", "bits", "contradicted"),
                          row("shared", "entropy", "normalised", "contradicted"),
                          row("moves", "ablation", "zero", "reproduced"),
                          row("moves", "ablation", "mean", "inconclusive")])
    out = readings.flips(table)
    assert list(out.columns) == readings.COLUMNS
    assert out.flips.tolist() == [False, False, False, False, True, True]


# --- verdicts at a non-default alpha ------------------------------------------------------------------------
# Paper 1.0, margin 0.1 (abs): R = [0.9, 1.1]. Three models each; se = x / sqrt(3) for values m - x, m, m + x.
SE_07, SE_10 = 0.07 / math.sqrt(3), 0.10 / math.sqrt(3)     # 0.040415, 0.057735


def test_alpha_010_reproduces_what_alpha_005_leaves_inconclusive():
    est = replicate_ci([0.93, 1.0, 1.07])                    # mean 1.0, se 0.040415
    assert (est.mean, est.se) == pytest.approx((1.0, SE_07), rel=1e-9)
    # alpha 0.10: 80% CI 1 -/+ 1.8856 se = [0.9238, 1.0762], inside R -> reproduced
    assert est.ci(0.80) == pytest.approx((1 - T_90_DF2 * SE_07, 1 + T_90_DF2 * SE_07), rel=1e-9)
    assert 1 - T_90_DF2 * SE_07 == pytest.approx(0.923793, abs=1e-6)
    assert equivalence_verdict(1.0, est, 0.1, alpha=0.10).label == "reproduced"
    # alpha 0.05: 90% CI 1 -/+ 2.9200 se = [0.8820, 1.1180], not inside R; 95% CI overlaps it -> inconclusive
    assert 1 - T_95_DF2 * SE_07 == pytest.approx(0.881990, abs=1e-6)
    assert equivalence_verdict(1.0, est, 0.1, alpha=0.05).label == "inconclusive"
    assert verdicts.per_replicate_verdicts(1.0, [est, est], 0.1, alpha=0.10).labels == ("reproduced",) * 2


def test_alpha_010_contradicts_what_alpha_005_leaves_inconclusive():
    est = replicate_ci([1.2, 1.3, 1.4])                      # mean 1.3, se 0.057735
    # alpha 0.10: 90% CI low 1.3 - 2.9200 se = 1.1314 > 1.1 -> contradicted
    assert 1.3 - T_95_DF2 * SE_10 == pytest.approx(1.131414, abs=1e-6)
    assert equivalence_verdict(1.0, est, 0.1, alpha=0.10).label == "contradicted"
    # alpha 0.05: 95% CI low 1.3 - 4.3027 se = 1.0516 < 1.1 overlaps R, and the 90% CI is not inside it
    assert 1.3 - T_975_DF2 * SE_10 == pytest.approx(1.051586, abs=1e-6)
    assert equivalence_verdict(1.0, est, 0.1, alpha=0.05).label == "inconclusive"


def test_scorecard_rows_at_alpha_010_carry_the_80_and_90_percent_intervals():
    paper = pd.DataFrame(dict(id=["near", "far"], paper_value=[1.0, 1.0]))
    margins = pd.DataFrame(dict(id=["near", "far"], margin=[0.1, 0.1], margin_kind=["abs", "abs"],
                                unit=["", ""], justification=["test", "test"]))
    near, far = replicate_ci([0.93, 1.0, 1.07]), replicate_ci([1.2, 1.3, 1.4])
    row = measured_row("near", near, alpha=0.10)
    assert (row["eq_low"], row["eq_high"]) == pytest.approx((1 - T_90_DF2 * SE_07, 1 + T_90_DF2 * SE_07), rel=1e-9)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((1 - T_95_DF2 * SE_07, 1 + T_95_DF2 * SE_07), rel=1e-9)
    at_10 = verdicts.scorecard(paper, margins, [row, measured_row("far", far, alpha=0.10)], alpha=0.10)
    at_05 = verdicts.scorecard(paper, margins, [measured_row("near", near), measured_row("far", far)])
    assert at_10.verdict.tolist() == ["reproduced", "contradicted"]
    assert at_05.verdict.tolist() == ["inconclusive", "inconclusive"]


def test_an_estimate_with_bounds_only_has_no_interval_at_another_alpha():
    # A bootstrap's 95% and 90% bounds serve alpha = 0.05 only; alpha = 0.10 needs its 80% and 90% bounds.
    est = Estimate(1.0, 0.92, 1.08, 3, more=((0.9, 0.95, 1.05),))
    assert equivalence_verdict(1.0, est, 0.1).label == "reproduced"
    with pytest.raises(ValueError, match="no 80% CI"):
        equivalence_verdict(1.0, est, 0.1, alpha=0.10)


# --- Holm --------------------------------------------------------------------------------------------------
def test_holm_by_hand():
    # p = 0.01, 0.04, 0.03, 0.005, 0.6 (m = 5). Sorted: 0.005, 0.01, 0.03, 0.04, 0.6; times 5, 4, 3, 2, 1:
    # 0.025, 0.04, 0.09, 0.08, 0.6; running maximum: 0.025, 0.04, 0.09, 0.09, 0.6 (0.04 x 2 = 0.08 is raised
    # to 0.09); back in the input order:
    out = stats.correct([0.01, 0.04, 0.03, 0.005, 0.6], alpha=0.05)
    assert out.p_holm.tolist() == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.6], abs=1e-12)
    assert out.reject_holm.tolist() == [True, False, False, True, False]
    assert out.p_bonferroni.tolist() == pytest.approx([0.05, 0.2, 0.15, 0.025, 1.0], abs=1e-12)
    assert out.reject_bonferroni.tolist() == [False, False, False, True, False]   # 0.05 is not below 0.05
    # Capped at 1: 0.6 x 3 = 1.8, 0.7 x 2 = 1.4, 0.8 x 1; running maximum 1.8 everywhere -> 1, 1, 1.
    assert stats.correct([0.7, 0.6, 0.8]).p_holm.tolist() == [1.0, 1.0, 1.0]
    # At alpha = 0.10, Holm rejects 0.03 (0.09 < 0.10) and so 0.04 (0.09) as well.
    assert stats.correct([0.01, 0.04, 0.03, 0.005, 0.6], alpha=0.10).reject_holm.tolist() == [True] * 4 + [False]

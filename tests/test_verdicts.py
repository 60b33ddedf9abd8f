"""Three-outcome verdicts: the rule's edge cases worked by hand, statistics against scipy and pingouin, margins."""
import math

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats as sps

from circuitnb.measures import claims
from circuitnb.measures import verdicts as V

NAN = math.nan


def pair(paper, tight, wide, margin, kind="abs", claim_id="x"):
    """The rule on explicit CIs: tight = the 90% CI, wide = the 95% CI."""
    return V.equivalence_verdict(paper, tight, margin, kind, wide=wide, claim_id=claim_id)


# --- replicate CIs against scipy -------------------------------------------------------------------------------

@pytest.mark.parametrize("level", [0.90, 0.95, 0.99])
def test_replicate_ci_matches_scipy(level):
    rng = np.random.default_rng(1)
    for n in (2, 3, 5, 12):
        x = rng.normal(1.0, 0.3, n)
        est = V.replicate_ci(x, level)
        ref = sps.ttest_1samp(x, 0.0).confidence_interval(level)       # scipy's own t-interval, n - 1 df
        assert (est.mean, est.low, est.high) == pytest.approx((x.mean(), ref.low, ref.high), rel=1e-12)
        assert est.n == n and est.df == n - 1 and est.dropped == 0
        other = 0.8 if level != 0.8 else 0.9                          # the same estimate at another level
        ref2 = sps.ttest_1samp(x, 0.0).confidence_interval(other)
        assert est.ci(other) == pytest.approx((ref2.low, ref2.high), rel=1e-12)


def test_replicate_ci_drops_nans_and_says_so():
    # [1, nan, 3]: the NaN replicate is left out; mean 2 and the CI of [1, 3] alone, n = 2, dropped = 1.
    est = V.replicate_ci([1.0, NAN, 3.0])
    ref = sps.ttest_1samp([1.0, 3.0], 0.0).confidence_interval(0.95)
    assert (est.mean, est.low, est.high, est.n, est.dropped) == pytest.approx((2.0, ref.low, ref.high, 2, 1))
    assert math.isnan(V.replicate_ci([NAN, NAN]).mean) and V.replicate_ci([NAN, NAN]).n == 0


def test_one_replicate_has_an_undefined_ci_not_a_zero_width_one():
    # n = 1: no spread between models can be estimated; the CI is (nan, nan), never (2, 2).
    est = V.replicate_ci([2.0])
    assert est.mean == 2.0 and est.n == 1
    assert all(math.isnan(b) for b in est.ci(0.95) + est.ci(0.90))
    # ... so even a value equal to the paper's is inconclusive: one model says nothing about the next.
    v = V.equivalence_verdict(2.0, est, 0.5)
    assert v.label == "inconclusive" and "undefined" in v.reason and "n = 1" in v.reason


# --- the rule's edge cases --------------------------------------------------------------------------------------

def test_wide_ci_around_the_papers_value_is_inconclusive_not_reproduced():
    # Replicates [0.5, 1.0, 1.5]: mean 1.0 = the paper's value exactly; sd 0.5, se 0.2887, t(0.95, 2) = 2.920,
    # 90% CI [0.157, 1.843], not inside R = [0.9, 1.1]; 95% CI [-0.242, 2.242] overlaps R -> inconclusive.
    # A rule that looked at the point estimate only would call this reproduced.
    est = V.replicate_ci([0.5, 1.0, 1.5])
    assert est.mean == pytest.approx(1.0)
    assert est.ci(0.90) == pytest.approx((0.1571, 1.8429), abs=1e-4)
    v = V.equivalence_verdict(1.0, est, 0.1)
    assert v.label == "inconclusive" and "not inside" in v.reason


def test_a_bound_exactly_on_the_margin_counts_as_inside():
    # R = [0.75, 1.25] (1.0 ± 0.25, exact in binary); the 90% CI [0.75, 1.25] touches both edges: reproduced.
    assert pair(1.0, (0.75, 1.25), (0.5, 1.5), 0.25).label == "reproduced"
    # A hair beyond the edge is not inside; the 95% CI overlaps R -> inconclusive.
    assert pair(1.0, (0.75, 1.2500001), (0.5, 1.5), 0.25).label == "inconclusive"
    # 0.7 + 0.1 is 0.7999999999999999 in floats; the bound 0.8 is still on the edge of 0.7 ± 0.1 -> reproduced.
    assert 0.7 + 0.1 < 0.8
    assert pair(0.7, (0.65, 0.8), (0.6, 0.85), 0.1).label == "reproduced"
    # A 95% CI that only touches R's edge is not disjoint from it: inconclusive, not contradicted.
    assert pair(1.0, (1.3, 1.9), (1.25, 2.0), 0.25).label == "inconclusive"


def test_paper_value_zero_needs_an_absolute_margin():
    # Replicates [0.01, -0.01, 0, 0.005, -0.005]: mean 0, sd 0.0079, se 0.00354, t(0.95, 4) = 2.132,
    # 90% CI [-0.0075, 0.0075], inside R = [-0.05, 0.05] -> reproduced.
    est = V.replicate_ci([0.01, -0.01, 0.0, 0.005, -0.005])
    assert V.equivalence_verdict(0.0, est, 0.05, "abs").label == "reproduced"
    # A relative margin of 0 is 0: an error that names the claim.
    with pytest.raises(ValueError, match="spec_div_900.*absolute"):
        V.equivalence_verdict(0.0, est, 0.2, "rel", claim_id="spec_div_900")


def test_relative_margin_scales_with_the_papers_value():
    # rel 0.10 of -2.0 is 0.2: R = [-2.2, -1.8]; the 90% CI [-2.1, -1.9] is inside -> reproduced.
    assert V.region(-2.0, 0.1, "rel") == pytest.approx((-2.2, -1.8))
    assert pair(-2.0, (-2.1, -1.9), (-2.15, -1.85), 0.1, "rel").label == "reproduced"
    for bad in (0.0, -0.1, math.inf, NAN):
        with pytest.raises(ValueError, match="acc_syn_100"):
            V.region(1.0, bad, "abs", "acc_syn_100")
    with pytest.raises(ValueError, match="abs"):
        V.region(1.0, 0.1, "percent", "acc_syn_100")


def test_nan_value_is_inconclusive():
    est = V.Estimate(NAN, NAN, NAN, n=0)
    v = V.equivalence_verdict(1.0, est, 0.1)
    assert v.label == "inconclusive" and "NaN" in v.reason


def test_one_sided_cis():
    # Paper 0, R = [-0.05, 0.05]. 90% CI [0.2, inf), 95% CI [0.1, inf): the finite bound 0.1 > 0.05, so the
    # 95% CI misses R entirely -> contradicted.
    assert pair(0.0, (0.2, math.inf), (0.1, math.inf), 0.05).label == "contradicted"
    # 90% CI (-inf, 0.04]: its -inf bound can never be inside R, so never reproduced; the 95% CI (-inf, 0.045]
    # overlaps R -> inconclusive.
    assert pair(0.0, (-math.inf, 0.04), (-math.inf, 0.045), 0.05).label == "inconclusive"


def test_ci_fully_outside_is_contradicted():
    # Replicates [1.5, 1.52, 1.49]: mean 1.503, sd 0.0153, se 0.0088, t(0.975, 2) = 4.303,
    # 95% CI [1.465, 1.541], entirely above R = [0.9, 1.1] -> contradicted.
    v = V.equivalence_verdict(1.0, V.replicate_ci([1.5, 1.52, 1.49]), 0.1)
    assert v.label == "contradicted" and "outside" in v.reason
    # Below R as well: 95% CI [0.2, 0.5] vs R = [0.9, 1.1].
    assert pair(1.0, (0.25, 0.45), (0.2, 0.5), 0.1).label == "contradicted"


def test_ci_straddling_the_margin_edge_is_inconclusive():
    # R = [0.9, 1.1]; 90% CI [1.05, 1.15] crosses R's upper edge (not inside), 95% CI [1.03, 1.17] overlaps R.
    assert pair(1.0, (1.05, 1.15), (1.03, 1.17), 0.1).label == "inconclusive"


def test_cis_must_be_ordered_and_nested():
    with pytest.raises(ValueError, match="nested"):
        pair(1.0, (0.9, 1.1), (0.95, 1.05), 0.2)             # the 90% CI wider than the 95% one
    with pytest.raises(ValueError, match="wide"):
        V.equivalence_verdict(1.0, (0.9, 1.1), 0.2)           # a bare CI needs the 95% CI too


def test_bootstrap_estimate_needs_its_levels():
    est = V.Estimate(1.0, 0.97, 1.03, n=100, more=((0.90, 0.975, 1.025),))
    assert est.ci(0.90) == (0.975, 1.025)
    with pytest.raises(ValueError, match="80%"):
        est.ci(0.80)                                           # no se: another level cannot be derived


def test_hand_set_labels_need_a_reason():
    assert V.labelled("by design", "n is the parameter n_samples", "n_per_condition").label == "by design"
    assert V.labelled("not comparable", "undefined scale", "fc_syn_100").reason == "undefined scale"
    for label in V.LABELS:
        with pytest.raises(ValueError, match="n_per_condition"):
            V.labelled(label, "  ", "n_per_condition")
    with pytest.raises(ValueError, match="choose one of"):
        V.labelled("reproduced", "looks right", "x")


def test_per_replicate_disagreement_is_flagged():
    # Paper 1.0 ± 0.1. Replicate 0: image-level 90% CI [0.975, 1.025] inside R -> reproduced.
    # Replicate 1: 90% CI [0.75, 1.25] not inside, 95% CI [0.7, 1.3] overlaps -> inconclusive. They differ.
    r0 = V.Estimate(1.0, 0.97, 1.03, n=100, more=((0.90, 0.975, 1.025),))
    r1 = V.Estimate(1.0, 0.70, 1.30, n=100, more=((0.90, 0.75, 1.25),))
    rv = V.per_replicate_verdicts(1.0, [r0, r1], 0.1)
    assert rv.labels == ("reproduced", "inconclusive") and rv.disagree
    same = V.per_replicate_verdicts(1.0, [r0, r0], 0.1)
    assert same.labels == ("reproduced", "reproduced") and not same.disagree


# --- against pingouin -----------------------------------------------------------------------------------------

def test_ci_rule_agrees_with_pingouin_tost():
    # Reproduced (90% t-CI inside R) must be the same decision as pingouin's TOST p <= 0.05, case by case.
    rng = np.random.default_rng(7)
    outcomes = []
    for _ in range(200):
        n = int(rng.integers(3, 9))
        paper, margin = rng.normal(0, 1), rng.uniform(0.05, 0.6)
        x = rng.normal(paper + rng.normal(0, 0.3), rng.uniform(0.02, 0.4), n)
        p = pg.tost(x, paper, bound=float(margin)).at["TOST", "pval"]
        if abs(p - 0.05) < 1e-9:                               # a bound on R's edge: both rules say inside
            continue
        reproduced = V.equivalence_verdict(paper, V.replicate_ci(x), margin).label == "reproduced"
        assert reproduced == (p < 0.05), (x, paper, margin, p)
        assert V.tost_p(x, paper, margin) == pytest.approx(p, rel=1e-12)
        outcomes.append(reproduced)
    assert 20 < sum(outcomes) < len(outcomes) - 20             # both decisions were exercised


def test_tost_p_with_relative_margin_and_too_few_values():
    x = [1.9, 2.0, 2.1, 2.05]
    assert V.tost_p(x, 2.0, 0.1, "rel") == pytest.approx(pg.tost(np.array(x), 2.0, bound=0.2).at["TOST", "pval"])
    assert math.isnan(V.tost_p([2.0, NAN], 2.0, 0.1))


@pytest.mark.parametrize("n1, n2", [(100, None), (20, None), (100, 50), (8, 30)])
def test_minimum_detectable_effect_has_the_stated_power(n1, n2):
    # Power of a two-sided two-sample t-test from scipy's noncentral t: df = n1 + n2 - 2,
    # noncentrality d / sqrt(1/n1 + 1/n2); at the returned d it must be 0.80.
    d = V.minimum_detectable_effect(n1, n2)
    m = n1 if n2 is None else n2
    df, nc = n1 + m - 2, d / math.sqrt(1 / n1 + 1 / m)
    crit = sps.t.ppf(0.975, df)
    power = sps.nct.sf(crit, df, nc) + sps.nct.cdf(-crit, df, nc)
    assert power == pytest.approx(0.80, abs=1e-4)


def test_minimum_detectable_effect_textbook_value():
    # Cohen (1988), Table 2.4.1: 64 per group detect d = 0.5 with power 0.80 at alpha = 0.05 (two-sided).
    assert V.minimum_detectable_effect(64) == pytest.approx(0.5, abs=0.005)
    # The paper's N = 100 per condition: d of about 0.40 at 80% power, so its smallest d is not at 0.95.
    assert V.minimum_detectable_effect(100) == pytest.approx(0.398, abs=0.002)
    with pytest.raises(ValueError):
        V.minimum_detectable_effect(1)


# --- margins file and scorecard assembly --------------------------------------------------------------------

def test_every_claim_has_exactly_one_margin():
    paper, margins = claims.load(), V.load_margins()
    assert list(margins.columns) == V.MARGIN_COLUMNS
    assert margins["id"].is_unique and sorted(margins["id"]) == sorted(paper["id"])
    assert (margins["margin"] > 0).all() and np.isfinite(margins["margin"]).all()
    assert set(margins["margin_kind"]) <= set(V.KINDS)
    assert (margins["justification"].str.strip() != "").all() and margins["unit"].notna().all()
    for cid, value in zip(paper["id"], paper["paper_value"]):     # every region exists (no rel margin of 0)
        m = margins.set_index("id").loc[cid]
        lo, hi = V.region(float(value), m.margin, m.margin_kind, cid)
        assert lo < value < hi


def test_margin_loader_rejects_bad_rows(tmp_path):
    bad = tmp_path / "margins.csv"
    bad.write_text("id,margin,margin_kind,unit,justification\na,0.1,abs,%,fine\nb,-1,abs,%,x\nc,0.1,pct,%,x\n"
                   "d,0.1,abs,%,\n")
    with pytest.raises(ValueError) as err:
        V.load_margins(bad)
    assert "['b']" in str(err.value) and "['c']" in str(err.value) and "['d']" in str(err.value)


def _rows():
    # cc_ratio_100: replicates [1.08, 1.085, 1.09]: mean 1.085, se 0.00289, 90% CI [1.0766, 1.0934], inside
    # 1.084 ± 0.042 (margins.csv) -> reproduced; its two replicates alone disagree.
    est = V.replicate_ci([1.08, 1.085, 1.09])
    return [V.measured_row("cc_ratio_100", est, unit="ratio", replicates=("reproduced", "inconclusive")),
            V.measured_row("n_per_condition", V.replicate_ci([100, 100]), label="by design",
                           reason="n is the parameter n_samples"),
            V.measured_row("cc_syn_100", V.replicate_ci([0.5, 0.6]), label="not comparable",
                           reason="undefined scale"),
            V.measured_row("acc_syn_100", V.Estimate(NAN, NAN, NAN, n=0))]


def test_scorecard_one_row_per_claim_in_paper_order():
    paper = claims.load()
    card = V.scorecard(paper, V.load_margins(), _rows())
    assert list(card.columns) == ["id", "paper", "ours", "ci_low", "ci_high", "unit", "verdict", "reason",
                                  "verdict_r0", "verdict_r1", "replicates_disagree"]
    assert list(card["id"]) == list(paper["id"])
    c = card.set_index("id")
    assert c.loc["cc_ratio_100", "verdict"] == "reproduced" and c.loc["cc_ratio_100", "replicates_disagree"]
    assert (c.loc["cc_ratio_100", "verdict_r0"], c.loc["cc_ratio_100", "verdict_r1"]) == ("reproduced",
                                                                                          "inconclusive")
    assert c.loc["n_per_condition", "verdict"] == "by design"
    assert c.loc["cc_syn_100", ["verdict", "reason"]].tolist() == ["not comparable", "undefined scale"]
    assert c.loc["acc_syn_100", "verdict"] == "inconclusive" and "NaN" in c.loc["acc_syn_100", "reason"]
    assert c.loc["acc_cel_100", "verdict"] == "not measured" and c.loc["acc_cel_100", "unit"] == "%"
    assert (c.drop(["cc_ratio_100"]).replicates_disagree == False).all()         # noqa: E712
    assert set(card.verdict) <= set(V.VERDICTS)
    # A frame of rows (NaN where a row has no replicates) gives the same card.
    pd.testing.assert_frame_equal(V.scorecard(paper, V.load_margins(), pd.DataFrame(_rows())), card)


def test_scorecard_rejects_duplicate_unknown_and_unreasoned_rows():
    paper, margins = claims.load(), V.load_margins()
    twice = [V.measured_row("acc_syn_100", V.replicate_ci([88.0, 88.5]))] * 2
    with pytest.raises(ValueError, match="twice.*acc_syn_100"):
        V.scorecard(paper, margins, twice)
    with pytest.raises(ValueError, match="does not have.*nope"):
        V.scorecard(paper, margins, [V.measured_row("nope", V.replicate_ci([1.0, 1.1]))])
    with pytest.raises(ValueError, match="fc_syn_100"):
        V.scorecard(paper, margins, [V.measured_row("fc_syn_100", label="not comparable")])
    with pytest.raises(ValueError, match="without a margin.*xfer_accuracy"):
        V.scorecard(paper, margins[margins.id != "xfer_accuracy"], [])


def test_scorecard_row_without_its_90_ci_cannot_be_reproduced():
    # Only the 95% CI given ([1.08, 1.09], well inside 1.084 ± 0.042): without the 90% CI the TOST cannot be
    # read off, so the row is inconclusive, not reproduced.
    row = dict(id="cc_ratio_100", ours=1.085, ci_low=1.08, ci_high=1.09)
    v = V.scorecard(claims.load(), V.load_margins(), [row]).set_index("id").loc["cc_ratio_100"]
    assert v.verdict == "inconclusive" and "undefined" in v.reason

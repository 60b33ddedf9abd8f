"""Part IV's dead-unit statistics against known answers on hand-built activations and
constructed numbers: the revival count, the Shapes3D / dSprites ratio and its interval over replicate pairs, the
AuxK-against-Top-k outcome; and the claims file's rows."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from circuitnb.analysis.sae import claims as sae_claims
from circuitnb.analysis.sae.dead import AUXK_OUTCOMES, RECON_TOL, auxk_vs_topk, pair_ratio, revival
from circuitnb.measures import verdicts


def codes_with(firing: dict[int, int], n: int = 100, units: int = 8) -> np.ndarray:
    """[n, units] codes: unit u positive on its first firing[u] inputs, zero elsewhere (units not listed: dead)."""
    c = np.zeros((n, units))
    for u, k in firing.items():
        c[:k, u] = 1.0 + u
    return c


def test_revival_counts_units_dead_at_the_end_that_fire_at_the_last_snapshot():
    end = codes_with({0: 50, 1: 3, 2: 100})                 # units 3..7 dead (never active); 1 rare
    mid = codes_with({0: 50, 1: 3, 2: 100, 4: 1})           # unit 4 fires once, then dies again
    last = codes_with({0: 50, 2: 100, 3: 10, 5: 2})         # 3 and 5 revive; 1 dies
    r = revival(end, last, 0.0, later=[mid, last])
    assert (r["n_units"], r["n_dead_end"], r["n_dead_last"]) == (8, 5, 4)
    assert r["n_revived"] == 2 and r["revived_share"] == pytest.approx(2 / 5)
    assert r["n_died"] == 1 and r["n_ever_revived"] == 3       # unit 4 at the middle snapshot
    # threshold 5%: unit 1 (3 of 100) and unit 5 (2 of 100) count as dead; only unit 3 revives (10 of 100)
    r5 = revival(end, last, 0.05)
    assert (r5["n_dead_end"], r5["n_revived"]) == (6, 1)
    assert np.isnan(revival(last[:, :1], last[:, :1])["revived_share"])       # nothing dead: undefined share


def test_pair_ratio_is_the_geometric_mean_over_pairs_with_a_log_t_interval():
    a, b = np.array([0.30, 0.35, 0.40]), np.array([0.60, 0.63, 0.70])
    r = pair_ratio(a, b)
    logs = np.log(b / a)
    e = r["estimate"]
    assert e.mean == pytest.approx(np.exp(logs.mean()))
    half = sps.t.ppf(0.975, 2) * logs.std(ddof=1) / np.sqrt(3)
    assert (e.low, e.high) == pytest.approx((np.exp(logs.mean() - half), np.exp(logs.mean() + half)))
    half90 = sps.t.ppf(0.95, 2) * logs.std(ddof=1) / np.sqrt(3)
    assert e.ci(0.90) == pytest.approx((np.exp(logs.mean() - half90), np.exp(logs.mean() + half90)))
    # same-data null: ratios between two replicates of one set; 0.40 / 0.30 is the largest
    assert r["null_high"] == pytest.approx(0.40 / 0.30) and r["null_low"] == pytest.approx(0.30 / 0.40)
    assert r["beyond_null"]                          # ~1.8 with a tight CI, far beyond seed-to-seed ratios
    # a constant ratio of 2 has a zero-width interval at exactly 2
    assert pair_ratio([0.1, 0.2], [0.2, 0.4])["estimate"].low == pytest.approx(2.0)


def test_pair_ratio_is_undefined_with_a_zero_dead_rate_and_says_why():
    r = pair_ratio([0.0, 0.3], [0.5, 0.6])
    assert np.isnan(r["estimate"].mean) and "pair(s) [0]" in r["reason"] and not r["beyond_null"]
    with pytest.raises(ValueError):
        pair_ratio([0.1, 0.2], [0.1])


def test_auxk_outcomes_on_constructed_numbers():
    same_k = ([50.0, 50.0, 50.0], [50.0, 50.0, 50.0])
    nelbo = [100.0, 102.0, 98.0]
    # AuxK keeps about 30 points of units alive at the same reconstruction: the "intrinsic" reading is contradicted
    c = auxk_vs_topk([0.60, 0.62, 0.65], [0.30, 0.31, 0.36], nelbo, [100.5, 102.1, 98.2], *same_k)
    assert c["outcome"] == "contradicts intrinsic" and c["dead_saved"].mean == pytest.approx(0.30)
    assert c["dead_saved"].low > 0 and c["recon_change"].high < RECON_TOL
    # the same saving bought with a 10% worse -ELBO is not at equal reconstruction
    c = auxk_vs_topk([0.60, 0.62, 0.65], [0.30, 0.31, 0.36], nelbo, [110.0, 112.2, 107.8], *same_k)
    assert c["outcome"] == "not at equal reconstruction"
    # AuxK changes nothing (differences of a point): consistent with the abstract's reading
    c = auxk_vs_topk([0.60, 0.62, 0.65], [0.61, 0.62, 0.64], nelbo, nelbo, *same_k)
    assert c["outcome"] == "consistent with intrinsic"
    # different sparsity: not comparable on the abstract's terms
    c = auxk_vs_topk([0.6, 0.6], [0.3, 0.3], nelbo[:2], nelbo[:2], [50.0, 50.0], [60.0, 60.0])
    assert c["outcome"] == "not at equal sparsity"
    # two noisy pairs: inconclusive
    c = auxk_vs_topk([0.6, 0.3], [0.3, 0.5], nelbo[:2], nelbo[:2], [50.0, 50.0], [50.0, 50.0])
    assert c["outcome"] == "inconclusive"
    assert set(AUXK_OUTCOMES) >= {"contradicts intrinsic", "consistent with intrinsic", "inconclusive"}


def test_claims_file_rows_are_valid_and_every_claim_has_a_margin():
    paper, margins = sae_claims.paper(), sae_claims.margins()
    assert list(paper.id) == list(margins.id) and paper.id.is_unique
    assert paper.id.str.startswith("sae_").all()
    assert np.isfinite(paper.paper_value.astype(float)).all()
    assert (paper.note.str.len() > 20).all()
    dead = paper[paper.id.str.startswith("sae_dead_")]
    assert len(dead) == 4 and dead.paper_value.between(0, 1).all() and dead.paper_sd.notna().all()


def _dead_frame(values: dict) -> pd.DataFrame:
    return pd.DataFrame([dict(method=k, dataset=ds, replicate=r, threshold=0.0, when="final", step=10, dead_rate=v)
                         for (k, ds), vals in values.items() for r, v in enumerate(vals)])


def test_ratio_rows_reach_a_verdict_on_constructed_dead_rates():
    p = sae_claims.paper().set_index("id").paper_value.astype(float)
    a = np.array([0.30, 0.31, 0.29, 0.30])
    dead = _dead_frame({("topk", "dsprites"): a, ("topk", "shapes3d"): a * p["sae_ratio_topk"],
                        ("l1", "dsprites"): a, ("l1", "shapes3d"): a})
    rat = sae_claims.ratios(dead, ["topk", "l1"], 0.0).set_index("method")
    assert rat.loc["topk", "ratio"] == pytest.approx(p["sae_ratio_topk"])
    rows = [verdicts.measured_row(f"sae_ratio_{m}", verdicts.Estimate(r.ratio, r.ci_low, r.ci_high, 4, 0.95,
                                                                        more=((0.9, r.eq_low, r.eq_high),)))
            for m, r in rat.iterrows()]
    card = sae_claims.scorecard(rows).set_index("id")
    assert card.loc["sae_ratio_topk", "verdict"] == "reproduced"        # exactly the paper's ratio
    assert card.loc["sae_ratio_l1", "verdict"] == "contradicted"        # ratio 1: no dependence on the set
    assert card.loc["sae_k_start", "verdict"] == "not measured"
